"""PyTorchVideo's and mmaction2's X3D files convert into ``x3d_*`` with those projects' own logits, at two input sizes.

The reference logits were recorded by ``tools/record_x3d.py`` with pytorchvideo 0.1.5's ``create_x3d`` (its
torch.hub builders) and mmaction2 1.2.0's ``X3D`` + ``X3DHead`` (tests/data/reference/x3d_*.json); the weights
are rebuilt here from the recorded key lists with ``seeded.py`` (``noise=True``). Each model ran at the size it
is built for and at its 3-crop test size, where PyTorchVideo's fixed head pool covers several positions.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch

import actionrec
from actionrec.convert import convert_checkpoint
from actionrec.errors import UsageError
from tests.convert.seeded import seeded_array, seeded_input

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)

REF_DIR = Path(__file__).parents[1] / "data" / "reference"
PTV = json.loads((REF_DIR / "x3d_pytorchvideo.json").read_text())
MM = json.loads((REF_DIR / "x3d_mmaction2.json").read_text())

# What an mmengine runner stores in meta["cfg"] for mmaction2's x3d_m config, cut to the parts we read.
MM_CONFIG_M = """model = dict(
    backbone=dict(gamma_b=2.25, gamma_d=2.2, gamma_w=1, type='X3D'),
    data_preprocessor=dict(format_shape='NCTHW', mean=[114.75, 114.75, 114.75], std=[57.38, 57.38, 57.38],
        type='ActionDataPreprocessor'),
    type='Recognizer3D')
test_pipeline = [
    dict(type='DecordInit'),
    dict(clip_len=16, frame_interval=5, num_clips=10, target_fps=30, test_mode=True, type='SampleFrames'),
    dict(type='DecordDecode'),
    dict(scale=(-1, 256), type='Resize'),
    dict(crop_size=256, type='ThreeCrop'),
]
"""


def _cases(ref: dict, quick: str) -> list:
    """One case per recorded model; all but ``quick`` are marked slow (XS, S and M are one network; the AVX2 rerun of
    .ci/run takes the quick one)."""
    return [pytest.param(r, id=r["arch"], marks=[] if r["arch"] == quick else [pytest.mark.slow]) for r in ref["models"]]


class Payload:
    """An object in the checkpoint whose unpickling would run a command (a full unpickle would)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def _state(keys: list) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(seeded_array(k, tuple(shape), noise=True)) for k, shape in keys}


def _check_logits(path: Path, rec: dict) -> None:
    model = actionrec.load_model(path)
    for run in rec["runs"]:
        x = torch.from_numpy(seeded_input(tuple(run["input_shape"]), run["seed"], noise=True))
        with torch.no_grad():
            logits = model(x)[0]
        expected = torch.tensor(run["logits"])
        assert (logits - expected).abs().max().item() <= 1e-4, run["input_shape"]
        assert expected.std() > 0.1  # the network's own part, not the head's bias alone


@pytest.mark.parametrize("rec", _cases(PTV, "x3d_xs"))
def test_pytorchvideo_logits_reproduced(tmp_path: Path, rec: dict) -> None:
    marker = tmp_path / "ran"
    name = f"X3D_{rec['arch'].removeprefix('x3d_').upper()}.pyth"  # as the model zoo names its files
    ckpt = {"model_state": _state(PTV["networks"][rec["network"]]), "epoch": 300,
            "optimizer_state": {"state": {}, "param_groups": [{"lr": 1.6}]}, "hook": Payload(str(marker))}
    torch.save(ckpt, tmp_path / name)
    model = convert_checkpoint(tmp_path / name, tmp_path / "ours.safetensors")  # --from auto
    assert not marker.exists(), "the checkpoint's pickled payload ran"
    assert model.meta.arch == rec["arch"] and model.meta.num_classes == rec["num_classes"]
    assert model.meta.arch_kwargs == {} and "pytorchvideo" in model.meta.source
    assert sum(p.numel() for p in model.parameters()) == rec["params"]
    assert model.meta.preprocess == actionrec.create_model(rec["arch"]).meta.preprocess
    _check_logits(tmp_path / "ours.safetensors", rec)


