"""The public factories, head surgery through get_classifier/reset_classifier, and malformed checkpoints."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import actionrec
from actionrec.checkpoint import META_KEY, CheckpointError
from actionrec.cli import main
from actionrec.errors import UsageError
from actionrec.models.finetune import replace_head

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)


@pytest.mark.parametrize("arch", ["r3d_18", "r2plus1d_18", "r2plus1d_mm_18", "i3d"])
def test_each_model_says_where_its_classifier_and_first_conv_are(arch: str) -> None:
    with torch.device("meta"):
        model = actionrec.create_model(arch, num_classes=7)
    modules = dict(model.named_modules())
    assert modules[model.classifier] is model.get_classifier()
    assert model.get_classifier().weight.shape[0] == 7
    assert isinstance(modules[model.first_conv], torch.nn.Conv3d) and modules[model.first_conv].in_channels == 3
    replace_head(model, 3)
    assert model.get_classifier().weight.shape[0] == 3 and model.meta.num_classes == 3


def test_mmaction2_arch_differs_from_ours_where_the_issue_says() -> None:
    with torch.device("meta"):
        mm, tv = actionrec.create_model("r2plus1d_mm_34"), actionrec.create_model("r2plus1d_34")
    assert sum(p.numel() for p in mm.parameters()) == 63_759_281
    assert mm.stem[0][0].out_channels == 83 and isinstance(mm.stem[3], torch.nn.MaxPool3d)
    assert [mm.get_submodule(f"layer{i}.0.conv2.0.0").out_channels for i in (2, 3, 4)] == [288, 576, 1152]
    assert [tv.get_submodule(f"layer{i}.0.conv2.0.0").out_channels for i in (2, 3, 4)] == [230, 460, 921]
    assert mm.layer2[0].conv1[1].eps == 1e-3 and mm.layer2[0].conv1[0][1].eps == 1e-5
    assert isinstance(mm.layer2[0].downsample[0][0], torch.nn.Conv3d) and mm.layer2[0].downsample[0][0].kernel_size == (1, 1, 1)


def _checkpoint(tmp_path: Path, name: str, meta: dict | str | None, tensors: dict | None = None) -> Path:
    path = tmp_path / name
    md = None if meta is None else {META_KEY: meta if isinstance(meta, str) else json.dumps(meta)}
    save_file(tensors or {"x": torch.zeros(1)}, str(path), metadata=md)
    return path


def test_malformed_checkpoints_raise_checkpoint_error_naming_the_file(tmp_path: Path) -> None:
    good = actionrec.create_model("mc3_18", num_classes=5, widths=(8, 8, 16, 16))
    actionrec.save_model(good, tmp_path / "good.safetensors")
    sd, meta = good.state_dict(), good.meta.to_dict()
    (tmp_path / "garbage.safetensors").write_bytes(struct.pack("<Q", 50) + b"{not json" + b"\0" * 60)
    cases = {
        "garbage.safetensors": None,
        "nometa.safetensors": _checkpoint(tmp_path, "nometa.safetensors", None),
        "badjson.safetensors": _checkpoint(tmp_path, "badjson.safetensors", "{arch: "),
        "unknown_arch.safetensors": _checkpoint(tmp_path, "unknown_arch.safetensors", {**meta, "arch": "resnet9000"}),
        "missing.safetensors": _checkpoint(tmp_path, "missing.safetensors", meta, {k: v for k, v in sd.items() if k != "fc.weight"}),
        "shapes.safetensors": _checkpoint(tmp_path, "shapes.safetensors", {**meta, "num_classes": 6}, sd),
        # a head of 10^10 classes is described but never allocated: the header check fails first
        "absurd.safetensors": _checkpoint(tmp_path, "absurd.safetensors", {**meta, "num_classes": 10**10}, sd),
    }
    for name in cases:
        with pytest.raises(CheckpointError, match=name.replace(".", r"\.")):
            actionrec.load_model(tmp_path / name)
    assert actionrec.load_model(tmp_path / "good.safetensors").meta.num_classes == 5


def test_known_pretrained_names(i3d_kinetics_ckpt: Path) -> None:
    assert "i3d_kinetics400" in actionrec.list_pretrained()
    model = actionrec.load_model("i3d_kinetics400")
    assert model.meta.arch == "i3d" and model.meta.class_names[0] == "abseiling" and not model.training
    with pytest.raises(UsageError, match="unknown weight set .i3d_sports1m.*or pass a checkpoint path"):
        actionrec.create_model("i3d", pretrained="sports1m")


def test_models_and_info_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    listing = subprocess.run([sys.executable, "-m", "actionrec.cli", "models"], capture_output=True, text=True)
    assert listing.returncode == 0 and "r2plus1d_mm_34" in listing.stdout and "i3d_kinetics400" in listing.stdout
    assert main(["info", "--list"]) == 0 and capsys.readouterr().out == listing.stdout
    with pytest.raises(SystemExit) as exited:  # an argument error: argparse exits 2 with one line
        main(["info", "r3d_18", "--num-classes", "0"])
    assert exited.value.code == 2 and "--num-classes: must be 1..100000, got 0" in capsys.readouterr().err
    model = actionrec.create_model("mc3_18", num_classes=3, widths=(8, 8, 16, 16))
    model.meta.class_names = ["jump", "run", "swim"]
    actionrec.save_model(model, tmp_path / "m.safetensors")
    assert main(["info", str(tmp_path / "m.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "classes     jump, run, swim" in out and "preprocess  16 frames every 1, short side 128, crop 112" in out
