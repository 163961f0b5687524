import pytest
import torch

from actionrec.checkpoint import save_model
from actionrec.deploy.onnx_export import export_onnx
from actionrec.deploy.backends import load_backend
from actionrec.deploy.predictor import OnnxPredictor, TorchPredictor
from tests.deploy.conftest import tiny_model

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pred")
    model = tiny_model("r2plus1d_18")
    ckpt = save_model(model, d / "m.safetensors")
    onnx_path = d / "m.onnx"
    export_onnx(model, onnx_path, example=torch.randn(1, 3, 4, 32, 32))
    return model, ckpt, onnx_path


def test_every_source_and_backend_gives_the_same_logits(files):
    model, ckpt, onnx_path = files
    x = torch.randn(3, 3, 4, 32, 32)
    with torch.inference_mode():
        ref = model(x)
    preds = {
        "ckpt-default": load_backend(ckpt),
        "ckpt-eager": load_backend(ckpt, optimize=False),
        "module": load_backend(model),
        "onnx": load_backend(onnx_path),
        "onnx-basic": load_backend(onnx_path, optimize=False),
        "ckpt-ort": load_backend(ckpt, backend="onnxruntime"),
    }
    assert isinstance(preds["ckpt-default"], TorchPredictor) and preds["ckpt-default"].info["optimize"] == "fold_cl"
    assert preds["ckpt-eager"].info["optimize"] == "eager"
    assert isinstance(preds["onnx"], OnnxPredictor) and preds["onnx"].backend == "onnxruntime"
    assert isinstance(preds["ckpt-ort"], OnnxPredictor)
    for name, p in preds.items():
        out = p(x)
        assert out.dtype == torch.float32 and out.shape == (3, 5) and out.device.type == "cpu", name
        assert (out - ref).abs().max() <= 1e-3, name
        assert p.meta.arch == "r2plus1d_18" and p.meta.num_classes == 5


def test_predictor_errors(files, tmp_path):
    model, ckpt, onnx_path = files
    with pytest.raises(ValueError, match="unknown backend"):
        load_backend(ckpt, backend="tensorflow")
    with pytest.raises(ValueError, match="onnxruntime, not torch"):
        load_backend(onnx_path, backend="torch")
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        load_backend(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match="no .meta"):
        load_backend(torch.nn.Conv3d(3, 3, 1))
    p = load_backend(onnx_path)
    with pytest.raises(ValueError, match="takes 3 channels"):
        p(torch.randn(1, 2, 4, 32, 32))
    with pytest.raises(ValueError, match=r"\(N, C, T, H, W\)"):
        p(torch.randn(3, 4, 32, 32))
