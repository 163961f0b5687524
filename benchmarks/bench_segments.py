"""``predict --segments`` on a long video: windows/s against ``predict``'s clips/s, and memory over hours.

One process, one checkpoint, one :class:`actionrec.Predictor` (same backend, threads and batch size for both):

* **ratio rounds** (interleaved, medians): ``--segments`` on a ``--slice-minutes`` video (what the CLI runs:
  :func:`actionrec.engine.segments.segment_collection` into a ``.jsonl``) in windows/s, then ``predict`` over a
  collection of 1-minute copies of it (:func:`actionrec.engine.predict.predict_collection`, decoding in
  ``--workers`` processes, 10 clips a video) in clips/s, holding about as many clips as the slice has windows.
  The issue's target: windows/s at least 90% of predict's clips/s. Each round also times the model alone
  (``predictor.forward`` on ready batches, as many clips as windows): the bound neither can pass.
* **the long run**: ``--segments`` once over a ``--minutes`` video (default 2 hours), RSS sampled as it goes
  (start, every 10%, end; VmHWM peak). The segments path keeps each window's K scores (8 bytes each) for the
  segmentation at the end: that much growth is the answer, not the video, and is reported beside the RSS.

The videos are synthetic (PyAV, H.264, ``--size`` px, ``--fps``): a moving random texture that changes every
5 minutes. The model has random weights and a 400-class head; on 2 cores the default R(2+1)D-18 at 112 px takes
seconds a clip, so this uses its narrowest widths at ``--crop`` px with ``--clip-len`` frames (say so with the figures).

    python benchmarks/bench_segments.py                               # 2 h at 10 frames/s, 32 px
    python benchmarks/bench_segments.py --minutes 30 --rounds 2 --json bench_segments.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_flow import host_cpu  # noqa: E402  - lscpu's model name


def make_video(path: Path, *, minutes: float, fps: int, size: int, seed: int = 0) -> Path:
    """A random texture moving one pixel a frame, a new texture every 5 minutes; H.264 ultrafast, 2-s GOPs (a phone's)."""
    import av

    rng = np.random.default_rng(seed)
    textures = [rng.integers(0, 255, (size, size, 3), dtype=np.uint8) for _ in range(2)]
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "g": str(2 * fps)})  # a key frame every 2 s
        s.width = s.height = size
        s.pix_fmt = "yuv420p"
        for i in range(int(minutes * 60 * fps)):
            img = np.roll(textures[int(i / fps // 300) % 2], i % size, axis=1)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def rss_mb(field: str = "VmRSS") -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssSampler(threading.Thread):
    """VmRSS every ``every`` seconds while running: ``samples`` of (seconds since start, MB)."""

    def __init__(self, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.every, self.samples, self.stop = every, [], threading.Event()

    def run(self) -> None:
        t0 = time.perf_counter()
        while not self.stop.wait(self.every):
            self.samples.append((time.perf_counter() - t0, rss_mb()))

    def tenths(self) -> list[float]:
        """RSS at 0%, 10%, ..., 100% of the run."""
        s = self.samples
        return [round(s[min(len(s) - 1, round(i * (len(s) - 1) / 10))][1], 1) for i in range(11)] if s else []


def run_segments(p, video: Path, out: Path, params) -> tuple[int, float]:  # noqa: ANN001
    """``--segments`` on one video into ``out`` (.jsonl), as the CLI runs it: (windows, seconds)."""
    from actionrec.engine.segments import SegmentFile, segment_collection

    t0 = time.perf_counter()
    with SegmentFile(out, topk=5) as f:
        segment_collection(p, [str(video)], f, params, progress=False, raise_errors=True)
    seconds = time.perf_counter() - t0
    return len(json.loads(out.read_text().splitlines()[-1])["windows"]), seconds


def run_predict(p, videos: list[str], out: Path, workers: int) -> tuple[int, float]:  # noqa: ANN001
    from actionrec.engine.predict import PredictionFile, predict_collection

    t0 = time.perf_counter()
    with PredictionFile(out, topk=5) as f:
        predict_collection(p, videos, f, topk=5, workers=workers, progress=False)
    seconds = time.perf_counter() - t0
    return sum(json.loads(line)["clips"] for line in out.read_text().splitlines()), seconds


def parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=120.0, help="the long video (default 2 hours)")
    ap.add_argument("--slice-minutes", type=float, default=5.0, help="the video of each ratio round")
    ap.add_argument("--fps", type=int, default=10)
    ap.add_argument("--size", type=int, default=32, help="frame side, pixels")
    ap.add_argument("--arch", default="r2plus1d_18")
    ap.add_argument("--widths", default="8,16,32,64", help="stage widths ('' for the architecture's own)")
    ap.add_argument("--clip-len", type=int, default=8)
    ap.add_argument("--crop", type=int, default=32)
    ap.add_argument("--window-stride", default=None, help="--segments stride (e.g. 8f; default half the clip span)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--threads", type=int, default=None, help="inference threads (default: all available cores)")
    ap.add_argument("--workers", type=int, default=1, help="predict's decoding processes (its default on 2-7 cores)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    return ap.parse_args()


def main() -> int:
    args = parse()
    import torch

    import actionrec
    from actionrec.engine.segments import params_from_args
    from actionrec.inference.windows import resolve_params
    from actionrec.options import span_arg

    tmp = Path(tempfile.mkdtemp(prefix="bench_segments_"))
    try:
        t0 = time.perf_counter()
        long_video = make_video(tmp / "long.mp4", minutes=args.minutes, fps=args.fps, size=args.size)
        part = make_video(tmp / "slice.mp4", minutes=args.slice_minutes, fps=args.fps, size=args.size, seed=1)
        minute = make_video(tmp / "minute.mp4", minutes=1.0, fps=args.fps, size=args.size, seed=2)
        print(f"videos made in {time.perf_counter() - t0:.0f} s", flush=True)
        torch.manual_seed(0)
        widths = {"widths": tuple(int(w) for w in args.widths.split(","))} if args.widths else {}
        model = actionrec.create_model(args.arch, num_classes=400, **widths)
        pp = model.meta.preprocess
        pp.clip_len, pp.frame_stride, pp.crop_size, pp.resize_short = args.clip_len, 1, args.crop, round(args.crop * 8 / 7)
        ckpt = actionrec.save_model(model, tmp / "model.safetensors")
        p = actionrec.Predictor(ckpt, threads=args.threads, batch_size=args.batch_size)
        p.forward(torch.randn(args.batch_size, *p.meta.input_shape(1)[1:]))  # warm-up
        stride = span_arg()(args.window_stride) if args.window_stride else None
        params = params_from_args(argparse.Namespace(window=None, window_stride=stride, smooth=None, threshold=None,
                                                     min_segment=None))
        seg_rate, pred_rate, model_rate, ratios, videos = [], [], [], [], []
        x = torch.randn(args.batch_size, *p.meta.input_shape(1)[1:])
        for r in range(args.rounds):
            w, ts = run_segments(p, part, tmp / f"seg{r}.jsonl", params)
            for i in range(len(videos), max(1, round(w / 10))):  # 10 clips a video: as many clips as windows
                shutil.copy(minute, tmp / f"m{i:03d}.mp4")
                videos.append(str(tmp / f"m{i:03d}.mp4"))
            c, tp = run_predict(p, videos, tmp / f"pred{r}.jsonl", args.workers)
            t0 = time.perf_counter()
            for _ in range(max(1, round(w / args.batch_size))):
                p.forward(x)
            model_rate.append(max(1, round(w / args.batch_size)) * args.batch_size / (time.perf_counter() - t0))
            seg_rate.append(w / ts)
            pred_rate.append(c / tp)
            ratios.append(seg_rate[-1] / pred_rate[-1])
            print(f"round {r + 1}: --segments {seg_rate[-1]:.2f} windows/s ({w} windows, {ts:.1f} s) | predict "
                  f"{pred_rate[-1]:.2f} clips/s ({c} clips of {len(videos)} videos, {tp:.1f} s) | ratio {ratios[-1]:.3f} | "
                  f"model alone {model_rate[-1]:.2f} clips/s (segments/model {seg_rate[-1] / model_rate[-1]:.3f})", flush=True)
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM from here: the long run's peak, not the rounds'
        start_rss, sampler = rss_mb(), RssSampler()
        sampler.start()
        w_long, t_long = run_segments(p, long_video, tmp / "long.jsonl", params)
        sampler.stop.set()
        sampler.join()
        end_rss, peak, samples = rss_mb(), rss_mb("VmHWM"), sampler.tenths()
        kept_mb = w_long * p.meta.num_classes * 8 / 2**20
        print(f"{args.minutes:g} min: {w_long} windows in {t_long:.0f} s ({w_long / t_long:.2f} windows/s); RSS MB "
              f"start {start_rss:.1f}, every 10% of the run {samples}, end {end_rss:.1f}, peak {peak:.1f}; scores kept {kept_mb:.1f} MB",
              flush=True)
        result = {
            "arch": args.arch, "widths": args.widths, "clip_len": args.clip_len, "crop": args.crop, "backend": p.backend.backend,
            "threads": p.threads, "batch_size": args.batch_size, "workers": args.workers, "video": f"{args.size}px {args.fps} fps",
            "params": {k: v for k, v in vars(resolve_params(params, p.pipeline.preprocess)).items() if v is not None},
            "segments_windows_per_s": round(statistics.median(seg_rate), 3),
            "predict_clips_per_s": round(statistics.median(pred_rate), 3),
            "ratio_median": round(statistics.median(ratios), 3), "ratios": [round(v, 3) for v in ratios],
            "model_only_clips_per_s": round(statistics.median(model_rate), 3),
            "segments_to_model_median": round(statistics.median([a / b for a, b in zip(seg_rate, model_rate)]), 3),
            "long": {"minutes": args.minutes, "windows": w_long, "seconds": round(t_long, 1),
                     "windows_per_s": round(w_long / t_long, 3), "ratio_to_predict": round(w_long / t_long / statistics.median(pred_rate), 3),
                     "rss_mb_start": round(start_rss, 1), "rss_mb_samples": samples, "rss_mb_end": round(end_rss, 1),
                     "rss_mb_peak": round(peak, 1), "scores_kept_mb": round(kept_mb, 1)},
            "cpu": host_cpu(), "cpus": os.cpu_count(), "loadavg_1m": round(os.getloadavg()[0], 2),
        }
        print(json.dumps(result, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
