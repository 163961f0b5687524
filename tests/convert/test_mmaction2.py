"""mmaction2's R(2+1)D-18/34 ``.pth`` converts into ``r2plus1d_mm_*`` with mmaction2's own logits.

The reference logits were recorded by ``tools/record_mmaction2.py`` with mmaction2 1.2.0's
``ResNet2Plus1d`` + ``I3DHead`` (tests/data/reference/mmaction2_r2plus1d.json); the weights are
rebuilt here from the recorded key list with ``seeded.py`` (seed = key name and shape).
"""

from __future__ import annotations

import json
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

REF = json.loads((Path(__file__).parents[1] / "data" / "reference" / "mmaction2_r2plus1d.json").read_text())

# What an mmengine runner stores in meta["cfg"] (Config.pretty_text), cut to the parts we read.
CONFIG = """model = dict(
    backbone=dict(depth=34, type='ResNet2Plus1d'),
    data_preprocessor=dict(
        format_shape='NCTHW',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        type='ActionDataPreprocessor'),
    type='Recognizer3D')
train_pipeline = [
    dict(clip_len=8, frame_interval=8, num_clips=1, type='SampleFrames'),
    dict(scale=(-1, 256), type='Resize'),
    dict(type='RandomResizedCrop'),
]
val_pipeline = [
    dict(clip_len=16, frame_interval=4, num_clips=1, test_mode=True, type='SampleFrames'),
    dict(scale=(-1, 128), type='Resize'),
    dict(crop_size=112, type='CenterCrop'),
]
"""


class Payload:
    """An object in the checkpoint whose unpickling would run a command (a full unpickle would)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.marker}",))


def _mmengine_checkpoint(rec: dict, path: Path, marker: Path, classes: list[str] | None) -> None:
    sd = {k: torch.from_numpy(seeded_array(k, tuple(shape))) for k, shape in rec["keys"]}
    sd["data_preprocessor.mean"] = torch.tensor([123.675, 116.28, 103.53]).view(3, 1, 1, 1)
    sd["data_preprocessor.std"] = torch.tensor([58.395, 57.12, 57.375]).view(3, 1, 1, 1)
    ckpt = {
        "meta": {"cfg": CONFIG, "seed": np.int64(0), "epoch": 35, "mmengine_version": "0.10.7", "dataset_meta": {"classes": classes}},
        "state_dict": sd,
        "message_hub": {"log_scalars": Payload(str(marker))},
        "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]},
    }
    torch.save(ckpt, path)


@pytest.mark.parametrize("rec", [r for r in REF["models"] if r["num_classes"] != 400], ids=lambda r: f"r{r['depth']}_{r['num_classes']}")
def test_mmaction2_logits_reproduced(tmp_path: Path, rec: dict) -> None:
    marker = tmp_path / "ran"
    classes = [f"action{i}" for i in range(rec["num_classes"])] if rec["depth"] == 34 else None
    _mmengine_checkpoint(rec, tmp_path / "best_top1_acc_epoch_35.pth", marker, classes)
    model = convert_checkpoint(tmp_path / "best_top1_acc_epoch_35.pth", tmp_path / "ours.safetensors")  # --from auto
    assert not marker.exists(), "the checkpoint's pickled payload ran"
    assert model.meta.arch == f"r2plus1d_mm_{rec['depth']}" and model.meta.num_classes == rec["num_classes"]
    assert sum(p.numel() for p in model.parameters()) == rec["params"]
    if classes:  # the checkpoint's own names are kept
        assert model.meta.class_names == classes
    else:  # 51 classes and no names: HMDB51's are assumed, and the metadata says so
        assert model.meta.class_names[0] == "brush_hair" and "assumed from the class count" in model.meta.source
    pre = model.meta.preprocess
    assert (pre.clip_len, pre.frame_stride, pre.resize_short, pre.crop_size) == (16, 4, 128, 112)
    assert pre.mean == pytest.approx((0.485, 0.456, 0.406)) and pre.std == pytest.approx((0.229, 0.224, 0.225))
    loaded = actionrec.load_model(tmp_path / "ours.safetensors")
    x = torch.from_numpy(seeded_input(tuple(REF["input_shape"])))
    with torch.no_grad():
        logits = loaded(x)[0]
    expected = torch.tensor(rec["logits"])
    assert (logits - expected).abs().max().item() <= 1e-4
    assert expected.std() > 0.02  # the comparison is not between near-constant vectors


def test_mmaction2_34_param_count_and_wrong_source(tmp_path: Path) -> None:
    rec = next(r for r in REF["models"] if r["depth"] == 34 and r["num_classes"] == 400)
    assert rec["params"] == 63_759_281  # the issue's count for mmaction2's R(2+1)D-34
    sd = {k: torch.zeros(s) for k, s in rec["keys"] if not k.startswith("cls_head.")}
    torch.save({"state_dict": sd}, tmp_path / "backbone_only.pth")
    with pytest.raises(UsageError, match="without the classifier 'cls_head.fc_cls.weight'"):
        convert_checkpoint(tmp_path / "backbone_only.pth", tmp_path / "o.safetensors", source="mmaction2")
    torch.save(actionrec.create_model("mc3_18").state_dict(), tmp_path / "tv.pth")
    with pytest.raises(UsageError, match="not mmaction2 weights.*--from torchvision"):
        convert_checkpoint(tmp_path / "tv.pth", tmp_path / "o.safetensors", source="mmaction2")
