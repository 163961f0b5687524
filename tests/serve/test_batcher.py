"""The dynamic batcher: batching, splitting, a full queue, errors, cancelled requests."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from actionrec.serve.batcher import DynamicBatcher, QueueFull


def clips(v: int, tag: float) -> torch.Tensor:
    """``v`` clips (V, C, T, H, W) whose every value is ``tag + i``, so each row is identifiable."""
    return (torch.arange(v, dtype=torch.float32) + tag).view(v, 1, 1, 1, 1).expand(v, 3, 2, 2, 2).clone()


class Recorder:
    """``forward``: logits ``(N, 2)`` = (first value of the clip, batch size); optionally held at a gate."""

    def __init__(self, gate: threading.Event | None = None, fail_on: float | None = None) -> None:
        self.sizes: list[int] = []
        self.gate = gate
        self.fail_on = fail_on

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.gate is not None:
            assert self.gate.wait(10)
        self.sizes.append(len(x))
        first = x.flatten(1)[:, 0]
        if self.fail_on is not None and bool((first == self.fail_on).any()):
            raise RuntimeError("bad batch")
        return torch.stack([first, torch.full_like(first, len(x))], 1)


def test_concurrent_requests_share_a_batch_and_get_their_own_rows() -> None:
    fwd = Recorder()
    b = DynamicBatcher(fwd, max_batch=8, max_wait_ms=300)
    try:
        futs = [b.submit(clips(2, 10.0 * i)) for i in range(4)]  # 8 clips within the wait: one batch
        outs = [f.result(10) for f in futs]
    finally:
        b.close()
    assert fwd.sizes == [8]
    for i, out in enumerate(outs):
        assert out[:, 0].tolist() == [10.0 * i, 10.0 * i + 1]


def test_a_request_larger_than_max_batch_is_split_and_reassembled() -> None:
    fwd = Recorder()
    b = DynamicBatcher(fwd, max_batch=3, max_wait_ms=0)
    try:
        out = b.submit(clips(7, 100.0)).result(10)
    finally:
        b.close()
    assert fwd.sizes == [3, 3, 1]
    assert out[:, 0].tolist() == [100.0 + i for i in range(7)]


def test_full_queue_refuses_at_once_and_recovers() -> None:
    gate = threading.Event()
    fwd = Recorder(gate)
    b = DynamicBatcher(fwd, max_batch=2, max_wait_ms=0, max_queue=4)
    try:
        first = b.submit(clips(2, 0.0))  # taken by the worker, held at the gate
        deadline = time.monotonic() + 5
        while b.depth and time.monotonic() < deadline:
            time.sleep(0.01)
        queued = [b.submit(clips(2, 10.0)), b.submit(clips(2, 20.0))]  # 4 clips waiting: full
        t = time.perf_counter()
        with pytest.raises(QueueFull, match="queue full"):
            b.submit(clips(1, 30.0))
        assert time.perf_counter() - t < 0.5
        gate.set()
        assert first.result(10)[:, 0].tolist() == [0.0, 1.0]
        assert [f.result(10)[0, 0].item() for f in queued] == [10.0, 20.0]
        assert b.submit(clips(1, 40.0)).result(10)[0, 0].item() == 40.0
    finally:
        gate.set()
        b.close()


def test_forward_error_reaches_the_request_and_the_worker_lives_on() -> None:
    b = DynamicBatcher(Recorder(fail_on=-1.0), max_batch=4, max_wait_ms=0)
    try:
        with pytest.raises(RuntimeError, match="bad batch"):
            b.submit(clips(1, -1.0)).result(10)
        assert b.submit(clips(1, 5.0)).result(10)[0, 0].item() == 5.0
    finally:
        b.close()


def test_cancelled_request_is_not_computed() -> None:
    gate = threading.Event()
    fwd = Recorder(gate)
    b = DynamicBatcher(fwd, max_batch=1, max_wait_ms=0)
    try:
        held = b.submit(clips(1, 0.0))
        deadline = time.monotonic() + 5
        while b.depth and time.monotonic() < deadline:
            time.sleep(0.01)
        gone = b.submit(clips(1, 1.0))
        kept = b.submit(clips(1, 2.0))
        assert gone.cancel()
        gate.set()
        assert held.result(10)[0, 0].item() == 0.0 and kept.result(10)[0, 0].item() == 2.0
        assert fwd.sizes == [1, 1]
    finally:
        gate.set()
        b.close()


def test_close_fails_waiting_requests() -> None:
    gate = threading.Event()
    b = DynamicBatcher(Recorder(gate), max_batch=1, max_wait_ms=0)
    b.submit(clips(1, 0.0))
    waiting = b.submit(clips(1, 1.0))
    threading.Timer(0.2, gate.set).start()
    b.close()
    with pytest.raises(RuntimeError, match="stopped"):
        waiting.result(10)


def test_background_work_only_fills_the_room_requests_leave() -> None:
    """Job windows (background) wait behind requests' clips and are not bounded by the request queue."""
    gate = threading.Event()
    fwd = Recorder(gate)
    b = DynamicBatcher(fwd, max_batch=4, max_wait_ms=0, max_queue=2)
    try:
        first = b.submit(clips(1, 0.0))  # taken at once, held at the gate
        time.sleep(0.2)
        background = b.submit(clips(5, 100.0), background=True)  # over max_queue: background is not refused
        request = b.submit(clips(2, 200.0))  # arrives later, goes first
        gate.set()
        outs = [f.result(10) for f in (first, background, request)]
    finally:
        b.close()
    assert fwd.sizes == [1, 4, 3]
    assert outs[2][:, 1].tolist() == [4, 4]  # the request's 2 clips in the next batch, with 2 of the job's
    assert outs[1][:, 0].tolist() == [100.0 + i for i in range(5)] and outs[1][:, 1].tolist() == [4, 4, 3, 3, 3]
