"""``predict`` over a collection vs the model alone: is decoding hidden behind inference?

One process, one :class:`actionrec.Predictor` (same model, backend, threads and batch size for both),
interleaved rounds, medians:

* **model-only**: ``predictor.forward`` on ready ``(batch, C, T, H, W)`` tensors (what ``actionrec bench``
  times for that backend), as many clips as the collection gives;
* **predict**: the CLI's collection path (:func:`actionrec.engine.predict.predict_collection` with a
  ``.jsonl`` output): decoding in worker processes, clips batched across videos, rows written.

The collection is ``--videos`` copies of the real test media (H.264 MP4, XviD AVI, QuickTime MOV with
rotation, GIF, a truncated MP4) plus two unreadable files, so rows out = videos in is checked too.

    python benchmarks/bench_predict.py                        # R(2+1)D-18, 52 videos x 2 clips, batch 8
    python benchmarks/bench_predict.py --backend onnxruntime --json bench_predict.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
MEDIA = ["h264.mp4", "xvid.avi", "short.mp4", "rot90.mov", "rot0.mov", "cricket_rgb.gif", "corrupt.mp4"]


def make_collection(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n - 2):
        src = ROOT / "tests" / "data" / MEDIA[i % len(MEDIA)]
        dst = folder / f"{i:03d}_{src.name}"
        shutil.copy(src, dst)
        paths.append(str(dst))
    (folder / "empty.mp4").write_bytes(b"")
    (folder / "text.avi").write_text("not a video\n")
    return paths + [str(folder / "empty.mp4"), str(folder / "text.avi")]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="r2plus1d_18")
    ap.add_argument("--backend", default="torch", choices=["torch", "onnxruntime"])
    ap.add_argument("--videos", type=int, default=52)
    ap.add_argument("--clips", type=int, default=2, help="clips per video")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="inference threads (default: all available cores)")
    ap.add_argument("--workers", type=int, default=1, help="decoding processes")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    import actionrec
    from actionrec.engine.predict import PredictionFile, predict_collection

    tmp = Path(tempfile.mkdtemp(prefix="bench_predict_"))
    try:
        torch.manual_seed(0)
        ckpt = actionrec.save_model(actionrec.create_model(args.arch, num_classes=400), tmp / "model.safetensors")
        videos = make_collection(tmp / "videos", args.videos)
        p = actionrec.Predictor(ckpt, backend=args.backend, threads=args.threads, num_clips=args.clips,
                                batch_size=args.batch_size)
        x = torch.randn(args.batch_size, *p.meta.input_shape(1)[1:])
        p.forward(x)  # warm-up (allocations, oneDNN primitives)
        rows_ok, model_cps, predict_cps, ratios = True, [], [], []
        for r in range(args.rounds):
            out = tmp / f"preds{r}.jsonl"
            t0 = time.perf_counter()
            with PredictionFile(out, topk=5) as f:
                summary = predict_collection(p, videos, f, topk=5, workers=args.workers, batch_size=args.batch_size,
                                             progress=False)
            t_pred = time.perf_counter() - t0
            rows = [json.loads(line) for line in out.read_text().splitlines()]
            clips = sum(row["clips"] for row in rows)
            rows_ok &= len(rows) == len(videos) and {row["video"] for row in rows} == set(videos)
            n_batches = max(1, round(clips / args.batch_size))
            t0 = time.perf_counter()
            for _ in range(n_batches):
                p.forward(x)
            t_model = time.perf_counter() - t0
            model_cps.append(n_batches * args.batch_size / t_model)
            predict_cps.append(clips / t_pred)
            ratios.append(predict_cps[-1] / model_cps[-1])
            print(f"round {r + 1}: predict {predict_cps[-1]:.2f} clips/s ({summary.written} videos, {summary.errors} unreadable, "
                  f"{clips} clips, {t_pred:.1f} s) | model-only {model_cps[-1]:.2f} clips/s | ratio {ratios[-1]:.3f}", flush=True)
        result = {
            "arch": args.arch, "backend": p.backend.backend, "threads": p.threads, "batch_size": args.batch_size,
            "workers": args.workers, "videos": len(videos), "clips_per_video": args.clips,
            "predict_clips_per_s": round(statistics.median(predict_cps), 3),
            "model_only_clips_per_s": round(statistics.median(model_cps), 3),
            "ratio_median": round(statistics.median(ratios), 3), "ratios": [round(v, 3) for v in ratios],
            "rows_out_equal_videos_in": rows_ok, "loadavg_1m": round(os.getloadavg()[0], 2), "cpus": os.cpu_count(),
        }
        print(json.dumps(result, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        return 0 if rows_ok else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
