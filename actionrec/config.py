"""Training recipes: YAML files loaded into typed dataclasses, with ``--set a.b=value`` overrides.

A recipe has the sections ``model``, ``data``, ``optimizer``, ``schedule``, ``train`` and
``eval`` plus ``output_dir`` and ``seed``. Every value is type-checked against the dataclass
field; an unknown or mistyped key raises :class:`ConfigError` naming it (with a suggestion).
The trainer reads plain attributes (``cfg.optimizer.lr``).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from actionrec.data.formats import format_names
from actionrec.errors import UsageError
from actionrec.io import write_text_atomic
from actionrec.meta import LIMITS

__all__ = [
    "Config",
    "ConfigError",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "OptimConfig",
    "ScheduleConfig",
    "TrainConfig",
    "config_to_dict",
    "load_config",
    "config_from_dict",
    "apply_overrides",
    "save_config",
]


class ConfigError(UsageError):
    """A recipe with an unknown field, a wrong type or a bad value."""


@dataclass
class ModelConfig:
    arch: str = "r2plus1d_18"  # any name of actionrec.list_models()
    pretrained: str | None = None  # our checkpoint (.safetensors) or a known weight name; head replaced if classes differ
    num_classes: int | None = None  # default: the dataset's class count
    widths: list[int] | None = None  # video ResNet stage widths (small models for CPU try-outs)
    dropout: float | None = None  # dropout before the classifier (builder default if None)
    trainable: list[str] | None = None  # fine-tune only parameters whose name starts with one of these
    freeze_backbone: bool = False  # linear probe: train only the classifier; the backbone's BatchNorm statistics stay fixed
    sync_bn: bool = False  # SyncBatchNorm under distributed training (CUDA only)
    channels_last: bool = False  # channels_last_3d memory format (faster convolutions on CPU)


@dataclass
class DataConfig:
    format: str = "list"  # list | folder | ucf101 | hmdb51 | kinetics
    root: str = ""  # videos (or frame folders) directory
    train_list: str | None = None  # list files (format "list"), relative to root or absolute
    val_list: str | None = None
    annotations: str | None = None  # split/annotation folder or file (ucf101, hmdb51, kinetics)
    split: int = 1
    val_fraction: float = 0.2  # format "folder": share of each class held out
    modality: str = "rgb"  # rgb | flow
    clip_len: int | None = None  # None: the model's preprocessing (model.meta.preprocess)
    frame_stride: int | None = None
    resize_short: int | None = None
    crop_size: int | None = None
    hflip: bool = True  # random horizontal flips in training (off when direction is the class)
    batch_size: int = 8  # per process
    num_workers: int = 2


@dataclass
class OptimConfig:
    name: str = "sgd"  # sgd | adam | adamw
    lr: float = 0.01  # for the total batch (batch_size x processes x accumulate_steps) as given
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 1e-4
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    backbone_lr_mult: float = 1.0  # every parameter but the classifier's learns at lr x this, in (0, 1]


@dataclass
class ScheduleConfig:
    name: str = "cosine"  # cosine | step | multistep | constant
    warmup_epochs: float = 0.0  # linear warmup from warmup_factor * lr (per step)
    warmup_factor: float = 0.1
    step_size: int = 10  # step: multiply by gamma every step_size epochs
    milestones: list[int] = field(default_factory=list)  # multistep: epochs where lr *= gamma
    gamma: float = 0.1
    min_lr: float = 0.0  # cosine floor


@dataclass
class TrainConfig:
    epochs: int = 10
    label_smoothing: float = 0.0
    amp: bool = True  # mixed precision (fp16 + GradScaler) when training on CUDA; ignored on CPU
    accumulate_steps: int = 1  # gradient accumulation
    grad_clip: float | None = None  # max gradient norm
    checkpoint_every: int = 1  # epochs
    keep_last: int = 3  # epoch checkpoints kept (best.safetensors is kept apart)
    log_every: int = 10  # steps between per-step log records
    tensorboard: bool = False  # also log to output_dir/tb (needs the tensorboard package)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int | None = None  # torch intra-op threads (None: leave torch's default)
    max_steps_per_epoch: int | None = None  # cut epochs short (smoke tests)


@dataclass
class EvalConfig:
    start_epoch: int = 1  # first epoch after which to validate
    every: int = 1  # validate every N epochs (0: never while training)
    num_clips: int = 1  # clips per video while training; `actionrec eval --clips` for the final test
    num_crops: int = 1
    batch_size: int | None = None  # videos per batch (default: data.batch_size)


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optimizer: OptimConfig = field(default_factory=OptimConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    output_dir: str = "runs/exp"
    seed: int = 0


_CHOICES = {
    "data.format": tuple(format_names()),
    "data.modality": ("rgb", "flow"),
    "optimizer.name": ("sgd", "adam", "adamw"),
    "schedule.name": ("cosine", "step", "multistep", "constant"),
}


def _suggest(name: str, options: typing.Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(options), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_value(value: Any, tp: Any, where: str) -> Any:
    """Return ``value`` converted to type ``tp`` or raise ConfigError naming ``where``."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ConfigError(f"field '{where}' must not be null")
        inner = [a for a in args if a is not type(None)]
        return _check_value(value, inner[0], where)
    if origin is list:
        (item_tp,) = typing.get_args(tp)
        if isinstance(value, tuple):
            value = list(value)
        if not isinstance(value, list):
            raise ConfigError(f"field '{where}' must be a list, got {value!r}")
        return [_check_value(v, item_tp, f"{where}[{i}]") for i, v in enumerate(value)]
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"field '{where}' must be true or false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"field '{where}' must be an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"field '{where}' must be a number, got {value!r}")
        if not math.isfinite(value):
            raise ConfigError(f"field '{where}' must be a finite number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ConfigError(f"field '{where}' must be a string, got {value!r}")
        return str(value)
    raise ConfigError(f"field '{where}': unsupported type {tp}")  # pragma: no cover


def _build(cls: type, data: Any, where: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"section '{where or 'top level'}' must be a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in data.items():
        path = f"{where}.{key}" if where else str(key)
        if key not in hints:
            raise ConfigError(f"unknown field '{path}'{_suggest(str(key), names)}")
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            kwargs[key] = _build(tp, value, path)
        else:
            value = _check_value(value, tp, path)
            if path in _CHOICES and value not in _CHOICES[path]:
                raise ConfigError(f"field '{path}' must be one of {', '.join(_CHOICES[path])}, got {value!r}"
                                  f"{_suggest(str(value), _CHOICES[path])}")
            kwargs[key] = value
    return cls(**kwargs)


def _validate(cfg: Config) -> None:
    """Range checks of the values (types are checked by :func:`_build`); bounds as in :data:`actionrec.meta.LIMITS`."""
    m, d, o, s, t, e = cfg.model, cfg.data, cfg.optimizer, cfg.schedule, cfg.train, cfg.eval
    size, big = LIMITS["size"], 1_000_000
    checks: list[tuple[bool, str, Any, str]] = [
        (m.num_classes is None or 1 <= m.num_classes <= LIMITS["num_classes"], "model.num_classes", m.num_classes, f"1..{LIMITS['num_classes']} or null"),
        (m.widths is None or (len(m.widths) == 4 and all(1 <= w <= LIMITS["width"] for w in m.widths)), "model.widths", m.widths,
         f"4 stage widths in 1..{LIMITS['width']} or null"),
        (m.dropout is None or 0.0 <= m.dropout < 1.0, "model.dropout", m.dropout, "in [0, 1) or null"),
        (d.split >= 1, "data.split", d.split, ">= 1"),
        (0.0 < d.val_fraction < 1.0, "data.val_fraction", d.val_fraction, "in (0, 1)"),
        (d.clip_len is None or 1 <= d.clip_len <= LIMITS["clip_len"], "data.clip_len", d.clip_len, f"1..{LIMITS['clip_len']} or null"),
        (d.frame_stride is None or 1 <= d.frame_stride <= LIMITS["frame_stride"], "data.frame_stride", d.frame_stride, f"1..{LIMITS['frame_stride']} or null"),
        (d.resize_short is None or 1 <= d.resize_short <= size, "data.resize_short", d.resize_short, f"1..{size} or null"),
        (d.crop_size is None or 1 <= d.crop_size <= size, "data.crop_size", d.crop_size, f"1..{size} or null"),
        (d.crop_size is None or d.resize_short is None or d.crop_size <= d.resize_short, "data.crop_size", d.crop_size,
         f"<= data.resize_short ({d.resize_short})"),
        (1 <= d.batch_size <= 65536, "data.batch_size", d.batch_size, "1..65536"),
        (0 <= d.num_workers <= 1024, "data.num_workers", d.num_workers, "0..1024 (0: load in the training process)"),
        (o.lr > 0, "optimizer.lr", o.lr, "> 0"),
        (0.0 <= o.momentum < 1.0, "optimizer.momentum", o.momentum, "in [0, 1)"),
        (o.weight_decay >= 0, "optimizer.weight_decay", o.weight_decay, ">= 0"),
        (len(o.betas) == 2 and all(0.0 <= b < 1.0 for b in o.betas), "optimizer.betas", o.betas, "two numbers in [0, 1)"),
        (0.0 < o.backbone_lr_mult <= 1.0, "optimizer.backbone_lr_mult", o.backbone_lr_mult,
         "in (0, 1] (1: one learning rate; a frozen backbone is model.freeze_backbone)"),
        (0.0 <= s.warmup_epochs <= big, "schedule.warmup_epochs", s.warmup_epochs, ">= 0"),
        (0.0 < s.warmup_factor <= 1.0, "schedule.warmup_factor", s.warmup_factor, "in (0, 1]"),
        (s.step_size >= 1, "schedule.step_size", s.step_size, ">= 1"),
        (all(x >= 1 for x in s.milestones) and s.milestones == sorted(set(s.milestones)), "schedule.milestones", s.milestones,
         "increasing epochs >= 1"),
        (s.gamma > 0, "schedule.gamma", s.gamma, "> 0"),
        (s.min_lr >= 0, "schedule.min_lr", s.min_lr, ">= 0"),
        (1 <= t.epochs <= big, "train.epochs", t.epochs, f"1..{big}"),
        (0.0 <= t.label_smoothing < 1.0, "train.label_smoothing", t.label_smoothing, "in [0, 1)"),
        (1 <= t.accumulate_steps <= 65536, "train.accumulate_steps", t.accumulate_steps, "1..65536"),
        (t.grad_clip is None or t.grad_clip > 0, "train.grad_clip", t.grad_clip, "> 0 or null (no clipping)"),
        (t.checkpoint_every >= 1, "train.checkpoint_every", t.checkpoint_every, ">= 1"),
        (t.keep_last >= 1, "train.keep_last", t.keep_last, ">= 1"),
        (t.log_every >= 1, "train.log_every", t.log_every, ">= 1"),
        (bool(re.fullmatch(r"auto|cpu|cuda(:\d+)?", t.device)), "train.device", t.device, "auto, cpu, cuda or cuda:N"),
        (t.threads is None or 1 <= t.threads <= 4096, "train.threads", t.threads, "1..4096 or null"),
        (t.max_steps_per_epoch is None or t.max_steps_per_epoch >= 1, "train.max_steps_per_epoch", t.max_steps_per_epoch, ">= 1 or null"),
        (e.start_epoch >= 0, "eval.start_epoch", e.start_epoch, ">= 0"),
        (e.every >= 0, "eval.every", e.every, ">= 0 (0: never while training)"),
        (1 <= e.num_clips <= 1024, "eval.num_clips", e.num_clips, "1..1024"),
        (e.num_crops in (1, 3), "eval.num_crops", e.num_crops, "1 or 3"),
        (e.batch_size is None or 1 <= e.batch_size <= 65536, "eval.batch_size", e.batch_size, "1..65536 or null"),
        (bool(cfg.output_dir.strip()), "output_dir", cfg.output_dir, "a directory"),
        (0 <= cfg.seed < 2**32, "seed", cfg.seed, f"0..{2**32 - 1}"),
    ]
    for ok, name, value, expected in checks:
        if not ok:
            raise ConfigError(f"field '{name}' must be {expected}, got {value!r}")
    _validate_finetune(cfg)


def _validate_finetune(cfg: Config) -> None:
    """Fine-tuning fields that contradict each other (one line naming both)."""
    m, o = cfg.model, cfg.optimizer
    if m.freeze_backbone and m.trainable:
        raise ConfigError("fields 'model.freeze_backbone' and 'model.trainable' both choose what trains: set only one "
                          "(freeze_backbone: the classifier alone; trainable: parameters by name prefix)")
    if m.freeze_backbone and o.backbone_lr_mult != 1.0:
        raise ConfigError(f"field 'optimizer.backbone_lr_mult' ({o.backbone_lr_mult}) has no effect with 'model.freeze_backbone' "
                          "(the backbone does not train): leave it at 1")


def config_from_dict(data: dict[str, Any]) -> Config:
    """Build and validate a :class:`Config` from nested dicts (YAML content)."""
    cfg = _build(Config, data, "")
    _validate(cfg)
    return cfg


def config_to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def apply_overrides(data: dict[str, Any], overrides: typing.Sequence[str]) -> dict[str, Any]:
    """Apply ``section.field=value`` strings (values parsed as YAML) to nested dicts, in place."""
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} must look like section.field=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: empty field name")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"override {item!r}: cannot parse the value as YAML ({_yaml_problem(e)})") from None
        node = data
        for p in parts[:-1]:
            child = node.setdefault(p, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: '{p}' is not a section")
            node = child
        node[parts[-1]] = value
    return data


def _yaml_where(path: Path, e: yaml.YAMLError) -> str:
    mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
    return f"{path}:{mark.line + 1}:{mark.column + 1}" if mark is not None else str(path)


def _yaml_problem(e: yaml.YAMLError) -> str:
    """PyYAML's multi-line message as one short phrase (e.g. "mapping values are not allowed here")."""
    parts = [getattr(e, "context", None), getattr(e, "problem", None)]
    text = "; ".join(p for p in parts if p) or str(e).splitlines()[0]
    return " ".join(text.split())


def load_config(path: str | Path | None, overrides: typing.Sequence[str] = ()) -> Config:
    """Read a YAML recipe (or start from defaults if ``path`` is None) and apply overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: no such config file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{_yaml_where(path, e)}: invalid YAML: {_yaml_problem(e)}") from None
        except RecursionError:
            raise ConfigError(f"{path}: invalid YAML: nested too deeply") from None
        except UnicodeDecodeError as e:
            raise ConfigError(f"{path}: not a text file ({e.reason} at byte {e.start})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: a config must be a mapping of sections")
    apply_overrides(data, overrides)
    try:
        return config_from_dict(data)
    except RecursionError:
        raise ConfigError(f"{path}: a value is nested too deeply") from None
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}" if path is not None else str(e)) from None


def save_config(cfg: Config, path: str | Path) -> Path:
    """Write the resolved config as YAML (atomically)."""
    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False, default_flow_style=None)
    write_text_atomic(path, text)
    return Path(path)
