"""Training-clip throughput per worker: decode 16 frames (stride 2) at a random offset → resize → crop → normalise.

Compares, in one run and one process (one worker, single-threaded decode):
  seek    VideoReader.get_frames (index + seek), the toolkit's way
  naive   decode the whole video, then index (what many scripts do)
  frames  FrameFolderReader on JPEG frames extracted by `actionrec prep frames` (short side 128)
Prints clips/s (median of repeated timed batches) and the ratio to `naive`.

    python benchmarks/bench_data.py [--clips 30] [--repeats 3] [VIDEO ...]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT = [ROOT / "tests/data/xvid.avi", ROOT / "tests/data/h264.mp4"]


def main() -> None:
    from actionrec.data.frames import FrameFolderReader
    from actionrec.data.sampling import RandomClipSampler
    from actionrec.data.transforms import build_transform
    from actionrec.data.video import VideoReader
    from actionrec.meta import Preprocess
    from actionrec.prep.frames import extract_frames

    ap = argparse.ArgumentParser()
    ap.add_argument("videos", nargs="*", type=Path, default=DEFAULT)
    ap.add_argument("--clips", type=int, default=30, help="clips per timed batch")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    from actionrec.runtime import worker_init

    worker_init()
    pre = Preprocess(clip_len=16, frame_stride=2, resize_short=128, crop_size=112)
    tf = build_transform(pre, train=True)
    sampler = RandomClipSampler(pre.clip_len, pre.frame_stride)

    def naive(path: Path, idx: np.ndarray) -> np.ndarray:
        return VideoReader(path).read_all()[idx]

    def seek(path: Path, idx: np.ndarray) -> np.ndarray:
        return VideoReader(path).get_frames(idx)

    def frames(path: Path, idx: np.ndarray) -> np.ndarray:
        return FrameFolderReader(path).get_frames(idx)

    with tempfile.TemporaryDirectory() as tmp:
        for video in a.videos:
            folder = Path(tmp) / video.stem
            extract_frames(video, folder, short_side=128)
            n = len(VideoReader(video))
            print(f"{video.name}: {n} frames")
            rates = {}
            for name, fn, src in (("naive", naive, video), ("seek", seek, video), ("frames", frames, folder)):
                runs = []
                for r in range(a.repeats):
                    rng = np.random.default_rng(r)
                    t0 = time.perf_counter()
                    for _ in range(a.clips):
                        (idx,) = sampler(n, rng)
                        clip = tf(fn(src, idx), rng)
                    runs.append(a.clips / (time.perf_counter() - t0))
                rates[name] = statistics.median(runs)
                assert clip.shape == (3, 16, 112, 112)
            for name, v in rates.items():
                print(f"  {name:7s} {v:8.1f} clips/s per worker   ({v / rates['naive']:.2f}x naive)")


if __name__ == "__main__":
    main()
