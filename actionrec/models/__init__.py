"""Architectures: video ResNets (R3D, MC3, R(2+1)D, mmaction2's R(2+1)D) and I3D, with their registries.

Building a model *with weights* is :func:`actionrec.create_model` / :func:`actionrec.load_model`
(:mod:`actionrec.factory`), which sit above the converters and :mod:`actionrec.hub`. The names below
are imported on first use (``actionrec models --help`` does not import torch); the architectures
register themselves at the registries' first look-up.
"""

from __future__ import annotations

import importlib
from typing import Any

_REGISTRY_NAMES = ("PretrainedCfg", "build_model", "get_builder", "get_pretrained", "list_models", "list_pretrained",
                   "register_model", "register_pretrained")

__all__ = list(_REGISTRY_NAMES)


def __getattr__(name: str) -> Any:
    if name in _REGISTRY_NAMES:
        return getattr(importlib.import_module("actionrec.models.registry"), name)
    if name in ("i3d", "video_resnet", "x3d", "finetune", "two_stream", "flops", "registry"):
        return importlib.import_module(f"actionrec.models.{name}")
    raise AttributeError(f"module 'actionrec.models' has no attribute {name!r}")
