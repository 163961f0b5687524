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
        (["data.batch_size=0"], r"field 'data.batch_size' must be 1..65536, got 0"),
        (["train.log_every=0"], r"field 'train.log_every' must be >= 1, got 0"),
        (["train.grad_clip=-1"], r"field 'train.grad_clip' must be > 0 or null"),
        (["optimizer.lr=.inf"], r"field 'optimizer.lr' must be a finite number, got inf"),
        (["optimizer.lr=.nan"], r"field 'optimizer.lr' must be a finite number, got nan"),
        (["optimizer.lr=0"], r"field 'optimizer.lr' must be > 0, got 0.0"),
        (["model.widths=[16, 32, 0, 8]"], r"field 'model.widths' must be 4 stage widths in 1..8192"),
        (["model.widths=[16, 32, 64, 200000]"], r"field 'model.widths' must be 4 stage widths"),
        (["model.widths=[16, 32]"], r"field 'model.widths' must be 4 stage widths"),
        (["model.num_classes=9000000"], r"field 'model.num_classes' must be 1..100000"),
        (["data.clip_len=100000000"], r"field 'data.clip_len' must be 1..1024"),
        (["data.crop_size=64", "data.resize_short=32"], r"field 'data.crop_size' must be <= data.resize_short \(32\)"),
        (["data.num_workers=-2"], r"field 'data.num_workers' must be 0..1024"),
        (["train.epochs=0"], r"field 'train.epochs' must be 1..1000000"),
        (["schedule.milestones=[20, 10]"], r"field 'schedule.milestones' must be increasing"),
        (["train.device=gpu"], r"field 'train.device' must be auto, cpu, cuda or cuda:N"),
        (["seed=-1"], r"field 'seed' must be 0..4294967295"),
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


def test_yaml_errors_are_one_line_with_file_and_line(tmp_path: Path) -> None:
    p = _write(tmp_path, "model:\n  arch: r3d_18\n  widths: [1, 2\ndata: {root: x}\n")
    with pytest.raises(ConfigError) as e:
        load_config(p)
    assert str(e.value).startswith(f"{p}:4:") and "invalid YAML" in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(ConfigError, match=r"cannot parse the value as YAML") as e:
        load_config(None, ["data.root=[x"])
    assert "\n" not in str(e.value)
    p.write_bytes(b"model:\n  arch: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"cfg.yaml: not a text file"):
        load_config(p)


def test_zero_workers_loads_in_process() -> None:
    assert load_config(None, ["data.num_workers=0"]).data.num_workers == 0