def test_pytorchvideo_size_from_depth_or_assumed(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    torch.save({"model_state": actionrec.create_model("x3d_l").state_dict()}, tmp_path / "checkpoint_epoch_300.pyth")
    model = convert_checkpoint(tmp_path / "checkpoint_epoch_300.pyth", tmp_path / "l.safetensors", source="pytorchvideo")
    assert model.meta.arch == "x3d_l" and sum(p.numel() for p in model.parameters()) == 6_153_384
    torch.save({"model_state": actionrec.create_model("x3d_m").state_dict()}, tmp_path / "mine.pth")
    with caplog.at_level(logging.WARNING):
        model = convert_checkpoint(tmp_path / "mine.pth", tmp_path / "s.safetensors")
    assert model.meta.arch == "x3d_s" and "X3D-S assumed" in caplog.text
    with pytest.raises(UsageError, match="the weights are a x3d_s, not a x3d_m"):
        convert_checkpoint(tmp_path / "mine.pth", tmp_path / "m.safetensors", arch="x3d_m")


@pytest.mark.parametrize("rec", _cases(MM, "x3d_s"))
def test_mmaction2_logits_reproduced(tmp_path: Path, rec: dict) -> None:
    sd = _state(MM["networks"][rec["network"]])
    sd["data_preprocessor.mean"] = torch.full((3, 1, 1, 1), 114.75)
    sd["data_preprocessor.std"] = torch.full((3, 1, 1, 1), 57.38)
    if rec["arch"] == "x3d_s":  # the model zoo's file: a bare state dict, the size in the file name
        path = tmp_path / "x3d_s_13x6x1_facebook-kinetics400-rgb_20201027-623825a0.pth"
        torch.save({"state_dict": sd}, path)
        crop, frames, classes = 182, (13, 6), None
    else:  # a run of one's own: mmengine's meta with the config and the class names, a name that says nothing
        path = tmp_path / "best_acc_top1_epoch_20.pth"
        classes = [f"action{i}" for i in range(rec["num_classes"])]
        torch.save({"meta": {"cfg": MM_CONFIG_M, "seed": np.int64(0), "dataset_meta": {"classes": classes}},
                    "state_dict": sd}, path)
        crop, frames = 256, (16, 5)
    model = convert_checkpoint(path, tmp_path / "ours.safetensors")  # --from auto
    assert model.meta.arch == rec["arch"] and model.meta.arch_kwargs == {"layout": "mmaction2"}
    assert sum(p.numel() for p in model.parameters()) == rec["params"]
    pre = model.meta.preprocess
    assert (pre.clip_len, pre.frame_stride, pre.resize_short, pre.crop_size) == (*frames, crop, crop)
    assert pre.mean == pytest.approx((0.45,) * 3) and pre.std == pytest.approx((57.38 / 255,) * 3)
    if classes:
        assert model.meta.class_names == classes
    _check_logits(tmp_path / "ours.safetensors", rec)


def test_wrong_source_and_missing_head(tmp_path: Path) -> None:
    keys = [(k, s) for k, s in MM["networks"][MM["models"][0]["network"]] if not k.startswith("cls_head.")]
    torch.save({"state_dict": {k: torch.zeros(s) for k, s in keys}}, tmp_path / "backbone.pth")
    with pytest.raises(UsageError, match="X3D backbone without its X3DHead"):
        convert_checkpoint(tmp_path / "backbone.pth", tmp_path / "o.safetensors", source="mmaction2")
    torch.save({"model_state": actionrec.create_model("x3d_xs").state_dict()}, tmp_path / "X3D_XS.pyth")
    with pytest.raises(UsageError, match="not mmaction2 weights.*--from pytorchvideo"):
        convert_checkpoint(tmp_path / "X3D_XS.pyth", tmp_path / "o.safetensors", source="mmaction2")
    torch.save({"model_state": actionrec.create_model("r2plus1d_18").state_dict()}, tmp_path / "r.pth")
    with pytest.raises(UsageError, match="not pytorchvideo weights"):
        convert_checkpoint(tmp_path / "r.pth", tmp_path / "o.safetensors", source="pytorchvideo")
