"""Pretrained weights on real labelled footage: top-1/top-5 over ``../shared/data/realclips``, with and without doubtful clips.

Each MODEL scores every clip of the manifest through :class:`actionrec.Predictor` with ``actionrec predict``'s
default sampling (clips from the video's length, up to 10; one centre crop). The manifest's ``k400_label`` (or
``label``) is matched to the model's class names as ``actionrec eval --list labels.csv`` matches them
(:func:`actionrec.data.annotations.label_matcher`). Its ``notes`` flag ``DOUBT`` (a label that can be argued) and
``OVERLAY`` (drawings or captions burned in); the table gives all clips, those without DOUBT, and those without either.

    python benchmarks/bench_realclips.py                                   # i3d_kinetics400
    python benchmarks/bench_realclips.py i3d_kinetics400 runs/x/best.safetensors --clips DIR --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CLIPS = ROOT.parent / "shared" / "data" / "realclips"
FLAGS = ("DOUBT", "OVERLAY")
SUBSETS = [("all", ()), ("without DOUBT", ("DOUBT",)), ("without DOUBT, OVERLAY", ("DOUBT", "OVERLAY"))]

log = logging.getLogger("bench_realclips")

from bench_flow import host_cpu  # noqa: E402 - one reading of the host CPU for the benchmark scripts




def read_manifest(path: Path, clips_dir: Path) -> list[dict[str, Any]]:
    """Rows ``{file, path, label, flags}`` of a manifest ``file,k400_label|label,...,notes`` (header row required)."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    key = "k400_label" if rows and "k400_label" in rows[0] else "label"
    if not rows or not {"file", key} <= set(rows[0]):
        sys.exit(f"{path}: expected a header with columns file and k400_label (or label)")
    out = []
    for r in rows:
        notes = (r.get("notes") or "").strip().upper()
        flags = [f for f in FLAGS if notes.startswith(f) or f"; {f}" in notes or f", {f}" in notes]
        p = clips_dir / r["file"]
        out.append({"file": r["file"], "path": str(p if p.exists() else path.parent / r["file"]), "label": r[key].strip(),
                    "flags": flags})
    return out


def score_model(model: str, rows: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """Predictions of ``model`` on every row: the top-5, the true label's rank and probability."""
    import actionrec
    from actionrec.data.annotations import label_matcher

    t0 = time.perf_counter()
    predictor = actionrec.Predictor(model, threads=args.threads, num_clips=args.num_clips or None, num_crops=args.crops)
    names = [predictor.meta.label(i) for i in range(predictor.meta.num_classes)]
    match = label_matcher(names)
    log.info("%s: %d clips, %s", model, len(rows), predictor.pipeline)
    clips = []
    for row, pred in zip(rows, predictor.predict_many([r["path"] for r in rows], topk=5, workers=args.workers)):
        index = match(row["label"])
        item = {**row, "error": pred.error, "clips": pred.clips, "top5": [[lab, round(s, 4)] for lab, s in pred.topk]}
        if pred.error is None and index is not None:
            order = np.argsort(-pred.probs, kind="stable")
            item["rank"] = int(np.flatnonzero(order == index)[0]) + 1
            item["label_prob"] = round(float(pred.probs[index]), 4)
        item["class"] = names[index] if index is not None else None
        clips.append(item)
        log.info("%-40s %-30s rank %s", row["file"], row["label"], item.get("rank", "-"))
    seconds = time.perf_counter() - t0
    subsets = {}
    for name, drop in SUBSETS:
        kept = [c for c in clips if not set(c["flags"]) & set(drop) and "rank" in c]
        subsets[name] = {"n": len(kept), "top1": sum(c["rank"] == 1 for c in kept), "top5": sum(c["rank"] <= 5 for c in kept)}
    return {"model": model, "runtime": predictor.runtime_info, "pipeline": repr(predictor.pipeline), "seconds": round(seconds, 1),
            "subsets": subsets, "not_scored": [c["file"] for c in clips if "rank" not in c], "clips": clips}


def _frac(k: int, n: int) -> str:
    return f"{k}/{n} ({100 * k / n:.0f}%)" if n else "-"


def print_table(r: dict[str, Any]) -> None:
    """The model's table (subset, top-1, top-5) and its top-1 misses."""
    rt = r["runtime"]
    print(f"\n{r['model']} ({rt['backend']}, {rt['device']}, {rt['threads']} threads; {r['pipeline']}): {r['seconds']:.0f} s")
    print("| clips | top-1 | top-5 |\n|---|---|---|")
    for name, s in r["subsets"].items():
        print(f"| {name} ({s['n']}) | {_frac(s['top1'], s['n'])} | {_frac(s['top5'], s['n'])} |")
    if r["not_scored"]:
        print(f"not scored (unreadable, or a label the model has no class for): {', '.join(r['not_scored'])}")
    misses = [c for c in r["clips"] if c.get("rank", 1) != 1 and "rank" in c]
    print(f"top-1 misses ({len(misses)}):")
    for c in misses:
        flags = f" [{', '.join(c['flags'])}]" if c["flags"] else ""
        top = c["top5"][0]
        print(f"  {c['file']}{flags}: {c['label']!r} rank {c['rank']} (p {c['label_prob']:.3f}); "
              f"predicted {top[0]!r} ({top[1]:.3f})")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("models", nargs="*", default=["i3d_kinetics400"], metavar="MODEL",
                    help="weight-set names, checkpoints or exported files (default i3d_kinetics400)")
    ap.add_argument("--clips", type=Path, default=DEFAULT_CLIPS, metavar="DIR",
                    help="folder with manifest.csv and clips/ (default ../shared/data/realclips)")
    ap.add_argument("--manifest", type=Path, help="default DIR/manifest.csv")
    ap.add_argument("--num-clips", type=int, default=0, help="clips per video (0: from its length, up to 10, as predict)")
    ap.add_argument("--crops", type=int, default=1, choices=[1, 3])
    ap.add_argument("--threads", type=int, default=None, help="inference threads (default: all available cores)")
    ap.add_argument("--workers", type=int, default=1, help="decoding processes (default 1)")
    ap.add_argument("--json", nargs="?", const="-", metavar="FILE", help="also write the results as JSON (to FILE, or stdout)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    manifest = args.manifest or args.clips / "manifest.csv"
    if not manifest.is_file():
        sys.exit(f"{manifest}: no manifest (give --clips DIR or --manifest FILE)")
    rows = read_manifest(manifest, args.clips / "clips")
    counts = {f: sum(f in r["flags"] for r in rows) for f in FLAGS}
    host = host_cpu()
    print(f"{len(rows)} clips from {manifest} ({', '.join(f'{n} {f}' for f, n in counts.items())}); host: {host}")
    results = []
    for model in args.models:
        r = score_model(model, rows, args)
        print_table(r)
        results.append(r)
    if args.json:
        text = json.dumps({"command": " ".join(["python", *sys.argv]), "host": host, "manifest": str(manifest),
                           "flags": counts, "models": results}, indent=1)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n")
            print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
