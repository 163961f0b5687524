"""Fine-tuning: the shipped recipes that start from pretrained weights, ``model.freeze_backbone`` (linear probe),
``optimizer.backbone_lr_mult`` and the ``train --pretrained/--max-steps`` shorthands.

Every recipe naming a weight set must name one of the catalogue with its own architecture, and must run: one
step on made data from a local checkpoint of that architecture (no network), at tiny clip and crop sizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from actionrec.checkpoint import CheckpointError, read_tensors, save_model
from actionrec.cli import main
from actionrec.config import ConfigError, load_config
from actionrec.engine.optim import LRSchedule, build_optimizer, param_groups
from actionrec.engine.train import train
from actionrec.factory import create_model, load_model

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
FINETUNE_RECIPES = sorted(p.name for p in CONFIGS.glob("*.yaml") if load_config(p).model.pretrained)

# the seeds' recipes and their starting points (issue 21)
EXPECTED = {
    "r2plus1d_34_ucf101_finetune.yaml": "r2plus1d_34_kinetics400_gluoncv",  # seed 000
    "i3d_rgb_ucf101.yaml": "i3d_rgb_imagenet_kinetics400_piergiaj",  # seed 001 (two streams, two datasets)
    "i3d_flow_ucf101.yaml": "i3d_flow_imagenet_kinetics400_piergiaj",
    "i3d_rgb_hmdb51.yaml": "i3d_rgb_imagenet_kinetics400_piergiaj",
    "i3d_flow_hmdb51.yaml": "i3d_flow_imagenet_kinetics400_piergiaj",
    "r2plus1d_18_ucf101_finetune_mindvideo.yaml": "r2plus1d_18_kinetics400_mindspore",  # seed 003
    "r2plus1d_18_ucf101_linear_probe.yaml": "r2plus1d_18_kinetics400_torchvision",
}


def test_the_seeds_recipes_are_shipped() -> None:
    assert {name: load_config(CONFIGS / name).model.pretrained for name in EXPECTED} == EXPECTED
    assert load_config(CONFIGS / "r2plus1d_18_ucf101_linear_probe.yaml").model.freeze_backbone
    for name in FINETUNE_RECIPES:  # what, where from, which weights, how to run
        head = [line for line in (CONFIGS / name).read_text().splitlines() if line.startswith("#")]
        text = "\n".join(head)
        assert load_config(CONFIGS / name).model.pretrained in text, name
        assert "Hyper-parameters" in text and f"actionrec train configs/{name}" in text, name


@pytest.mark.parametrize("recipe", FINETUNE_RECIPES)
def test_recipe_names_a_catalogue_weight_set_of_its_arch(recipe: str) -> None:
    from actionrec.models.registry import get_pretrained, list_pretrained

    cfg = load_config(CONFIGS / recipe)
    name = cfg.model.pretrained
    assert "/" not in name and not name.endswith(".safetensors"), f"{recipe}: a shipped recipe names a weight set, not a file"
    assert name in list_pretrained(), f"{recipe}: {name} is not in the catalogue"
    ws = get_pretrained(name)
    assert ws.arch == cfg.model.arch, f"{recipe}: {name} is a {ws.arch}, the recipe builds a {cfg.model.arch}"
    assert ("flow" in ws.tag) == (cfg.data.modality == "flow"), f"{recipe}: {name} vs data.modality {cfg.data.modality}"


@pytest.fixture(scope="module")
def flow_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Flow frame folders (``flow_x/y_00001.jpg``) of 4 synthetic classes, 2 videos each (1 train, 1 val), 9 frames of 32x32."""
    import cv2

    from actionrec.data.synthetic import CLASS_NAMES, render_video

    root = tmp_path_factory.mktemp("flow")
    rng = np.random.default_rng(0)
    lines: dict[str, list[str]] = {"train": [], "val": []}
    for label, cls in enumerate(CLASS_NAMES[:4]):
        for i, subset in enumerate(("train", "val")):
            gray = render_video(cls, rng, size=32, frames=10).astype(np.float32).mean(-1)
            folder = root / cls / f"v{i}"
            folder.mkdir(parents=True)
            for t in range(9):  # a stand-in for flow: temporal differences along x and y, around 128
                dt = gray[t + 1] - gray[t]
                for axis, name in ((1, "x"), (0, "y")):
                    img = np.clip(128 + np.gradient(dt, axis=axis) * 4, 0, 255).astype(np.uint8)
                    cv2.imwrite(str(folder / f"flow_{name}_{t + 1:05d}.jpg"), img)
            lines[subset].append(f"{cls}/v{i} 9 {label}")  # mmaction2 rawframes list: path, frames, label
    (root / "classes.txt").write_text("\n".join(CLASS_NAMES[:4]) + "\n")
    for subset, rows in lines.items():
        (root / f"{subset}.txt").write_text("\n".join(rows) + "\n")
    return root


