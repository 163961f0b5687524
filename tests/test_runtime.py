"""The runtime: one owner of threads and devices, options declared once, one backend vocabulary."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from actionrec.errors import UsageError
from actionrec.runtime import Runtime, available_cores, resolve_runtime, worker_init

PACKAGE = Path(__file__).parents[1] / "actionrec"


def test_defaults_and_validation() -> None:
    rt = resolve_runtime()
    assert rt == Runtime(device="cpu", threads=available_cores(), precision="fp32")
    assert resolve_runtime(threads=1, precision="bf16").precision == "bf16"
    for bad in (0, -1, 1025, True, 2.0, "2"):
        with pytest.raises(UsageError, match="threads must be an integer"):
            resolve_runtime(threads=bad)
    with pytest.raises(UsageError, match="precision must be one of fp32, fp16, bf16"):
        resolve_runtime(precision="fp8")
    with pytest.raises(UsageError, match="fp16 needs a GPU"):
        resolve_runtime(precision="fp16")
    with pytest.raises(UsageError, match="'cpu', 'cuda', 'cuda:N' or 'auto'"):
        resolve_runtime(device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(UsageError, match="no CUDA device here"):
            resolve_runtime(device="cuda:0")
        assert resolve_runtime(device="auto").device == "cpu"


def test_apply_applied_and_workers() -> None:
    before = torch.get_num_threads()
    with Runtime(threads=1, deterministic=True).applied() as rt:
        assert torch.get_num_threads() == 1 and rt.threads == 1
        assert torch.are_deterministic_algorithms_enabled()
    assert torch.get_num_threads() == before and not torch.are_deterministic_algorithms_enabled()
    code = ("import torch, cv2; from actionrec.runtime import worker_init; torch.set_num_threads(2); worker_init(); "
            "print(torch.get_num_threads(), cv2.getNumThreads())")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split() == ["1", "1"]
    assert callable(worker_init)


def test_recorded_runtime_names_the_host() -> None:
    d = Runtime(threads=1).as_dict()
    assert {"device", "threads", "precision", "cpu", "cpu_capability", "torch", "available_cores"} <= set(d)
    assert d["cpu_capability"] == torch.backends.cpu.get_cpu_capability()


def test_bf16_autocast_runs_on_the_cpu() -> None:
    conv = torch.nn.Conv3d(3, 4, 3)
    with Runtime(precision="bf16").autocast():
        out = conv(torch.randn(1, 3, 4, 8, 8))
    assert out.dtype == torch.bfloat16


def _files_with(pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py") if rx.search(p.read_text()))


def test_one_owner_of_threads_and_one_threads_option() -> None:
    assert _files_with(r"set_num_threads\(|set_num_interop_threads\(") == ["runtime.py"]
    assert _files_with(r"[\"']--threads[\"']") == ["options.py"]
    assert _files_with(r"[\"']--backend[\"']") == ["options.py"]
    assert _files_with(r"[\"']--device[\"']") == ["options.py"]


def _backend_names_in_help(argv: list[str]) -> set[str]:
    from actionrec.deploy.backends import BACKENDS

    out = subprocess.run([sys.executable, "-m", "actionrec.cli", *argv, "--help"], capture_output=True, text=True,
                         check=True, env={"COLUMNS": "2000", "PATH": ""}).stdout
    return {n for n in BACKENDS.names() if re.search(rf"\b{re.escape(n)} \(", out)}


def test_bench_serve_predict_eval_list_the_same_backends() -> None:
    from actionrec.deploy.backends import BACKENDS

    every = set(BACKENDS.names())
    for argv in (["predict"], ["serve"], ["bench"], ["eval"], ["stream"]):
        assert _backend_names_in_help(argv) == every, argv
