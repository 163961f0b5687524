"""The flow-algorithm registry, and tvl1-torch on the CPU in single-threaded worker processes."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from actionrec.data.flow import FLOW_ALGORITHMS, FlowOptions, make_flow_fn, register_flow
from actionrec.errors import UsageError
from actionrec.registry import DuplicateNameError

DATA = Path(__file__).resolve().parent.parent / "data"


def test_registry_refuses_a_taken_name_and_suggests_close_ones():
    assert FLOW_ALGORITHMS.names() == ["tvl1", "tvl1-torch", "dis", "farneback"]
    with pytest.raises(DuplicateNameError, match="flow algorithm 'tvl1-torch' is already registered"):
        register_flow("tvl1-torch", batched=True, summary="a second one")(lambda opts: None)
    assert FLOW_ALGORITHMS.get("tvl1-torch").batched and not FLOW_ALGORITHMS.get("tvl1").batched
    with pytest.raises(UsageError, match="unknown flow algorithm 'tvl1torch' \\(did you mean 'tvl1-torch'"):
        make_flow_fn("tvl1torch")


def test_cli_lists_the_registry_without_torch_or_numpy():
    code = ("import sys, argparse; from actionrec.prep.cli import add_parsers; p = argparse.ArgumentParser(); "
            "add_parsers(p.add_subparsers()); "
            "print(sorted(m for m in ('torch', 'numpy', 'cv2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    from actionrec.cli import build_parser

    flow = build_parser().parse_args(["prep", "flow", "a", "b", "--algo", "farneback"])
    assert flow.algo == "farneback"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["prep", "flow", "a", "b", "--algo", "tvl2"])


def _gray_pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    import cv2

    from actionrec.data.flow import to_gray
    from actionrec.data.video import VideoReader

    g = [cv2.resize(to_gray(f), (48, 36), interpolation=cv2.INTER_AREA)
         for f in VideoReader(DATA / "short.mp4").get_frames(range(n + 1))]
    return np.stack(g[:-1]), np.stack(g[1:])


def test_cpu_batches_run_in_single_threaded_worker_processes():
    import cv2

    from actionrec.prep.flow_batched import WorkerProcesses, batch_computer
    from actionrec.runtime import resolve_runtime

    opts = FlowOptions(device="cpu", tvl1_scales=2, tvl1_warps=2)
    prev, nxt = _gray_pairs(4)
    cv_threads = cv2.getNumThreads()
    try:
        with resolve_runtime(threads=2).applied():  # the parent on 2 threads: the workers must not inherit them
            cv2.setNumThreads(2)
            with batch_computer("tvl1-torch", opts, workers=2) as comp:
                assert isinstance(comp, WorkerProcesses) and comp.parts == 2
                assert len(comp.threads) == 2 and os.getpid() not in {pid for pid, _, _ in comp.threads}
                assert {(t, c) for _, t, c in comp.threads} == {(1, 1)}
                parts = [comp.submit(prev[:2], nxt[:2]), comp.submit(prev[2:], nxt[2:])]
                flows = np.concatenate([f.result(timeout=120) for f in parts])
    finally:
        cv2.setNumThreads(cv_threads)
    with resolve_runtime(threads=1).applied():
        here = make_flow_fn("tvl1-torch", opts)(prev, nxt)  # the same algorithm in this process, one thread
    assert flows.shape == (4, 36, 48, 2)
    np.testing.assert_allclose(flows, here, atol=1e-4)


def test_gpu_batches_run_in_this_process():
    from actionrec.prep.flow_batched import InProcess, _split

    comp = InProcess(make_flow_fn("dis"))
    prev, nxt = _gray_pairs(2)
    assert comp.parts == 1 and comp.submit(prev, nxt).result().shape == (2, 36, 48, 2)
    with pytest.raises(UsageError):  # an error reaches the caller through the future, as from a pool
        comp.submit(prev[0], nxt[0]).result()
    assert [len(p) for p in _split(list(range(7)), 3)] == [3, 2, 2] and _split([1], 4) == [[1]]


@pytest.mark.parametrize("where", ["this process", "2 worker processes"])
def test_run_batched_writes_every_pair_once(tmp_path, where):
    """The batching loop as a GPU runs it (in this process) and as the CPU does (worker processes):
    pairs of two sizes and three tasks, batches that fill and the rest at the end, a task that cannot be read."""
    from actionrec.prep.flow_batched import batch_computer, run_batched

    prev, nxt = _gray_pairs(5)
    frames = {"a": list(prev) + [nxt[-1]], "b": [f[:32, :40].copy() for f in prev[:3]], "c": None}
    tasks = [(k, k, tmp_path / k, 0, None, {}) for k in frames]

    def read(task: tuple) -> list[np.ndarray]:
        if frames[task[0]] is None:
            raise OSError(f"cannot read image {task[0]}/img_00001.jpg")
        return frames[task[0]]

    written: dict[tuple[str, int], tuple] = {}

    def write(tmp: Path, k: int, flow: np.ndarray) -> None:
        assert (tmp.name, k) not in written
        written[(tmp.name, k)] = flow.shape

    if where == "this process":
        from actionrec.prep.flow_batched import InProcess

        ctx = contextlib.nullcontext(InProcess(make_flow_fn("dis")))
    else:
        ctx = batch_computer("dis", FlowOptions(device="cpu"), workers=2)
    with ctx as comp:
        results = sorted(run_batched(tasks, comp, read=read, write=write, batch_size=3, threads=2))
    assert results == [("a", 5, None), ("b", 2, None), ("c", 0, "OSError: cannot read image c/img_00001.jpg")]
    assert written == {**{("a", k): (36, 48, 2) for k in range(5)}, **{("b", k): (32, 40, 2) for k in range(2)}}

