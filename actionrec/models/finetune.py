"""Starting from trained weights: loading a checkpoint into a (possibly new-headed) model, and freezing."""

from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any

import torch.nn as nn

from actionrec.errors import UsageError

log = logging.getLogger(__name__)


def head_name(model: nn.Module) -> str:
    """Name of the classification layer: ``fc`` (video ResNets) or ``logits`` (I3D)."""
    for name in ("fc", "logits"):
        if hasattr(model, name):
            return name
    raise UsageError(f"{type(model).__name__} has no known classification head")


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Give ``model`` a freshly initialised classifier with ``num_classes`` outputs (in place)."""
    from actionrec.models.i3d import I3D, Unit3D

    if isinstance(model, I3D):
        model.logits = Unit3D(model.logits.conv3d.in_channels, num_classes, 1, use_bn=False, use_bias=True, activation=False)
    else:
        old = getattr(model, head_name(model))
        fc = nn.Linear(old.in_features, num_classes)
        nn.init.normal_(fc.weight, 0, 0.01)
        nn.init.zeros_(fc.bias)
        model.fc = fc
    if getattr(model, "meta", None) is not None:
        model.meta = copy.deepcopy(model.meta)
        model.meta.num_classes = num_classes
        model.meta.class_names = None
    return model


def freeze(model: nn.Module, trainable_prefixes: list[str]) -> list[str]:
    """Train only parameters whose names start with one of ``trainable_prefixes``.

    The standard I3D fine-tuning recipe is ``freeze(model, ["logits", "Mixed_5"])``.
    Returns the names of the parameters left trainable; an empty result is an error.
    """
    trainable = []
    for name, p in model.named_parameters():
        p.requires_grad_(any(name.startswith(pref) for pref in trainable_prefixes))
        if p.requires_grad:
            trainable.append(name)
    if not trainable:
        raise UsageError(f"no parameter name starts with any of {trainable_prefixes}")
    return trainable


def resolve_pretrained(arch: str, pretrained: str) -> Path:
    """A checkpoint path, or the name of a known weight set of ``arch`` (see :mod:`actionrec.hub`)."""
    path = Path(pretrained)
    if path.suffix in (".safetensors",) or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"pretrained checkpoint {path}: no such file")
        return path
    from actionrec.hub import pretrained_path

    return pretrained_path(arch, pretrained)


def load_pretrained(arch: str, pretrained: str, *, num_classes: int | None = None, **kwargs: Any) -> nn.Module:
    """Build ``arch`` with the weights of ``pretrained``; a different ``num_classes`` replaces the head."""
    from actionrec.checkpoint import CheckpointError, load_state_dict_checked, read_meta, read_weights
    from actionrec.models.registry import get_builder

    path = resolve_pretrained(arch, pretrained)
    meta = read_meta(path)
    if meta.arch != arch:
        raise CheckpointError(f"{path} holds a {meta.arch} model, not a {arch}")
    model = get_builder(arch)(num_classes=meta.num_classes, **{**meta.arch_kwargs, **kwargs})
    load_state_dict_checked(model, read_weights(path), source=str(path))
    meta.arch_kwargs = {**meta.arch_kwargs, **kwargs}
    model.meta = meta
    if num_classes is not None and num_classes != meta.num_classes:
        log.info("replacing the %d-class head of %s with a new %d-class head", meta.num_classes, path, num_classes)
        replace_head(model, num_classes)
    return model
