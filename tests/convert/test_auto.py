"""``--from auto``: file formats recognised from their bytes, key layouts from their names; refusals say why."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from safetensors.torch import save_file

import actionrec
from actionrec.convert import convert_checkpoint, sniff_format
from actionrec.errors import UsageError

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def small_sd() -> dict[str, torch.Tensor]:
    return actionrec.create_model("mc3_18", num_classes=4, widths=(8, 8, 16, 16)).state_dict()


def test_formats_are_recognised(tmp_path: Path, small_sd: dict) -> None:
    torch.save(small_sd, tmp_path / "zip.pth")
    torch.save(small_sd, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    save_file({k: v.contiguous() for k, v in small_sd.items()}, str(tmp_path / "foreign.safetensors"))
    (tmp_path / "jax.ckpt").write_bytes(pickle.dumps({"params": {"a": np.zeros(2)}}, protocol=4))
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])  # fmt: skip
    onnx.save(helper.make_model(graph), str(tmp_path / "model.onnx"))
    found = {p.name: sniff_format(p) for p in tmp_path.iterdir()}
    assert found == {"zip.pth": "torch", "legacy.pth": "torch", "foreign.safetensors": "safetensors",
                     "jax.ckpt": "pickle", "model.onnx": "onnx"}  # fmt: skip
    assert sniff_format(DATA / "mindspore" / "tiny.ckpt") == "mindspore"
    assert sniff_format(DATA / "mindspore" / "tiny_encrypted.ckpt") == "mindspore-encrypted"


@pytest.mark.parametrize("name", ["zip.pth", "legacy.pth", "foreign.safetensors"])
def test_auto_converts_every_container_of_the_same_weights(tmp_path: Path, small_sd: dict, name: str) -> None:
    path = tmp_path / name
    if name.endswith(".safetensors"):
        save_file({k: v.contiguous() for k, v in small_sd.items()}, str(path))
    else:
        torch.save({"state_dict": {f"module.{k}": v for k, v in small_sd.items()}}, path,
                   _use_new_zipfile_serialization=name == "zip.pth")  # fmt: skip
    model = convert_checkpoint(path, tmp_path / "ours.safetensors", arch="mc3_18")
    assert model.meta.source.startswith("converted from torchvision")
    assert all(torch.equal(model.state_dict()[k], v) for k, v in small_sd.items())


def test_refusals_name_the_file_and_the_reason(tmp_path: Path, small_sd: dict) -> None:
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])  # fmt: skip
    onnx.save(helper.make_model(graph), str(tmp_path / "model.onnx"))
    with pytest.raises(UsageError, match=r"model\.onnx: an ONNX model"):
        convert_checkpoint(tmp_path / "model.onnx", tmp_path / "o.safetensors")
    ours = actionrec.create_model("mc3_18", num_classes=4, widths=(8, 8, 16, 16))
    actionrec.save_model(ours, tmp_path / "ours.safetensors")
    with pytest.raises(UsageError, match="already an actionrec checkpoint"):
        convert_checkpoint(tmp_path / "ours.safetensors", tmp_path / "o.safetensors")
    torch.save({"encoder.weight": torch.zeros(2, 2)}, tmp_path / "other.pth")
    with pytest.raises(UsageError, match=r"other\.pth: a torch file whose keys \(encoder\.weight, …\) match no known source"):
        convert_checkpoint(tmp_path / "other.pth", tmp_path / "o.safetensors")
    with pytest.raises(UsageError, match="tiny_encrypted.ckpt: an encrypted MindSpore checkpoint"):
        convert_checkpoint(DATA / "mindspore" / "tiny_encrypted.ckpt", tmp_path / "o.safetensors")
    headless = {k: v for k, v in small_sd.items() if not k.startswith("fc.")}
    torch.save(headless, tmp_path / "headless.pth")
    with pytest.raises(UsageError, match=r"headless\.pth: no classifier weights 'fc.weight'"):
        convert_checkpoint(tmp_path / "headless.pth", tmp_path / "o.safetensors", source="torchvision")


def test_restricted_unpickler_never_hands_out_torchs_own_functions(tmp_path: Path) -> None:
    """BUILD on a global sets attributes: a file must not be able to change torch's rebuild functions."""
    from actionrec.convert.safe_pickle import load_torch_restricted

    before = torch._utils._rebuild_tensor_v2.__defaults__
    # GLOBAL torch._utils._rebuild_tensor_v2; BUILD (None, {"__defaults__": ({"neg": True},)})
    payload = b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x0c\x00\x00\x00__defaults__}X\x03\x00\x00\x00neg\x88s\x85s\x86b."
    bad = tmp_path / "bad.pt"
    bad.write_bytes(payload)
    with pytest.raises(UsageError, match="bad.pt"):
        load_torch_restricted(bad)
    assert torch._utils._rebuild_tensor_v2.__defaults__ == before
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(3)}, good)
    assert torch.equal(torch.load(good, weights_only=True)["w"], torch.ones(3))
