"""Evaluation of checkpoints on a dataset, saved predictions, two-stream fusion and summary tables.

Saved predictions (``predictions.npz``, loadable without pickle) hold ``videos (N,)``,
``labels (N,)``, ``view_logits (N, V, K)`` and ``class_names (K,)``. Video scores are the mean
softmax over the V = clips × crops views.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actionrec.engine.metrics import EvalMetrics, agreement, softmax, summarize
from actionrec.errors import UsageError
from actionrec.io import atomic_path, write_text_atomic

log = logging.getLogger(__name__)

__all__ = ["Predictions", "evaluate_checkpoint", "write_report", "fuse_predictions", "report_names", "write_summary"]


@dataclass
class Predictions:
    videos: list[str]
    labels: np.ndarray  # (N,) int64, -1 if unknown
    view_logits: np.ndarray  # (N, V, K) float32
    class_names: list[str]

    @property
    def probs(self) -> np.ndarray:
        """Video-level scores ``(N, K)``: mean softmax over views."""
        return softmax(self.view_logits).mean(axis=1)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        with atomic_path(path, suffix=".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez_compressed(
                    f,
                    videos=np.array(self.videos, dtype=str),
                    labels=self.labels.astype(np.int64),
                    view_logits=self.view_logits.astype(np.float32),
                    class_names=np.array(self.class_names, dtype=str),
                )
        return path

    @classmethod
    def load(cls, path: str | Path) -> Predictions:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such predictions file")
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls([str(v) for v in z["videos"]], z["labels"].astype(np.int64), z["view_logits"], [str(c) for c in z["class_names"]])
        except (KeyError, ValueError, OSError) as e:
            raise UsageError(f"{path}: not an actionrec predictions file ({e})") from e


def evaluate_checkpoint(
    model: Any,
    data: Any,
    *,
    subset: str = "val",
    num_clips: int = 10,
    num_crops: int = 3,
    batch_size: int = 4,
    backend: str = "auto",
    optimize: bool | None = None,
    device: str | None = None,
    threads: int | None = None,
    runtime: Any = None,
    calib: Any = None,
    reference: Any = None,
    progress: bool = True,
) -> tuple[Predictions, EvalMetrics]:
    """Score every video of ``data`` (a DataConfig) with ``num_clips`` × ``num_crops`` views.

    ``model`` is any MODEL (checkpoint, ``.onnx``, ``.pt2``, weight-set name) run by ``backend``;
    ``runtime`` (or ``device``/``threads``) says where. ``reference``: a float MODEL scored on the same
    views, so that ``metrics.agreement`` tells how far a deployed artifact is from it.
    """
    from tqdm import tqdm

    from actionrec.data.annotations import LeftOut
    from actionrec.deploy.backends import load_backend
    from actionrec.engine.data import build_dataset, eval_loader, load_split, preprocess_changes
    from actionrec.runtime import resolve_runtime

    runtime = (runtime or resolve_runtime(device=device, threads=threads)).apply()
    predictor = load_backend(model, backend=backend, optimize=optimize, runtime=runtime, calib=calib)
    ref = load_backend(reference, runtime=runtime) if reference is not None else None
    meta = predictor.meta
    left_out = LeftOut()  # a label-name CSV is matched to the model's class names ("0", "1", ... if it has none)
    samples, class_names = load_split(data, subset, classes=[meta.label(i) for i in range(meta.num_classes)], left_out=left_out)
    _check_model_fits(str(model), meta, data, class_names)
    if ref is not None:
        _check_model_fits(str(reference), ref.meta, data, class_names)
    pre = meta.preprocess.override(arch=meta.arch, warn=False, **preprocess_changes(data))
    ds = build_dataset(samples, pre, dataclasses.replace(data, modality=meta.modality), train=False, num_clips=num_clips, num_crops=num_crops)
    dl = eval_loader(ds, batch_size=batch_size, num_workers=data.num_workers)
    v = num_clips * num_crops
    logits = np.full((len(samples), v, meta.num_classes), np.nan, dtype=np.float32)
    ref_logits = np.full_like(logits, np.nan) if ref is not None else None
    done = np.zeros(len(samples), dtype=bool)
    for batch, _ in tqdm(dl, desc=f"eval {Path(str(model)).name}", disable=not progress, leave=False):
        if batch is None:
            continue
        views, _labels, indices = batch
        b = views.shape[0]
        out = predictor(views.flatten(0, 1)).numpy().reshape(b, v, -1)
        ref_out = ref(views.flatten(0, 1)).numpy().reshape(b, v, -1) if ref is not None else None
        for j, i in enumerate(indices.tolist()):
            logits[i], done[i] = out[j], True
            if ref_out is not None:
                ref_logits[i] = ref_out[j]
    if not done.all():
        log.warning("%d of %d videos could not be read and are left out", int((~done).sum()), len(samples))
    videos = [str(getattr(s, "path", s)) for s in samples]
    left_out.unreadable = [videos[i] for i in np.flatnonzero(~done)]
    labels = np.array([int(getattr(s, "label", -1)) for s in samples], dtype=np.int64)
    keep = np.flatnonzero(done)
    preds = Predictions([videos[i] for i in keep], labels[keep], logits[keep], list(class_names))
    metrics = summarize(preds.view_logits, preds.labels, meta.num_classes)
    if ref_logits is not None:
        metrics.agreement = agreement(preds.view_logits, ref_logits[keep])
    metrics.runtime = {"backend": predictor.backend, **runtime.as_dict()}
    metrics.left_out = left_out.as_dict() or None
    return preds, metrics


def _check_model_fits(name: str, meta: Any, data: Any, class_names: Sequence[str]) -> None:
    if meta.num_classes != len(class_names):
        raise UsageError(f"{name} predicts {meta.num_classes} classes but the dataset has {len(class_names)}")
    if meta.modality != data.modality:
        raise UsageError(f"{name} takes {meta.modality} input but data.modality is {data.modality}")
    if meta.class_names and list(meta.class_names) != list(class_names):
        log.warning("%s: class names differ from the dataset's; scoring by index", name)


def write_report(out_dir: str | Path, preds: Predictions, metrics: EvalMetrics, *, name: str = "") -> dict[str, Any]:
    """Write ``predictions.npz``, ``metrics.json``, ``per_class.csv`` and ``confusion.png`` to ``out_dir``."""
    from actionrec.engine.visualize import plot_confusion

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    preds.save(out / "predictions.npz")
    row = {"name": name, **metrics.as_row()}
    record = {**row, "per_class": dict(zip(preds.class_names, metrics.per_class)), "runtime": metrics.runtime}
    if metrics.left_out:
        record["left_out"] = metrics.left_out
    write_text_atomic(out / "metrics.json", json.dumps(record, indent=1) + "\n")
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["class", "videos", "accuracy"])
    for c, acc, n in zip(preds.class_names, metrics.per_class, metrics.confusion.sum(axis=1)):
        w.writerow([c, int(n), "" if np.isnan(acc) else f"{acc:.4f}"])
    write_text_atomic(out / "per_class.csv", buf.getvalue())
    plot_confusion(metrics.confusion, preds.class_names, out / "confusion.png", title=f"{name} video top-1 {metrics.video_top1:.3f}")
    return row


def fuse_predictions(files: Sequence[str | Path], weights: Sequence[float] | None = None, *, on: str = "probs") -> Predictions:
    """Weighted sum of several saved predictions of the same videos (two-stream "joint" scores).

    ``on="probs"`` sums the video-level mean softmax; ``on="logits"`` sums the mean logits
    (DeepMind's I3D joint model). The result has one view per video holding the fused scores
    as log-probabilities / logits, so it can be saved and evaluated like any prediction.
    """
    if len(files) < 2:
        raise UsageError("fuse needs at least two prediction files")
    weights = list(weights) if weights else [1.0] * len(files)
    if len(weights) != len(files):
        raise UsageError(f"{len(weights)} weights for {len(files)} prediction files")
    if not all(np.isfinite(w) and w >= 0 for w in weights) or sum(weights) <= 0:
        raise UsageError(f"fusion weights must be finite, >= 0 and not all 0, got {weights}")
    if on not in ("probs", "logits"):
        raise UsageError(f"on must be 'probs' or 'logits', got {on!r}")
    parts = [Predictions.load(f) for f in files]
    ref = parts[0]
    index = {v: i for i, v in enumerate(ref.videos)}
    total = np.zeros((len(ref.videos), len(ref.class_names)), dtype=np.float64)
    for f, p, w in zip(files, parts, weights):
        if p.class_names != ref.class_names:
            raise UsageError(f"{f}: class names differ from {files[0]}")
        if set(p.videos) != set(ref.videos):
            missing = sorted(set(ref.videos) ^ set(p.videos))[:3]
            raise UsageError(f"{f}: not the same videos as {files[0]} (e.g. {missing})")
        order = np.array([index[v] for v in p.videos])
        if not np.array_equal(p.labels, ref.labels[order]):
            raise UsageError(f"{f}: labels differ from {files[0]}")
        scores = p.probs if on == "probs" else p.view_logits.mean(axis=1)
        total[order] += w * scores
    fused = np.log(np.maximum(total / sum(weights), 1e-12)) if on == "probs" else total
    return Predictions(list(ref.videos), ref.labels.copy(), fused[:, None].astype(np.float32), list(ref.class_names))


def report_names(checkpoints: Sequence[str | Path]) -> list[str]:
    """One distinct folder name per checkpoint: its stem, with as many parent folders as it takes.

    ``runs/a/best.safetensors`` and ``runs/b/best.safetensors`` → ``a_best``, ``b_best``; the same
    file given twice gets ``_2``, ``_3``, … so that no report ever overwrites another.
    """
    parts = [Path(c).with_suffix("").parts or ("model",) for c in checkpoints]
    depth = 1
    while True:
        names = ["_".join(p[-depth:]).lstrip("._/") or "model" for p in parts]
        if len(set(names)) == len(names) or depth >= max(len(p) for p in parts):
            break
        depth += 1
    seen: dict[str, int] = {}
    out = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        out.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return out


def write_summary(rows: list[dict[str, Any]], out_dir: str | Path) -> tuple[Path, Path]:
    """One table of several evaluations: ``summary.csv`` and ``summary.md``."""
    out = Path(out_dir)
    cols = list(rows[0].keys()) if rows else []
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols)
    w.writeheader()
    for r in rows:
        w.writerow({k: f"{v:.4f}" if isinstance(v, float) else v for k, v in r.items()})
    write_text_atomic(out / "summary.csv", buf.getvalue())
    md = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        md.append("| " + " | ".join(f"{r[c]:.4f}" if isinstance(r[c], float) else str(r[c]) for c in cols) + " |")
    text = "clip = each view scored alone; video = softmax averaged over all views of a video\n\n" + "\n".join(md) + "\n"
    write_text_atomic(out / "summary.md", text)
    return out / "summary.csv", out / "summary.md"
