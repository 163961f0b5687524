"""``prep flow`` for batched algorithms (``tvl1-torch``): same-size pairs of many videos, in batches, on one device.

Threads read the tasks' frames ahead (JPEG folders or videos, each decoded once) and write the
results; this thread only stacks pairs into batches and runs the algorithm, so the device is fed
while images are decoded and encoded. Pairs wait in one queue per frame size until a batch is full
(or the input ends). A task is reported once all of its pairs are written, as ``flow_chunk`` does.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actionrec.data.flow import FlowFn


@dataclass
class _Task:
    key: str
    tmp: Path
    pairs: int = 0  # known once read
    computed: int = 0
    writes: list[Future] = field(default_factory=list)
    error: str | None = None


def run_batched(tasks: list[tuple], fn: FlowFn, *, read: Callable[[tuple], list[np.ndarray]],
                write: Callable[[Path, int, np.ndarray], None], batch_size: int,
                threads: int) -> Iterator[tuple[str, int, str | None]]:
    """Compute ``flow_chunk``-style tasks ``(key, source, tmp, start, end, ...)`` with the batch function ``fn``.

    ``read(task)`` gives the task's grayscale frames, ``write(tmp, k, flow)`` stores pair k; yields
    ``(key, pairs written, error)`` per task.
    """
    import torch

    if not tasks:
        return
    queues: dict[tuple[int, int], list[tuple[_Task, int, np.ndarray, np.ndarray]]] = defaultdict(list)
    live: list[_Task] = []

    def run(size: tuple[int, int]) -> None:
        batch, queues[size] = queues[size], []
        batch = [b for b in batch if b[0].error is None]
        if not batch:
            return
        try:
            flows = fn(np.stack([b[2] for b in batch]), np.stack([b[3] for b in batch]))
        except torch.cuda.OutOfMemoryError as e:
            for t in {id(b[0]): b[0] for b in batch}.values():
                t.error = f"out of device memory for a batch of {len(batch)} {size[1]}x{size[0]} pairs: lower --batch-size ({e})"
            return
        for (t, k, _, _), f in zip(batch, flows):
            t.writes.append(writer.submit(write, t.tmp, k, f))
            t.computed += 1

    def finished(wait: bool) -> Iterator[tuple[str, int, str | None]]:
        for t in list(live):
            if t.error is None and t.computed < t.pairs or not wait and not all(w.done() for w in t.writes):
                continue
            live.remove(t)
            try:
                for w in t.writes:
                    w.result()
            except OSError as e:
                t.error = t.error or f"{type(e).__name__}: {e}"
            yield (t.key, 0, t.error) if t.error else (t.key, t.pairs, None)

    threads = max(1, threads)
    with ThreadPoolExecutor(threads, thread_name_prefix="flow-read") as reader, \
            ThreadPoolExecutor(threads, thread_name_prefix="flow-write") as writer:
        ahead = 2 * threads  # tasks read ahead of the device
        reads = [reader.submit(read, t) for t in tasks[:ahead]]
        for i, task in enumerate(tasks):
            if i + ahead < len(tasks):
                reads.append(reader.submit(read, tasks[i + ahead]))
            t = _Task(key=task[0], tmp=Path(task[2]))
            live.append(t)
            try:
                frames = reads[i].result()
                reads[i] = None  # free the frames once queued
                if len(frames) < 2:
                    raise ValueError(f"{len(frames)} frame(s): flow needs at least 2")
            except Exception as e:  # noqa: BLE001 - one unreadable video is reported, not fatal
                t.error = f"{type(e).__name__}: {e}"
                frames = []
            t.pairs = max(0, len(frames) - 1)
            for k in range(t.pairs):
                size = frames[k].shape
                if frames[k + 1].shape != size:
                    t.error = f"frame {task[3] + k + 2} is {frames[k + 1].shape[::-1]}, frame 1 {size[::-1]} (w, h)"
                    break
                queues[size].append((t, task[3] + k, frames[k], frames[k + 1]))
                if len(queues[size]) >= batch_size:
                    run(size)
            yield from finished(wait=False)
        for size in list(queues):
            run(size)
        yield from finished(wait=True)
