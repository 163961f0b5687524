"""The one MODEL resolver: every kind of MODEL argument, and one-line errors for the rest."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from actionrec.checkpoint import save_model
from actionrec.cli import main
from actionrec.deploy.onnx_export import export_onnx
from actionrec.deploy.source import file_kind, resolve_model
from actionrec.errors import UsageError
from tests.deploy.conftest import tiny_model


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[torch.nn.Module, Path, Path]:
    d = tmp_path_factory.mktemp("src")
    model = tiny_model("r2plus1d_18")
    ckpt, onnx_path = d / "tiny.safetensors", d / "tiny.onnx"
    save_model(model, ckpt)
    export_onnx(model, onnx_path, check=False)
    return model, ckpt, onnx_path


def test_every_kind_of_model_argument(files) -> None:  # noqa: ANN001
    model, ckpt, onnx_path = files
    src = resolve_model(ckpt)
    assert (src.kind, src.path) == ("checkpoint", ckpt) and src.meta.num_classes == 5  # from the header alone
    assert src._module is None  # nothing loaded for the metadata
    assert torch.equal(src.torch_model()(torch.ones(1, 3, 4, 32, 32)), model(torch.ones(1, 3, 4, 32, 32)))
    onnx = resolve_model(str(onnx_path))
    assert onnx.kind == "onnx" and onnx.meta.arch == "r2plus1d_18"
    with pytest.raises(UsageError, match="holds no PyTorch model"):
        onnx.torch_model()
    assert resolve_model(model).kind == "module"
    arch = resolve_model("r3d_18", allow_arch=True, num_classes=7)
    assert arch.kind == "arch" and arch.meta.num_classes == 7
    assert resolve_model("i3d_kinetics400").kind == "weights"  # a known weight set: nothing fetched to resolve it
    assert [file_kind(p) for p in ("a.onnx", "b.PT2", "c.safetensors", "d.pth")] == ["onnx", "pt2", "checkpoint", "checkpoint"]


def test_errors_name_the_argument_and_the_close_matches(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        resolve_model(tmp_path / "missing.safetensors")
    with pytest.raises(FileNotFoundError, match="model file not found: runs/best"):
        resolve_model("runs/best")
    with pytest.raises(UsageError, match="a directory"):
        resolve_model(tmp_path)
    with pytest.raises(UsageError, match=r"did you mean 'i3d_kinetics400'( or '\w+')*\?.*`actionrec weights list`"):
        resolve_model("i3d_kinetic400")
    with pytest.raises(UsageError, match="is not a model file, a known weight set or an architecture"):
        resolve_model("r2plus1d_18x9", allow_arch=True)
    with pytest.raises(UsageError, match="is not a model file or a known weight set"):
        resolve_model("r2plus1d_18x9")
    with pytest.raises(UsageError, match="an architecture with random weights, not a model to run"):
        resolve_model("r2plus1d_18")
    with pytest.raises(UsageError, match="no .meta"):
        resolve_model(torch.nn.Conv3d(3, 3, 1))


def test_commands_share_the_resolver(files, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    _, _, onnx_path = files
    video = Path(__file__).parents[1] / "data" / "short.mp4"
    for argv in (["predict", "i3d_kinetic400", str(video)], ["info", "r2plus1d_19"], ["export", "i3d_kinetic400", "-o", "x.onnx"],
                 ["bench", "r2plus1d_19"]):
        assert main(argv) == 2, argv
        assert "did you mean" in capsys.readouterr().err, argv
    assert main(["info", str(onnx_path)]) == 0
    assert "an onnx export" in capsys.readouterr().out
