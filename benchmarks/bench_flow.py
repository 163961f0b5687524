"""Optical-flow throughput: frame pairs per second on one core and on the whole machine.

Frames: consecutive frames of a real clip, resized to 224x224 grayscale. `tvl1` is OpenCV's Dual
TV-L1 with default settings (the I3D reference); the whole-machine figure uses the same chunked
process pool as `actionrec prep flow`. DIS (medium) is measured alongside as the fast alternative.
Prints medians and the ratio to single-core TV-L1 measured in the same run.

    python benchmarks/bench_flow.py [--pairs 6] [--workers N] [VIDEO]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    import cv2

    from actionrec.data.flow import make_flow_fn
    from actionrec.data.video import VideoReader
    from actionrec.prep.common import default_workers
    from actionrec.prep.flow import flow_all

    ap = argparse.ArgumentParser()
    ap.add_argument("video", nargs="?", type=Path, default=ROOT / "tests/data/h264.mp4")
    ap.add_argument("--pairs", type=int, default=6, help="pairs per core for TV-L1")
    ap.add_argument("--workers", type=int, default=default_workers())
    a = ap.parse_args()
    cv2.setNumThreads(1)
    n_frames = a.pairs * a.workers + 1
    rgb = VideoReader(a.video).get_frames(range(100, 100 + n_frames))
    gray = [cv2.resize(cv2.cvtColor(f, cv2.COLOR_RGB2GRAY), (224, 224), interpolation=cv2.INTER_AREA) for f in rgb]

    def per_core(algo: str, pairs: int, **kw) -> float:
        fn = make_flow_fn(algo, **kw)
        fn(gray[0], gray[1])  # warm-up
        times = []
        for k in range(pairs):
            t0 = time.perf_counter()
            fn(gray[k % (len(gray) - 1)], gray[k % (len(gray) - 1) + 1])
            times.append(time.perf_counter() - t0)
        return 1.0 / statistics.median(times)

    one = per_core("tvl1", a.pairs)
    dis = per_core("dis", 30, dis_preset="medium")
    with tempfile.TemporaryDirectory() as tmp:
        fr = Path(tmp) / "frames" / "clip"
        fr.mkdir(parents=True)
        for i, g in enumerate(gray, 1):
            cv2.imwrite(str(fr / f"img_{i:05d}.jpg"), g, [cv2.IMWRITE_JPEG_QUALITY, 100])
        (fr / "n_frames").write_text(f"{len(gray)}\n")
        t0 = time.perf_counter()
        rep = flow_all(Path(tmp) / "frames", Path(tmp) / "flow", algo="tvl1", workers=a.workers, chunk=a.pairs // 2 or 1,
                       progress=False)
        whole = (len(gray) - 1) / (time.perf_counter() - t0)
        assert rep.done == ["clip"], rep.summary("flow")
    print(f"224x224 grayscale, {a.workers} workers")
    print(f"  TV-L1 one core      {one:7.2f} pairs/s   (1.00x)")
    print(f"  TV-L1 whole machine {whole:7.2f} pairs/s   ({whole / one:.2f}x one core, {a.workers} workers, incl. JPEG I/O)")
    print(f"  DIS medium one core {dis:7.1f} pairs/s   ({dis / one:.0f}x TV-L1)")


if __name__ == "__main__":
    main()
