"""OpenVINO backends (the `openvino` extra): fp32 equal to PyTorch, int8 calibrated on real clips, through the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("openvino", reason="OpenVINO is the optional extra: pip install 'actionrec[openvino]'")

from actionrec.checkpoint import save_model  # noqa: E402
from actionrec.cli import main  # noqa: E402
from actionrec.deploy.backends import BACKENDS, load_backend  # noqa: E402
from actionrec.deploy.clips import collect_clips  # noqa: E402
from actionrec.deploy.onnx_export import export_onnx  # noqa: E402
from actionrec.runtime import Runtime  # noqa: E402
from tests.deploy.conftest import tiny_model  # noqa: E402

# Not marked `numerics`: .ci/run's AVX2 rerun switches ATen's and oneDNN's kernels, not OpenVINO's (as for the
# ONNX Runtime tests).

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def model_and_clips() -> tuple[torch.nn.Module, torch.Tensor]:
    model = tiny_model("r2plus1d_18", clip_len=8, size=32)
    return model, collect_clips([DATA / "short.mp4", DATA / "xvid.avi"], model.meta, step=8)


def test_openvino_fp32_matches_torch_from_a_model_and_from_an_onnx_file(tmp_path: Path, model_and_clips) -> None:
    model, clips = model_and_clips
    ref = load_backend(model, backend="torch", optimize=False)(clips)
    ov = load_backend(model, backend="openvino", runtime=Runtime(threads=2))
    assert ov.info["precision"] == "f32" and ov.backend == "openvino"
    assert (ov(clips) - ref).abs().max().item() < 1e-4  # f32 inference precision: no bf16 on AMX/AVX-512-BF16 hosts
    export_onnx(model, tmp_path / "m.onnx", example=clips[:1])
    from_file = load_backend(tmp_path / "m.onnx", backend="openvino")
    assert from_file.meta.arch == "r2plus1d_18" and (from_file(clips[:3]) - ref[:3]).abs().max().item() < 1e-4


def test_openvino_int8_is_calibrated_on_real_clips_and_reports_agreement(model_and_clips) -> None:
    if not BACKENDS.get("openvino-int8").is_available():
        pytest.skip("NNCF is not installed (pip install 'actionrec[openvino]')")
    model, clips = model_and_clips
    q = load_backend(model, backend="openvino-int8", calib=clips)
    info = q.info
    assert "NNCF PTQ on 12 clips" in info["int8"] and len(info["int8"].split("['")[1].split("'")) >= 2  # the stem named
    assert 0.0 <= info["top1_agreement"] <= 1.0 and info["heldout_top1_agreement"] is not None
    assert 0 < info["max_abs_diff"] < 0.2  # int8 changes the logits, not wildly (measured ~0.05, as ORT's)
    out = q(clips)
    assert out.shape == (24, 5) and float(out.std(0).max()) > 0.02  # follows its input


def test_predict_cli_with_the_openvino_backend(tmp_path: Path, model_and_clips, capsys: pytest.CaptureFixture) -> None:
    model, _ = model_and_clips
    save_model(model, tmp_path / "m.safetensors")
    rows = {}
    for backend in ("torch", "openvino"):
        code = main(["predict", str(tmp_path / "m.safetensors"), str(DATA / "short.mp4"), "--backend", backend, "--json",
                     "--no-optimize"])
        out = capsys.readouterr()
        assert code == 0, out.err
        rows[backend] = json.loads(out.out.splitlines()[0])
    assert [p["label"] for p in rows["openvino"]["predictions"]] == [p["label"] for p in rows["torch"]["predictions"]]
    for a, b in zip(rows["openvino"]["predictions"], rows["torch"]["predictions"]):
        assert a["score"] == pytest.approx(b["score"], abs=1e-4)


FREE_OUT_OF_ORDER = """
import gc, signal, subprocess
from pathlib import Path
from actionrec.deploy.backends import load_backend
from actionrec.deploy.clips import collect_clips
from actionrec.runtime import Runtime
from tests.deploy.conftest import tiny_model

model = tiny_model("r2plus1d_18", clip_len=8, size=32)
clips = collect_clips([Path("tests/data/short.mp4"), Path("tests/data/xvid.avi")], model.meta, step=8)
first = load_backend(model, backend="openvino", runtime=Runtime(threads=1))
second = load_backend(model, backend=BACKEND, runtime=Runtime(threads=1), calib=clips)
del first; gc.collect()   # freed first-in first-out
del second; gc.collect()
signal.signal(signal.SIGCHLD, lambda *_: None)  # as PyTorch's DataLoader does in the main process
subprocess.run(["true"], check=True)
print("survived")
"""


def test_predictors_freed_out_of_order_leave_signal_handling_intact() -> None:
    """Each OpenVINO Core's CPU plugin swaps the thread's alternate signal stack; predictors freed out of order
    used to leave it pointing at freed memory, and the next SIGCHLD killed the process (SIGSEGV, exit -11).
    The second predictor is int8 where NNCF is there, so that NNCF's own Cores are in the sequence too."""
    backend = "openvino-int8" if BACKENDS.get("openvino-int8").is_available() else "openvino"
    root = Path(__file__).parents[2]
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", f"BACKEND = {backend!r}\n" + FREE_OUT_OF_ORDER], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "survived" in proc.stdout, (proc.returncode, proc.stderr[-2000:])
