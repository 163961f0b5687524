"""Optical-flow throughput on the CPU: OpenCV's TV-L1 and tvl1-torch, on one core and on all, in one run.

Frames: consecutive frames of a real clip as grayscale, resized to 224x224. Each round measures every
row on the same pairs, one row after the other (rounds interleave the rows, so a change in the
machine's load hits them all); each figure is the median over ``--rounds`` rounds, in pairs/s:

- ``tvl1`` 1 core: OpenCV's Dual TV-L1 (default settings, the I3D reference), one pair at a time in
  a single-threaded process: **the reference** (1.00x) of the ratios;
- ``tvl1`` all cores: the same in a pool of one single-threaded process per core (as ``prep flow``);
- ``tvl1-torch`` 1 thread: batches in this process, torch on one thread;
- ``tvl1-torch`` all cores: batches shared among one single-threaded process per core (as ``prep flow
  --device cpu``, :class:`actionrec.prep.flow_batched.WorkerProcesses`);
- ``tvl1-torch`` 1 process x all threads (``--intraop``): torch's intra-op threads, the former way;
- DIS (medium), 1 core, the fast alternative; with CUDA, tvl1-torch on the GPU (peak memory).

"scaling" is an all-core figure over (its 1-core figure x cores): 1.00 is a perfect use of the cores.
Pure computation: no JPEG reading or writing.

    nice -n 10 python benchmarks/bench_flow.py [--rounds 3] [--pairs 4] [--workers N] [--intraop] [VIDEO]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def _opencv_pair(pair: tuple[np.ndarray, np.ndarray]) -> int:
    from actionrec.data.flow import make_flow_fn

    global _TVL1
    if "_TVL1" not in globals():
        _TVL1 = make_flow_fn("tvl1")
    _TVL1(pair[0][None], pair[1][None])
    return 1


def _frames(video: Path, n: int, size: tuple[int, int] | None) -> list[np.ndarray]:
    import cv2

    from actionrec.data.flow import to_gray
    from actionrec.data.video import VideoReader

    gray = [to_gray(f) for f in VideoReader(video).get_frames(range(100, 100 + n))]
    return [cv2.resize(g, size[::-1], interpolation=cv2.INTER_AREA) for g in gray] if size else gray


def host_cpu() -> str:
    """``lscpu``'s model name (the runtime's reading of /proc/cpuinfo where lscpu is absent)."""
    if shutil.which("lscpu"):
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            if line.strip().lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    from actionrec.runtime import host_info

    return host_info()["cpu"]


def _rate(n: int, fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t0)


def _cuda_rows(a: argparse.Namespace, ref: float) -> None:
    import cv2
    import torch

    from actionrec.data.flow import make_flow_fn

    name = torch.cuda.get_device_name()
    gpu = make_flow_fn("tvl1-torch", device="cuda")
    for size in ((224, 224), (256, 340)):
        for bs in a.cuda_batch_sizes:
            g = [cv2.resize(x, size[::-1], interpolation=cv2.INTER_AREA) for x in _frames(a.video, bs + 1, None)]
            p, q = np.stack(g[:-1]), np.stack(g[1:])
            gpu(p[:2], q[:2])  # warm-up
            torch.cuda.reset_peak_memory_stats()
            times = []
            for _ in range(a.rounds):
                t0 = time.perf_counter()
                gpu(p, q)  # returns numpy: synchronised
                times.append(time.perf_counter() - t0)
            rate = bs / statistics.median(times)
            print(f"  tvl1-torch  {name} {size[0]}x{size[1]} batch {bs:4d}: {rate:8.1f} pairs/s ({rate / ref:.0f}x), "
                  f"peak memory {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


def _rows(a: argparse.Namespace, n: int, pool: object, workers: object) -> dict[str, tuple[int, Callable[[], object]]]:
    """Row name → (pairs done, the function that does them), in the order measured and printed."""
    from actionrec.data.flow import make_flow_fn
    from actionrec.runtime import resolve_runtime

    gray = _frames(a.video, a.pairs + 1, (224, 224))
    pairs = list(zip(gray[:-1], gray[1:]))
    copies = -(-2 * n // len(pairs))  # every core gets at least 2 pairs
    many = pairs * copies
    prev, nxt = np.stack(gray[:-1]), np.stack(gray[1:])
    prev_m, nxt_m = np.concatenate([prev] * copies), np.concatenate([nxt] * copies)
    torch_fn = make_flow_fn("tvl1-torch", device="cpu")
    dis = make_flow_fn("dis", dis_preset="medium")

    def torch_parts() -> None:  # as run_batched keeps 2 x workers parts in flight
        futs = [workers.submit(prev_m[i::2 * n], nxt_m[i::2 * n]) for i in range(min(2 * n, len(prev_m)))]
        for f in futs:
            f.result()

    def intraop() -> None:
        with resolve_runtime(device="cpu", threads=n).applied():
            torch_fn(prev, nxt)

    pool.map(_opencv_pair, pairs[:1] * n, chunksize=1)  # warm-up
    torch_fn(prev[:1], nxt[:1])
    torch_parts()
    rows = {
        "tvl1 (OpenCV)  1 core": (len(pairs), lambda: [_opencv_pair(p) for p in pairs]),
        f"tvl1 (OpenCV)  {n} cores, {n} procs x 1 thread": (len(many), lambda: pool.map(_opencv_pair, many, chunksize=1)),
        f"tvl1-torch     1 thread, batch {len(pairs)}": (len(pairs), lambda: torch_fn(prev, nxt)),
        f"tvl1-torch     {n} cores, {n} procs x 1 thread": (len(many), torch_parts),
    }
    if a.intraop:
        rows[f"tvl1-torch     1 proc x {n} threads, batch {len(pairs)}"] = (len(pairs), intraop)
    rows["dis medium (OpenCV) 1 core"] = (3 * len(pairs), lambda: [dis(p[None], q[None]) for p, q in pairs * 3])
    return rows


def _print_table(med: dict[str, float], n: int, rounds: int) -> None:
    names = list(med)
    ref = med[names[0]]
    print(f"224x224 grayscale pairs, median of {rounds} interleaved rounds; pairs/s, ratio to OpenCV TV-L1 on 1 core "
          f"(the reference), and scaling = all-core figure / (1-core figure x {n})")
    one_core = {names[1]: names[0], names[3]: names[2]}  # all-core row → its 1-core row
    one_core.update({k: names[2] for k in names if "1 proc x" in k})
    for k in names:
        scale = f"   scaling {med[k] / (med[one_core[k]] * n):.2f}" if k in one_core else ""
        print(f"  {k:48s} {med[k]:8.2f}   ({med[k] / ref:.2f}x){scale}")


def main() -> None:
    import multiprocessing

    import cv2
    import torch

    from actionrec.data.flow import FlowOptions
    from actionrec.prep.common import pool_init
    from actionrec.prep.flow_batched import WorkerProcesses
    from actionrec.runtime import available_cores, host_info, resolve_runtime

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("video", nargs="?", type=Path, default=ROOT / "tests/data/h264.mp4")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=available_cores(), help="cores for the all-core rows [all]")
    ap.add_argument("--pairs", type=int, default=4, help="distinct pairs; 1-core rows do them once, all-core rows "
                    "ceil(2 x workers / pairs) times, so that every core has at least 2 [4]")
    ap.add_argument("--intraop", action="store_true", help="also tvl1-torch in one process on all threads (slow "
                    "where it collapses)")
    ap.add_argument("--cuda-batch-sizes", type=int, nargs="+", default=[32, 128])
    a = ap.parse_args()
    n = a.workers
    info = host_info()
    print(f"host: {host_cpu()} ({info['cpu_capability']}), {info['available_cores']} available cores; all-core rows: "
          f"{n}; torch {torch.__version__}, OpenCV {cv2.__version__}; load average before: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    resolve_runtime(device="cpu", threads=1).apply()  # this process: the 1-core rows
    pool = multiprocessing.get_context().Pool(n, initializer=pool_init)  # the processes before any compute thread
    workers = WorkerProcesses("tvl1-torch", FlowOptions(device="cpu"), n)
    try:
        rows = _rows(a, n, pool, workers)
        rates: dict[str, list[float]] = {k: [] for k in rows}
        for r in range(a.rounds):
            for k, (count, fn) in rows.items():
                rates[k].append(_rate(count, fn))
            print(f"  round {r + 1}/{a.rounds}: " + ", ".join(f"{v[-1]:.2f}" for v in rates.values()), flush=True)
    finally:
        pool.terminate()
        workers.close()
    med = {k: statistics.median(v) for k, v in rates.items()}
    _print_table(med, n, a.rounds)
    if torch.cuda.is_available():
        _cuda_rows(a, med[next(iter(med))])
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
