"""Dynamic batching: clips of concurrent requests share one forward pass.

Requests put their clips, ``(V, C, T, H, W)``, into a bounded queue (counted in clips). One worker
thread takes up to ``max_batch`` clips, waiting at most ``max_wait_ms`` after the first for more,
runs ``forward`` on the concatenation and hands each request its rows of the logits. A request's
clips may be split over consecutive batches; its future completes when all rows are back.
A full queue refuses new work at once (:class:`QueueFull`, the server's 503 with ``Retry-After``).

Background work (``submit(..., background=True)``: the windows of long-video jobs) waits in a second
queue and only fills the room a batch has left after every waiting request's clips: a job never
delays a request by more than the one forward pass already running.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass, field

import torch

__all__ = ["DynamicBatcher", "QueueFull", "BatcherClosed"]

log = logging.getLogger(__name__)


class QueueFull(RuntimeError):
    """The queue has no room for the request's clips."""


class BatcherClosed(RuntimeError):
    """The batcher was shut down."""


@dataclass
class _Job:
    clips: torch.Tensor  # (V, C, T, H, W)
    future: Future
    taken: int = 0  # clips handed to the worker so far
    parts: dict[int, torch.Tensor] = field(default_factory=dict)  # start row -> logits (n, K)
    done_rows: int = 0


class DynamicBatcher:
    """One inference thread fed by a bounded clip queue.

    Args:
        forward: ``(N, C, T, H, W) → (N, K)`` logits; only ever called from the worker thread.
        max_batch: most clips per forward pass.
        max_wait_ms: how long the worker waits for more clips once it has one.
        max_queue: most clips waiting (default ``4 * max_batch``).
        on_batch: called with ``(batch_size, seconds)`` after each forward pass (metrics).
    """

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], *, max_batch: int = 8, max_wait_ms: float = 20.0,
                 max_queue: int | None = None, on_batch: Callable[[int, float], None] | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.forward = forward
        self.max_batch = int(max_batch)
        self.max_wait = max(0.0, float(max_wait_ms)) / 1000
        self.max_queue = int(max_queue or 4 * max_batch)
        self.on_batch = on_batch
        self._jobs: deque[_Job] = deque()
        self._queued = 0  # clips not yet taken by the worker
        self._background: deque[_Job] = deque()  # taken only when no request's clips wait
        self._queued_background = 0
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="actionrec-inference", daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Clips waiting for the worker (requests' and background work's)."""
        return self._queued + self._queued_background

    def submit(self, clips: torch.Tensor, *, background: bool = False) -> Future:
        """Queue ``clips`` ``(V, C, T, H, W)``; the future gives their logits ``(V, K)``.

        Requests raise :class:`QueueFull` over ``max_queue``; ``background`` work is not bounded here
        (its callers wait for each result before they submit more).
        """
        v = int(clips.shape[0])
        fut: Future = Future()
        with self._cond:
            if self._closed:
                raise BatcherClosed("the inference worker has stopped")
            if background:
                self._background.append(_Job(clips, fut))
                self._queued_background += v
            else:
                if self._queued + v > max(self.max_queue, v if self._queued == 0 else 0):
                    raise QueueFull(f"inference queue full ({self._queued} of {self.max_queue} clips waiting)")
                self._jobs.append(_Job(clips, fut))
                self._queued += v
            self._cond.notify()
        return fut

    def close(self, timeout: float | None = 5.0) -> None:
        """Stop the worker; queued requests fail with :class:`BatcherClosed`."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout)

    # --- worker ---------------------------------------------------------------------------------
    def _take(self) -> list[tuple[_Job, int, int]] | None:
        """Up to ``max_batch`` clips as ``(job, start, stop)`` slices (requests first), or ``None`` when closed."""
        with self._cond:
            while not self._jobs and not self._background and not self._closed:
                self._cond.wait()
            if self._closed:
                return None
            deadline = time.monotonic() + self.max_wait
            while self.depth < self.max_batch and not self._closed:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            picked: list[tuple[_Job, int, int]] = []
            self._queued -= self._pick(self._jobs, picked)
            self._queued_background -= self._pick(self._background, picked)
            return picked

    def _pick(self, jobs: deque[_Job], picked: list[tuple[_Job, int, int]]) -> int:
        """Move clips of ``jobs`` into ``picked`` up to ``max_batch`` in all; returns the clips it dequeued."""
        dequeued, room = 0, self.max_batch - sum(b - a for _, a, b in picked)
        while jobs and room:
            job = jobs[0]
            if job.future.done():  # the request gave up (timeout, client gone) or failed: skip the rest
                jobs.popleft()
                dequeued += len(job.clips) - job.taken
                continue
            n = min(room, len(job.clips) - job.taken)
            picked.append((job, job.taken, job.taken + n))
            job.taken += n
            room -= n
            dequeued += n
            if job.taken == len(job.clips):
                jobs.popleft()
        return dequeued

    def _run(self) -> None:
        while True:
            picked = self._take()
            if picked is None:
                break
            if not picked:
                continue
            batch = torch.cat([job.clips[a:b] for job, a, b in picked])
            t = time.perf_counter()
            try:
                logits = self.forward(batch)
            except BaseException as e:  # noqa: BLE001 - every waiting request gets the error, the worker lives on
                log.exception("inference failed on a batch of %d clips", len(batch))
                for job, _, _ in picked:
                    _settle(job.future, error=e)
                continue
            if self.on_batch:
                self.on_batch(len(batch), time.perf_counter() - t)
            row = 0
            for job, a, b in picked:
                job.parts[a] = logits[row : row + b - a]
                row += b - a
                job.done_rows += b - a
                if job.done_rows == len(job.clips):
                    _settle(job.future, result=torch.cat([job.parts[k] for k in sorted(job.parts)]))
        with self._cond:
            for job in (*self._jobs, *self._background):
                _settle(job.future, error=BatcherClosed("the inference worker has stopped"))
            self._jobs.clear()
            self._background.clear()
            self._queued = self._queued_background = 0


def _settle(future: Future, *, result: torch.Tensor | None = None, error: BaseException | None = None) -> None:
    """Complete ``future`` unless the request already cancelled it (a race with its timeout is harmless)."""
    try:
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass
