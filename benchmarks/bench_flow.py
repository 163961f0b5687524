"""Optical-flow throughput: OpenCV's TV-L1 on all cores against tvl1-torch, in one run, on the same frames.

Frames: consecutive frames of a real clip as grayscale, resized to 224x224 (and, on a GPU, also at
the clip's 256x340). Rows, each the median of ``--rounds`` interleaved rounds:

- ``tvl1`` one core: OpenCV's Dual TV-L1 (default settings, the I3D reference), one pair at a time;
- ``tvl1`` all cores: the same in a pool of one single-threaded process per core (as ``prep flow``);
- ``tvl1-torch`` CPU: one batch of ``--batch-size`` pairs with torch on one thread, and on every core
  (the runtime's threads, as ``prep flow --algo tvl1-torch --device cpu`` runs it); the line "per machine /
  (per core x cores)" says whether the threads pay (target: >= 1, no collapse at 2 threads);
- ``tvl1-torch`` CUDA (only with a GPU): batches of ``--cuda-batch-sizes`` at both sizes, with the
  peak GPU memory;
- DIS (medium) one core, the fast alternative.

Ratios are to OpenCV's all-core figure of the same run. Pure computation: no JPEG reading or writing.

    nice -n 10 python benchmarks/bench_flow.py [--rounds 3] [--batch-size 4] [--workers N] [VIDEO]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _opencv_pairs(pairs: list[tuple[np.ndarray, np.ndarray]]) -> int:
    from actionrec.data.flow import make_flow_fn
    from actionrec.runtime import worker_init

    worker_init()  # one thread per process, as prep flow's pool
    fn = make_flow_fn("tvl1")
    for a, b in pairs:
        fn(a[None], b[None])
    return len(pairs)


def _frames(video: Path, n: int, size: tuple[int, int] | None) -> list[np.ndarray]:
    import cv2

    from actionrec.data.flow import to_gray
    from actionrec.data.video import VideoReader

    gray = [to_gray(f) for f in VideoReader(video).get_frames(range(100, 100 + n))]
    return [cv2.resize(g, size[::-1], interpolation=cv2.INTER_AREA) for g in gray] if size else gray


def main() -> None:
    import cv2
    import torch

    from actionrec.data.flow import make_flow_fn
    from actionrec.prep.common import default_workers
    from actionrec.runtime import host_info, resolve_runtime

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video", nargs="?", type=Path, default=ROOT / "tests/data/h264.mp4")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=default_workers(), help="cores for OpenCV's pool and torch")
    ap.add_argument("--batch-size", type=int, default=4, help="tvl1-torch batch on the CPU [4]")
    ap.add_argument("--cuda-batch-sizes", type=int, nargs="+", default=[32, 128])
    a = ap.parse_args()
    host = host_info()
    print(f"{host['cpu']} ({host['available_cores']} cores, torch kernels {host['cpu_capability']}); "
          f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}; {a.workers} cores used; "
          f"torch {torch.__version__}, OpenCV {cv2.__version__}")

    n_pairs = max(a.workers, a.batch_size)
    gray = _frames(a.video, n_pairs + 1, (224, 224))
    pairs = list(zip(gray[:-1], gray[1:]))
    cpu_torch = make_flow_fn("tvl1-torch", device="cpu")
    dis = make_flow_fn("dis", dis_preset="medium")
    one_thread, all_threads = resolve_runtime(threads=1), resolve_runtime(threads=a.workers)
    prev = np.stack(gray[:a.batch_size])
    nxt = np.stack(gray[1:a.batch_size + 1])
    all_threads.apply()
    cpu_torch(prev[:1], nxt[:1])  # warm-up
    rows: dict[str, list[float]] = {"one": [], "all": [], "torch": [], "torch1": [], "dis": []}
    ctx = multiprocessing.get_context()
    with ctx.Pool(a.workers) as pool:
        pool.map(_opencv_pairs, [[pairs[0]]] * a.workers)  # warm-up: import cv2 in every worker
        for r in range(a.rounds):
            t0 = time.perf_counter()
            _opencv_pairs([pairs[r % len(pairs)]])
            rows["one"].append(1 / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            done = sum(pool.map(_opencv_pairs, [[p] for p in pairs[:a.workers]], chunksize=1))
            rows["all"].append(done / (time.perf_counter() - t0))
            one_thread.apply()
            t0 = time.perf_counter()
            cpu_torch(prev, nxt)
            rows["torch1"].append(a.batch_size / (time.perf_counter() - t0))
            all_threads.apply()
            t0 = time.perf_counter()
            cpu_torch(prev, nxt)
            rows["torch"].append(a.batch_size / (time.perf_counter() - t0))
            t0 = time.perf_counter()
            for p in pairs * 3:
                dis(p[0][None], p[1][None])
            rows["dis"].append(3 * len(pairs) / (time.perf_counter() - t0))
    med = {k: statistics.median(v) for k, v in rows.items()}
    ref = med["all"]
    print(f"224x224 grayscale pairs, median of {a.rounds} interleaved rounds (pairs/s; ratio to OpenCV all cores)")
    print(f"  tvl1 (OpenCV)      one core          {med['one']:8.2f}   ({med['one'] / ref:.2f}x)")
    print(f"  tvl1 (OpenCV)      {a.workers} cores, {a.workers} procs   {ref:8.2f}   (1.00x)")
    print(f"  tvl1-torch  CPU    1 thread, batch {a.batch_size}  {med['torch1']:8.2f}   ({med['torch1'] / ref:.2f}x)")
    print(f"  tvl1-torch  CPU    {a.workers} threads, batch {a.batch_size} {med['torch']:8.2f}   ({med['torch'] / ref:.2f}x)")
    print(f"  tvl1-torch per machine / (per core x cores): {med['torch'] / (med['torch1'] * a.workers):.2f}")
    print(f"  dis medium (OpenCV) one core         {med['dis']:8.1f}   ({med['dis'] / ref:.0f}x)")

    if torch.cuda.is_available():
        name = torch.cuda.get_device_name()
        gpu = make_flow_fn("tvl1-torch", device="cuda")
        for size in ((224, 224), (256, 340)):
            for bs in a.cuda_batch_sizes:
                g = _frames(a.video, bs + 1, size if size != (256, 340) else None)
                if g[0].shape != size:
                    g = [cv2.resize(x, size[::-1], interpolation=cv2.INTER_AREA) for x in g]
                p, q = np.stack(g[:-1]), np.stack(g[1:])
                gpu(p[:2], q[:2])  # warm-up
                torch.cuda.reset_peak_memory_stats()
                times = []
                for _ in range(a.rounds):
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    gpu(p, q)  # returns numpy: synchronised
                    times.append(time.perf_counter() - t0)
                peak = torch.cuda.max_memory_allocated() / 2**30
                rate = bs / statistics.median(times)
                print(f"  tvl1-torch  {name} {size[0]}x{size[1]} batch {bs:4d}: {rate:8.1f} pairs/s "
                      f"({rate / ref:.0f}x), peak memory {peak:.2f} GiB")
    else:
        print("  (no CUDA device: no GPU rows)")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