def _local_checkpoint(arch: str, flow: bool, path: Path) -> Path:
    """Random weights of ``arch`` with a 400-class head, as a catalogue weight set converts to (no download)."""
    torch.manual_seed(0)
    model = create_model(arch, num_classes=400, **({"in_channels": 2} if flow else {}))
    return save_model(model, path)


@pytest.mark.parametrize("recipe", FINETUNE_RECIPES)  # not `numerics`: it checks that a step runs, not its figures
def test_recipe_runs_a_step_from_a_local_checkpoint(recipe: str, synth_root: Path, flow_root: Path, tmp_path: Path) -> None:
    cfg = load_config(CONFIGS / recipe)
    flow = cfg.data.modality == "flow"
    ckpt = _local_checkpoint(cfg.model.arch, flow, tmp_path / "pretrained.safetensors")
    out = tmp_path / "run"
    data = [f"data.root={flow_root if flow else synth_root}", "data.format=list", "data.train_list=train.txt",
            "data.val_list=val.txt", "data.annotations=null", "data.clip_len=8", "data.frame_stride=1",
            "data.resize_short=40", "data.crop_size=32", "data.batch_size=2", "data.num_workers=0"]
    argv = ["train", str(CONFIGS / recipe), "--pretrained", str(ckpt), "--max-steps", "1", "--output-dir", str(out),
            "--set", *data, "train.epochs=1", "train.device=cpu", "train.threads=2", "eval.every=0"]
    assert main(argv) == 0
    saved = load_config(out / "config.yaml")
    assert (saved.model.pretrained, saved.train.max_steps_per_epoch) == (str(ckpt), 1)
    steps = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in steps if r["type"] == "step"] == [0]
    model = load_model(out / "last.safetensors")
    assert model.meta.num_classes == 4 and model.meta.modality == cfg.data.modality
    assert model.meta.source == f"fine-tuned from {ckpt}"
    before, after = read_tensors(ckpt), read_tensors(out / "last.safetensors")
    first = model.first_conv + ".weight"
    if cfg.model.freeze_backbone or cfg.model.trainable:  # the stem is frozen in every such recipe
        assert torch.equal(before[first], after[first])
    else:
        assert not torch.equal(before[first], after[first])


# --- model.freeze_backbone -------------------------------------------------------------------------------------


@pytest.fixture
def pretrained_tiny(make_config, tmp_path: Path) -> Path:  # noqa: ANN001
    """A tiny R(2+1)D-18 trained for an epoch (so that its BatchNorm statistics are not the initial ones)."""
    src = make_config("src", train={"epochs": 1}, eval={"every": 0})
    train(src)
    return Path(src.output_dir) / "last.safetensors"


@pytest.mark.numerics
def test_freeze_backbone_trains_only_the_head_and_keeps_bn_statistics(make_config, pretrained_tiny: Path) -> None:  # noqa: ANN001
    cfg = make_config("probe", model={"pretrained": str(pretrained_tiny), "freeze_backbone": True},
                      train={"epochs": 1, "max_steps_per_epoch": 2}, eval={"every": 0}, optimizer={"lr": 0.5})
    train(cfg)
    before, after = read_tensors(pretrained_tiny), read_tensors(Path(cfg.output_dir) / "last.safetensors")
    assert before.keys() == after.keys()
    bn = "layer1.0.conv1.1.running_mean"  # a BatchNorm of the frozen backbone
    assert bn in before and before[bn].abs().sum() > 0
    changed = sorted(k for k in before if not torch.equal(before[k], after[k]))
    assert changed == ["fc.bias", "fc.weight"]  # weights, BN running mean/var and batch counts all as loaded


def test_freeze_backbone_picks_each_architecture_s_classifier() -> None:
    from actionrec.models.finetune import batchnorm_eval, freeze_backbone

    i3d = create_model("i3d", num_classes=5)
    assert freeze_backbone(i3d) == ["logits.conv3d.weight", "logits.conv3d.bias"]
    resnet = create_model("r3d_18", num_classes=5, widths=(4, 4, 4, 4))
    assert freeze_backbone(resnet) == ["fc.weight", "fc.bias"]
    resnet.train()
    n = batchnorm_eval(resnet)
    bns = [m for m in resnet.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert n == len(bns) > 0 and not any(m.training for m in bns) and resnet.training


# --- optimizer.backbone_lr_mult --------------------------------------------------------------------------------


def test_backbone_lr_mult_makes_two_groups_scaled_by_the_schedule() -> None:
    from actionrec.config import OptimConfig, ScheduleConfig

    model = create_model("r2plus1d_18", num_classes=4, widths=(4, 4, 4, 4))
    assert isinstance(param_groups(model, 1.0)[0], torch.nn.Parameter)  # one lr: a plain list, as before
    groups = param_groups(model, 0.1)
    assert [g["name"] for g in groups] == ["backbone", "classifier"]
    assert groups[1]["params"] == [model.fc.weight, model.fc.bias]
    assert len(groups[0]["params"]) + 2 == len(list(model.parameters()))
    opt = build_optimizer(groups, OptimConfig(lr=0.01))
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.001, 0.01])
    sched = LRSchedule(0.01, ScheduleConfig(name="cosine", warmup_epochs=1), epochs=4, steps_per_epoch=10)
    for step in (0, 5, 25):
        lr = sched.apply(opt, step)
        assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1 * lr, lr])
    model.fc.requires_grad_(False)  # with the head frozen (model.trainable without it), only the backbone group is left
    assert [g["name"] for g in param_groups(model, 0.1)] == ["backbone"]


