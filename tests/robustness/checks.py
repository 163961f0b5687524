"""Run mutants through a reader path in a worker process and classify what happens.

Each mutant goes to a long-lived worker (``python -m tests.robustness.checks MODE``) over a pipe;
the parent waits at most ``timeout`` seconds per mutant, so a hang or a crash of the decoder
(segfault, abort, out-of-memory kill) is recorded as such and the worker is restarted.
Outcomes: ``ok`` (a correct result), ``clean`` (an ``ActionrecError``/``OSError`` naming the
file; the CLI's exit 2), ``traceback`` (any other exception; exit 1), ``hang``, ``crash``,
``silent_wrong`` (accepted, but a must-fail input, a wrong shape/dtype/size, or frames that differ
from the source where the mutation did not touch the coded pictures).

Modes: ``reader`` (``open_video`` + ``get_frames``), ``dataset`` (``VideoClipDataset`` item:
skipped or a finite clip), ``predict`` (``actionrec predict --json`` in-process, via ``cli.main``).
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from tests.robustness.mutants import DATA, Mutant
from tests.robustness.worker import HANG, JsonLineWorker, peak_rss_mb, say

OUTCOMES = ("ok", "clean", "traceback", "hang", "crash", "silent_wrong")
# mutations of header fields only: an accepted file must decode to the source's frames
SAME_PICTURES = ("absurd_size", "unknown_codec")


@dataclass
class Outcome:
    mutant: Mutant
    outcome: str
    detail: str
    rss_mb: float


# --- worker side ----------------------------------------------------------------------------
_REF: dict[str, tuple[int, object]] = {}


def _reference(source: str):  # noqa: ANN202 - (n, frames of the source video)
    from actionrec.data.video import VideoReader

    if source not in _REF:
        with VideoReader(DATA / source) as r:
            _REF[source] = (len(r), r.read_all())
    return _REF[source]


def _check_reader(m: dict) -> tuple[str, str]:
    import numpy as np

    from actionrec.data.video import MAX_FRAME_SIDE, FramesMissingError, open_video

    with open_video(m["path"]) as r:
        n = len(r)
        idx = sorted({0, n // 2, n - 1})
        try:
            frames = r.get_frames(idx)
        except FramesMissingError:  # what a dataset does: sample again within the new length
            n = len(r)
            idx = sorted({0, n // 2, n - 1})
            frames = r.get_frames(idx)
        fps = r.fps
    if m["must_fail"]:
        return "silent_wrong", f"accepted a non-video: {n} frames"
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[0] != len(idx) or frames.shape[3] != 3:
        return "silent_wrong", f"frames {frames.dtype} {frames.shape} for {len(idx)} indices"
    if not (0 < frames.shape[1] <= MAX_FRAME_SIDE and 0 < frames.shape[2] <= MAX_FRAME_SIDE):
        return "silent_wrong", f"frame size {frames.shape[1:3]}"
    if not (math.isfinite(fps) and 0 <= fps <= 10_000):
        return "silent_wrong", f"fps {fps}"
    if m["cls"] in SAME_PICTURES:
        ref_n, ref = _reference(m["source"])
        if frames.shape[1:] != ref.shape[1:]:
            return "silent_wrong", f"frame shape {frames.shape[1:]}, the source's {ref.shape[1:]}"
        for i, f in zip(idx, frames):
            # the same frame as the source's; with a damaged index (n != ref_n), at least one of its pictures
            candidates = [ref[i]] if n == ref_n else ref
            diff = min(float(np.abs(f.astype(np.int16) - c.astype(np.int16)).mean()) for c in candidates)
            if diff > 2:
                return "silent_wrong", f"frame {i} of {n} is none of the source's {ref_n} pictures (diff {diff:.1f})"
    return "ok", f"{n} frames"


def _check_dataset(m: dict) -> tuple[str, str]:
    import torch

    from actionrec.data.annotations import Sample
    from actionrec.data.dataset import VideoClipDataset
    from actionrec.meta import Preprocess

    pre = Preprocess(clip_len=4, frame_stride=2, resize_short=32, crop_size=28)
    ds = VideoClipDataset([Sample(m["path"], 0)], preprocess=pre, train=False, num_clips=2)
    item = ds[0]
    if item is None:
        return "clean", "skipped"
    if m["must_fail"]:
        return "silent_wrong", "a non-video gave a clip"
    views = item[0]
    if tuple(views.shape) != (2, 3, 4, 28, 28) or not bool(torch.isfinite(views).all()):
        return "silent_wrong", f"views {tuple(views.shape)}"
    return "ok", "clip"


_CKPT: dict[str, str] = {}


def make_tiny_checkpoint(path: Path) -> Path:
    """A 3-class R(2+1)D-18 with very narrow layers, saved as one of our checkpoints."""
    import torch

    import actionrec
    from actionrec.checkpoint import save_model
    from actionrec.meta import ModelMeta, Preprocess

    torch.manual_seed(0)
    model = actionrec.create_model("r2plus1d_18", num_classes=3, widths=(4, 8, 8, 8))
    meta = ModelMeta(arch="r2plus1d_18", num_classes=3, class_names=["a", "b", "c"],
                     preprocess=Preprocess(clip_len=4, frame_stride=2, resize_short=32, crop_size=28),
                     arch_kwargs={"widths": [4, 8, 8, 8]})
    return save_model(model, path, meta)


def _check_predict(m: dict) -> tuple[str, str]:
    from actionrec.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(["predict", _CKPT["path"], m["path"], "--json", "--clips", "2", "--backend", "torch"])
    if rc == 2:
        lines = err.getvalue().strip().splitlines()
        msg = lines[-1] if lines else ""
        if len(lines) != 1 or os.path.basename(m["path"]) not in msg:
            return "traceback", f"exit 2 but not one line naming the file: {err.getvalue()[-200:]}"
        return "clean", msg[:200]
    if rc != 0:
        return "traceback", err.getvalue().strip()[-300:]
    if m["must_fail"]:
        return "silent_wrong", "a non-video got a prediction"
    res = json.loads(out.getvalue().strip().splitlines()[0])
    scores = [p["score"] for p in res["predictions"]]
    if not scores or not all(math.isfinite(s) and 0 <= s <= 1 for s in scores):
        return "silent_wrong", f"scores {scores}"
    return "ok", f"top-1 {res['predictions'][0]['label']}"


_CHECKS = {"reader": _check_reader, "dataset": _check_dataset, "predict": _check_predict}


def _worker(mode: str, ckpt: str | None) -> None:
    import logging

    from actionrec.errors import ActionrecError

    logging.disable(logging.WARNING)
    if ckpt:
        _CKPT["path"] = ckpt
    check = _CHECKS[mode]
    import actionrec.cli  # noqa: F401 - imports (PyTorch: seconds on a loaded machine) before the clock starts
    import actionrec.data.dataset  # noqa: F401

    say({"ready": True})
    for line in sys.stdin:
        m = json.loads(line)
        try:
            outcome, detail = check(m)
        except (ActionrecError, OSError) as e:
            name = os.path.basename(m["path"])
            outcome, detail = ("clean", str(e)[:200]) if name in str(e) else ("traceback", f"unnamed: {e}"[:200])
        except Exception as e:  # noqa: BLE001 - that is what is being counted
            outcome, detail = "traceback", f"{type(e).__name__}: {e}"[:300]
        say({"outcome": outcome, "detail": detail, "rss_mb": peak_rss_mb()})


# --- parent side ----------------------------------------------------------------------------
def run_checks(mutants: list[Mutant], mode: str, *, timeout: float = 30.0, ckpt: str | Path | None = None,
               worker_per_class: bool = True) -> list[Outcome]:
    """Every mutant through ``mode`` in worker processes (a fresh one per class: per-class peak RSS)."""
    ckpt = str(ckpt) if ckpt else None
    out: list[Outcome] = []
    by_class: dict[str, list[Mutant]] = defaultdict(list)
    for m in mutants:
        by_class[m.cls if worker_per_class else ""].append(m)
    for group in by_class.values():
        args = [mode] + ([ckpt] if ckpt else [])
        worker = JsonLineWorker("tests.robustness.checks", *args)
        try:
            for m in group:
                ans = worker.ask({"path": str(m.path), "cls": m.cls, "source": m.source, "must_fail": m.must_fail}, timeout)
                if ans is None or ans is HANG:
                    rc = worker.close()
                    ans = {"outcome": "hang", "detail": f"no answer in {timeout:.0f} s", "rss_mb": 0.0} if ans else {
                        "outcome": "crash", "detail": f"worker died (exit {rc})", "rss_mb": 0.0}
                    worker = JsonLineWorker("tests.robustness.checks", *args)
                out.append(Outcome(m, ans["outcome"], ans["detail"], ans["rss_mb"]))
        finally:
            worker.close()
    return out


def summarize(outcomes: list[Outcome], *, prefix: str = "") -> list[dict]:
    """One campaign row per mutant class (see docs/robustness.md)."""
    rows: dict[str, dict] = {}
    for o in outcomes:
        r = rows.setdefault(o.mutant.cls, {"class": prefix + o.mutant.cls, "tried": 0, "clean_errors": 0,
                                           "accepted_ok": 0, "tracebacks": 0, "hangs": 0, "crashes": 0,
                                           "silent_wrong": 0, "peak_rss_mb": 0.0, "notes": ""})
        r["tried"] += 1
        key = {"ok": "accepted_ok", "clean": "clean_errors", "traceback": "tracebacks", "hang": "hangs",
               "crash": "crashes", "silent_wrong": "silent_wrong"}[o.outcome]
        r[key] += 1
        r["peak_rss_mb"] = max(r["peak_rss_mb"], round(o.rss_mb, 1))
        if o.outcome not in ("ok", "clean") and len(r["notes"]) < 300:
            r["notes"] += f"{o.mutant.path.name}: {o.detail}; "
    return list(rows.values())


if __name__ == "__main__":
    _worker(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else None)
