"""Recipes: loading, overrides, typed validation, errors that name the field, the shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionrec.config import ConfigError, load_config, save_config

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "cfg.yaml"
    p.write_text(text)
    return p


def test_load_and_override(tmp_path: Path) -> None:
    p = _write(tmp_path, "optimizer:\n  name: adam\n  lr: 0.001\ndata:\n  root: /videos\n  clip_len: 16\n")
    cfg = load_config(p, ["optimizer.lr=0.01", "data.clip_len=8", "model.trainable=[logits, Mixed_5]", "train.grad_clip=null"])
    assert cfg.optimizer.name == "adam" and cfg.optimizer.lr == 0.01 and isinstance(cfg.optimizer.lr, float)
    assert cfg.data.clip_len == 8 and cfg.data.root == "/videos"
    assert cfg.model.trainable == ["logits", "Mixed_5"]
    assert cfg.train.grad_clip is None
    assert cfg.optimizer.momentum == 0.9  # default kept
    # an int is accepted where a float is expected
    assert load_config(p, ["optimizer.lr=1"]).optimizer.lr == 1.0


def test_resolved_config_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, ["seed=7", "schedule.milestones=[10, 20]", "model.widths=[8, 16, 32, 64]"])
    save_config(cfg, tmp_path / "resolved.yaml")
    assert load_config(tmp_path / "resolved.yaml") == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["optimizer.lrr=0.1"], r"unknown field 'optimizer.lrr' \(did you mean 'lr'\?\)"),
        (["optimiser.lr=0.1"], r"unknown field 'optimiser' \(did you mean 'optimizer'\?\)"),
        (["data.clip_len=eight"], r"field 'data.clip_len' must be an integer, got 'eight'"),
        (["data.clip_len=8.5"], r"field 'data.clip_len' must be an integer"),
        (["train.amp=yes please"], r"field 'train.amp' must be true or false"),
        (["optimizer.name=rmsprop"], r"field 'optimizer.name' must be one of sgd, adam, adamw, got 'rmsprop'"),
        (["model.widths=[8, x]"], r"field 'model.widths\[1\]' must be an integer"),
        (["data.batch_size=0"], r"field 'data.batch_size' has an invalid value 0"),
        (["train.log_every=0"], r"field 'train.log_every' has an invalid value 0"),
        (["optimizer=3"], r"section 'optimizer' must be a mapping"),
        (["optimizer.lr"], r"must look like section.field=value"),
    ],
)
def test_bad_fields_are_named(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, overrides)


def test_typo_in_file_names_file_and_field(tmp_path: Path) -> None:
    p = _write(tmp_path, "train:\n  epoch: 3\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml: unknown field 'train.epoch' \(did you mean 'epochs'\?\)"):
        load_config(p)
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="invalid YAML"):
        load_config(_write(tmp_path, "train: [1,\n"))


def test_shipped_recipes_load() -> None:
    names = sorted(p.name for p in CONFIGS.glob("*.yaml"))
    assert {"r2plus1d_18_kinetics400.yaml", "r2plus1d_34_ucf101_finetune.yaml", "i3d_rgb_ucf101.yaml", "i3d_flow_ucf101.yaml"} <= set(names)
    for name in names:
        load_config(CONFIGS / name)
    i3d = load_config(CONFIGS / "i3d_flow_hmdb51.yaml")
    assert i3d.data.modality == "flow" and i3d.optimizer.name == "adam" and i3d.schedule.step_size == 4
    assert i3d.schedule.gamma == 0.5 and i3d.model.trainable == ["logits", "Mixed_5"]
    ft = load_config(CONFIGS / "r2plus1d_34_ucf101_finetune.yaml")
    assert (ft.optimizer.lr, ft.optimizer.weight_decay, ft.data.batch_size, ft.train.epochs) == (0.001, 5e-4, 8, 30)