@pytest.mark.numerics
def test_backbone_lr_mult_logs_both_rates_and_resumes_exactly(make_config) -> None:  # noqa: ANN001
    kw = dict(train={"epochs": 2}, optimizer={"backbone_lr_mult": 0.25}, eval={"every": 0},
              schedule={"name": "cosine", "warmup_epochs": 0.5})
    full = make_config("full", **kw)
    train(full)
    records = [json.loads(x) for x in (Path(full.output_dir) / "metrics.jsonl").read_text().splitlines()]
    assert records and all(r["lr_backbone"] == pytest.approx(0.25 * r["lr"]) for r in records)
    part = make_config("part", **kw)
    assert train(part, stop_after_epoch=1).stopped_early
    torch.manual_seed(1)
    train(part, resume=True)
    a = read_tensors(Path(full.output_dir) / "last.safetensors")
    b = read_tensors(Path(part.output_dir) / "last.safetensors")
    for k in a:
        assert torch.equal(a[k], b[k]), k
    other = make_config("part", **{**kw, "optimizer": {"backbone_lr_mult": 1.0}, "train": {"epochs": 3}})
    with pytest.raises(CheckpointError, match=r"epoch_0002\.safetensors: its optimiser has 2 parameter group\(s\), the recipe makes 1"):
        train(other, resume=True)


# --- validation and the command line --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.freeze_backbone=true", "model.trainable=[fc]"], r"'model\.freeze_backbone' and 'model\.trainable'"),
        (["optimizer.backbone_lr_mult=0"], r"field 'optimizer\.backbone_lr_mult' must be in \(0, 1\]"),
        (["optimizer.backbone_lr_mult=1.5"], r"field 'optimizer\.backbone_lr_mult' must be in \(0, 1\]"),
        (["optimizer.backbone_lr_mult=-0.1"], r"field 'optimizer\.backbone_lr_mult' must be in \(0, 1\]"),
        (["model.freeze_backbone=true", "optimizer.backbone_lr_mult=0.1"], r"'optimizer\.backbone_lr_mult'.*'model\.freeze_backbone'"),
        (["model.freeze_backbone=yes please"], r"field 'model\.freeze_backbone' must be true or false"),
    ],
)
def test_finetune_fields_are_checked(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message) as e:
        load_config(None, overrides)
    assert "\n" not in str(e.value)


def test_cli_shorthands_and_their_errors(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import actionrec.engine.train as engine_train

    seen = []
    monkeypatch.setattr(engine_train, "train", lambda cfg, **kw: seen.append(cfg) or engine_train.TrainResult(Path("."), 0))
    recipe = CONFIGS / "r2plus1d_18_ucf101_linear_probe.yaml"
    # the shorthands win over --set, like --output-dir; a name YAML would read as a mapping stays the string given
    assert main(["train", str(recipe), "--set", "model.pretrained=a.safetensors", "train.max_steps_per_epoch=9",
                 "--pretrained", "12: b.safetensors", "--max-steps", "3"]) == 0
    assert (seen[0].model.pretrained, seen[0].train.max_steps_per_epoch) == ("12: b.safetensors", 3)
    assert main(["train", str(recipe)]) == 0
    assert (seen[1].model.pretrained, seen[1].train.max_steps_per_epoch) == ("r2plus1d_18_kinetics400_torchvision", None)
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:  # argparse's error: one line, exit 2
        main(["train", str(recipe), "--max-steps", "0"])
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "--max-steps" in err and "\n" not in err
    # a contradicting override: one line naming both fields, before anything is built
    assert main(["train", str(recipe), "--pretrained", "x.safetensors", "--set", "model.trainable=[fc]"]) == 2
    err = capsys.readouterr().err.strip()
    assert "'model.freeze_backbone' and 'model.trainable'" in err and "\n" not in err
    assert len(seen) == 2
