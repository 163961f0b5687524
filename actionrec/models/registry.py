"""A plain name → builder registry and the one ``create_model`` entry point (timm style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch.nn as nn

from actionrec.errors import UsageError

_BUILDERS: dict[str, Callable[..., nn.Module]] = {}


def register_model(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Decorator: make a keyword-only builder available to :func:`create_model` under its name."""
    _BUILDERS[fn.__name__] = fn
    return fn


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def get_builder(name: str) -> Callable[..., nn.Module]:
    try:
        return _BUILDERS[name]
    except KeyError:
        raise UsageError(f"unknown model {name!r}; available: {', '.join(list_models())}") from None


def create_model(
    name: str, *, num_classes: int | None = None, pretrained: str | None = None, **kwargs: Any
) -> nn.Module:
    """Build a model by name.

    Args:
        name: one of :func:`list_models` (``r2plus1d_18``, ``r2plus1d_34``, ``r3d_18``, ``mc3_18``, ``i3d``, …).
        num_classes: size of the classification head; with ``pretrained``, a value different
            from the checkpoint's replaces the head (fine-tuning).
        pretrained: path of one of our checkpoints (``.safetensors``), or the name of a known
            weight set (see :mod:`actionrec.hub`), e.g. ``"kinetics400"`` for ``i3d``.
        **kwargs: passed to the builder (e.g. ``in_channels=2`` for flow I3D).

    Returns:
        the model, with ``model.meta`` (:class:`~actionrec.meta.ModelMeta`).
    """
    if pretrained is None:
        builder = get_builder(name)
        return builder(**kwargs) if num_classes is None else builder(num_classes=num_classes, **kwargs)
    from actionrec.models.finetune import load_pretrained

    return load_pretrained(name, pretrained, num_classes=num_classes, **kwargs)
