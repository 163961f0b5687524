"""The converter registry: source name → how to recognise and convert its weights.

A converter module (``actionrec/convert/sources/*.py``) registers one :class:`Converter`;
``convert_checkpoint`` and ``--from auto`` find it here by name or by :meth:`Converter.matches`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from actionrec.meta import Preprocess
from actionrec.registry import Registry

StateDict = dict[str, torch.Tensor]


@dataclass
class Foreign:
    """A foreign weight file as read (no converter applied yet).

    ``tensors`` holds the file's tensors under its own names; ``extra`` anything else the file
    carries that a converter may use (e.g. mmengine's ``meta`` with the training config).
    """

    path: str
    format: str  # "torch", "pickle", "mindspore", "safetensors"
    tensors: StateDict
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Converted:
    """Our architecture and state dict for a foreign file, plus what the file says about its input."""

    arch: str
    state_dict: StateDict
    arch_kwargs: dict[str, Any] = field(default_factory=dict)
    preprocess: Preprocess | None = None
    class_names: list[str] | None = None


@dataclass(frozen=True)
class Converter:
    """``convert(foreign, num_classes=None) -> Converted``; ``matches(foreign)`` for ``--from auto``."""

    name: str
    description: str
    formats: tuple[str, ...]
    matches: Callable[[Foreign], bool]
    convert: Callable[..., Converted]


#: Source name → converter; the built-in sources register themselves at the first look-up.
_CONVERTERS: Registry[Converter] = Registry("weight source", hint="or `auto` to recognise the file; `actionrec models` lists them",
                                            autoload=("actionrec.convert.sources",))


def register_converter(conv: Converter) -> Converter:
    """Add a converter under ``conv.name`` (a taken name raises)."""
    return _CONVERTERS.register(conv.name, conv)


def list_converters() -> list[str]:
    return _CONVERTERS.names()


def get_converter(name: str) -> Converter:
    return _CONVERTERS.get(name)


def detect(foreign: Foreign) -> list[Converter]:
    """The converters whose key layout ``foreign`` has."""
    return [c for c in _CONVERTERS.values() if foreign.format in c.formats and c.matches(foreign)]
