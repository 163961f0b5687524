"""``prep flow`` for batched algorithms (``tvl1-torch``): same-size pairs of many videos, in batches.

Threads read the tasks' frames ahead (JPEG folders or videos, each decoded once) and write the
results; this thread stacks pairs into batches and hands them to a :class:`BatchComputer`:

- on a GPU, :class:`InProcess`: this process runs each batch on the device;
- on the CPU, :class:`WorkerProcesses`: each batch is split among single-threaded worker processes,
  one per core, and several parts are in flight at once. Torch's intra-op threads do not pay here:
  TV-L1 is some 10⁵ small element-wise steps per pair, and every one of them is a fork/join of the
  thread team, whose barrier waits for the slowest thread; a thread that the OS has descheduled (a
  busy machine, or this process's own reading threads) stalls the whole team. One process of two
  threads ran 0.15× OpenCV where one thread ran 1.69× (docs/data.md); processes share no barrier.

Pairs wait in one queue per frame size until a batch is full (or the input ends). A task is
reported once all of its pairs are written, as ``flow_chunk`` does.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from actionrec.data.flow import FlowFn, FlowOptions, make_flow_fn

log = logging.getLogger(__name__)


class BatchComputer(Protocol):
    """Computes batches of pairs: ``submit(prev, next)`` → a future of the flow; ``parts``: how many
    pieces a batch is split into (one per worker), so that every worker has work."""

    parts: int

    def submit(self, prev: np.ndarray, nxt: np.ndarray) -> Future: ...


class InProcess:
    """Runs the flow function in this process (a GPU, or a CPU process of its own threads)."""

    parts = 1

    def __init__(self, fn: FlowFn) -> None:
        self.fn = fn

    def submit(self, prev: np.ndarray, nxt: np.ndarray) -> Future:
        fut: Future = Future()
        try:
            fut.set_result(self.fn(prev, nxt))
        except Exception as e:  # noqa: BLE001 - handed to the caller through the future, as a pool does
            fut.set_exception(e)
        return fut


_WORKER_FN: FlowFn | None = None


def _init_worker(algo: str, options: FlowOptions) -> None:
    """Initializer of a CPU flow worker: dies with its parent, one torch and OpenCV thread, its own algorithm."""
    global _WORKER_FN
    from actionrec.prep.common import pool_init

    pool_init()
    _WORKER_FN = make_flow_fn(algo, options)


def _worker_compute(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
    assert _WORKER_FN is not None, "worker not initialised"
    return _WORKER_FN(prev, nxt)


def worker_threads() -> tuple[int, int, int]:
    """(pid, torch threads, OpenCV threads) of the calling process."""
    import os

    import cv2
    import torch

    return os.getpid(), torch.get_num_threads(), cv2.getNumThreads()


class WorkerProcesses:
    """``workers`` single-threaded processes, each with its own instance of the algorithm (the CPU's way).

    All of them start in the constructor: call it before this process starts threads, since the
    default start method on Linux forks.
    """

    def __init__(self, algo: str, options: FlowOptions, workers: int) -> None:
        self.parts = workers
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(),
                                         initializer=_init_worker, initargs=(algo, options))
        self.threads = [f.result() for f in [self._pool.submit(worker_threads) for _ in range(workers)]]

    def submit(self, prev: np.ndarray, nxt: np.ndarray) -> Future:
        return self._pool.submit(_worker_compute, prev, nxt)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


@contextlib.contextmanager
def batch_computer(algo: str, options: FlowOptions, *, workers: int) -> Iterator[BatchComputer]:
    """Where ``algo``'s batches run: on ``options.device`` in this process, or, on the CPU, in
    ``workers`` single-threaded processes (see the module docstring)."""
    fn = make_flow_fn(algo, options)  # built here first: a bad option is one clear error, not a broken pool
    if options.device != "cpu":
        yield InProcess(fn)
        return
    pool = WorkerProcesses(algo, options, workers)
    log.info("flow (%s): %d CPU worker processes, 1 thread each", algo, workers)
    try:
        yield pool
    finally:
        pool.close()


@dataclass
class _Task:
    key: str
    tmp: Path
    pairs: int = 0  # known once read
    computed: int = 0
    writes: list[Future] = field(default_factory=list)
    error: str | None = None


def _split(items: list, parts: int) -> list[list]:
    """``items`` in at most ``parts`` consecutive runs of nearly equal length."""
    parts = max(1, min(parts, len(items)))
    q, r = divmod(len(items), parts)
    bounds = [i * q + min(i, r) for i in range(parts + 1)]
    return [items[bounds[i]:bounds[i + 1]] for i in range(parts)]


def _out_of_memory() -> tuple[type[BaseException], ...]:
    import torch

    return (torch.cuda.OutOfMemoryError,)


def run_batched(tasks: list[tuple], computer: BatchComputer, *, read: Callable[[tuple], list[np.ndarray]],
                write: Callable[[Path, int, np.ndarray], None], batch_size: int,
                threads: int) -> Iterator[tuple[str, int, str | None]]:
    """Compute ``flow_chunk``-style tasks ``(key, source, tmp, start, end, ...)`` with ``computer``.

    ``read(task)`` gives the task's grayscale frames, ``write(tmp, k, flow)`` stores pair k; yields
    ``(key, pairs written, error)`` per task. ``threads`` threads read and as many write.
    """
    if not tasks:
        return
    threads = max(1, threads)
    with ThreadPoolExecutor(threads, thread_name_prefix="flow-read") as reader, \
            ThreadPoolExecutor(threads, thread_name_prefix="flow-write") as writer:
        run = _Batches(computer, writer, write, batch_size)
        ahead = 2 * threads  # tasks read ahead of the computation
        reads: list[Any] = [reader.submit(read, t) for t in tasks[:ahead]]
        for i, task in enumerate(tasks):
            if i + ahead < len(tasks):
                reads.append(reader.submit(read, tasks[i + ahead]))
            t = _Task(key=task[0], tmp=Path(task[2]))
            run.live.append(t)
            run.add(t, task[3], _take(reads, i, t))
            yield from run.finished(wait=False)
        run.flush()
        yield from run.finished(wait=True)


class _Batches:
    """The pairs of :func:`run_batched`: queued per frame size, computed in parts, written by ``writer``."""

    def __init__(self, computer: BatchComputer, writer: ThreadPoolExecutor, write: Callable, batch_size: int) -> None:
        self.computer, self.writer, self.write, self.batch_size = computer, writer, write, batch_size
        self.queues: dict[tuple[int, int], list[tuple[_Task, int, np.ndarray, np.ndarray]]] = defaultdict(list)
        self.inflight: deque[tuple[list, Future]] = deque()  # (pairs, their future flow), oldest first
        self.live: list[_Task] = []
        self.limit = 2 * computer.parts  # parts in flight
        self.oom = _out_of_memory()

    def add(self, t: _Task, start: int, frames: list[np.ndarray]) -> None:
        """Queue the pairs of task ``t`` (its frames ``start``...); run the batches that are full."""
        t.pairs = max(0, len(frames) - 1)
        for k in range(t.pairs):
            size = frames[k].shape
            if frames[k + 1].shape != size:
                t.error = f"frame {start + k + 2} is {frames[k + 1].shape[::-1]}, frame 1 {size[::-1]} (w, h)"
                break
            self.queues[size].append((t, start + k, frames[k], frames[k + 1]))
            if len(self.queues[size]) >= self.batch_size:
                self.run(size)
        self.collect(self.limit)

    def run(self, size: tuple[int, int]) -> None:
        """Hand the queued pairs of ``size`` to the computer, in one part per worker."""
        batch, self.queues[size] = self.queues[size], []
        batch = [b for b in batch if b[0].error is None]
        for part in _split(batch, self.computer.parts) if batch else []:
            fut = self.computer.submit(np.stack([b[2] for b in part]), np.stack([b[3] for b in part]))
            self.inflight.append((part, fut))
        self.collect(self.limit)

    def flush(self) -> None:
        for size in list(self.queues):
            self.run(size)
        self.collect(0)

    def collect(self, limit: int) -> None:
        """Hand finished parts to the writers; wait for the oldest while more than ``limit`` are in flight."""
        while self.inflight and (len(self.inflight) > limit or self.inflight[0][1].done()):
            part, fut = self.inflight.popleft()
            try:
                flows = fut.result()
            except self.oom as e:
                h, w = part[0][2].shape
                for t in {id(b[0]): b[0] for b in part}.values():
                    t.error = f"out of device memory for a batch of {len(part)} {w}x{h} pairs: lower --batch-size ({e})"
                continue
            for (t, k, _, _), f in zip(part, flows):
                if t.error is None:  # a failed task's folder is removed: nothing more goes into it
                    t.writes.append(self.writer.submit(self.write, t.tmp, k, f))
                t.computed += 1

    def finished(self, wait: bool) -> Iterator[tuple[str, int, str | None]]:
        """(key, pairs, error) of the tasks that are complete (``wait``: of all, waiting for their writes)."""
        for t in list(self.live):
            if t.error is None and t.computed < t.pairs or not wait and not all(w.done() for w in t.writes):
                continue
            self.live.remove(t)
            try:
                for w in t.writes:
                    w.result()
            except OSError as e:
                t.error = t.error or f"{type(e).__name__}: {e}"
            yield (t.key, 0, t.error) if t.error else (t.key, t.pairs, None)


def _take(reads: list[Any], i: int, t: _Task) -> list[np.ndarray]:
    """The frames of read ``i`` (freed from the list once taken); a read error goes to ``t.error``."""
    try:
        frames = reads[i].result()
        if len(frames) < 2:
            raise ValueError(f"{len(frames)} frame(s): flow needs at least 2")
        return frames
    except Exception as e:  # noqa: BLE001 - one unreadable video is reported, not fatal
        t.error = f"{type(e).__name__}: {e}"
        return []
    finally:
        reads[i] = None
