"""The public factories: :func:`create_model` (an architecture, optionally with weights) and
:func:`load_model` (a checkpoint file or a known weight set).

Top of the model stack: checkpoint format → architectures/registries → head surgery →
converters → :mod:`actionrec.hub` → here.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from actionrec.checkpoint import CheckpointError, check_shapes, load_state_dict_checked, read_meta, read_shapes, read_weights
from actionrec.errors import UsageError
from actionrec.hub import pretrained_path
from actionrec.meta import ModelMeta
from actionrec.models.finetune import replace_head
from actionrec.models.registry import build_model, get_pretrained, list_pretrained

log = logging.getLogger(__name__)

__all__ = ["create_model", "load_model"]


def _checkpoint_path(name_or_path: str | os.PathLike) -> Path:
    """A file path as given, or the cached checkpoint of a known weight set (``i3d_kinetics400``)."""
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and name_or_path in list_pretrained() and not path.exists():
        return pretrained_path(name_or_path)
    return path


def _pretrained_path(arch: str, pretrained: str | bool | os.PathLike) -> Path:
    """``create_model``'s ``pretrained``: a checkpoint path, a weight-set name or tag of ``arch``, or True/"default"."""
    if pretrained is True:
        pretrained = "default"
    if not isinstance(pretrained, (str, os.PathLike)) or isinstance(pretrained, bool):
        raise UsageError(f"pretrained must be a checkpoint path, a weight-set name or True, not {pretrained!r}")
    path = Path(pretrained)
    if path.suffix == ".safetensors" or path.exists():
        return path
    name = os.fspath(pretrained)
    if name in list_pretrained():
        ws = get_pretrained(name)
        if ws.arch != arch:
            raise UsageError(f"weight set {name} is for {ws.arch}, not {arch}")
        return pretrained_path(name)
    return pretrained_path(arch, name)


def _build_checked(path: Path, meta: ModelMeta, **overrides: Any) -> nn.Module:
    """Build ``meta``'s architecture and load ``path``'s weights, checking names and shapes first.

    The architecture is first built on the ``meta`` device (no memory) and compared with the
    file's header, so a malformed file fails with :class:`CheckpointError` before anything big
    is allocated.
    """
    kwargs = {**meta.arch_kwargs, **overrides}
    try:
        with torch.device("meta"):
            skeleton = build_model(meta.arch, num_classes=meta.num_classes, **kwargs)
    except (UsageError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"{path}: metadata describes no buildable model ({type(e).__name__}: {e})") from e
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    check_shapes(expected, read_shapes(path), source=str(path), target=f"{meta.arch} ({meta.num_classes} classes)")
    model = build_model(meta.arch, num_classes=meta.num_classes, **kwargs)
    load_state_dict_checked(model, read_weights(path), source=str(path))
    return model


def load_model(name_or_path: str | os.PathLike, *, device: str | torch.device = "cpu") -> nn.Module:
    """Build the model a checkpoint describes, load its weights, return it in eval mode.

    Args:
        name_or_path: one of our ``.safetensors`` checkpoints (or training states), or a known
            weight set (:func:`actionrec.models.list_pretrained`, e.g. ``"i3d_kinetics400"``:
            fetched, converted and cached on first use).

    The returned model has ``model.meta`` (:class:`~actionrec.meta.ModelMeta`). Any malformed
    file raises :class:`~actionrec.checkpoint.CheckpointError` naming it.
    """
    path = _checkpoint_path(name_or_path)
    meta = read_meta(path)
    model = _build_checked(path, meta)
    model.meta = meta
    return model.to(device).eval()


def create_model(name: str, *, num_classes: int | None = None, pretrained: str | bool | os.PathLike | None = None,
                 **kwargs: Any) -> nn.Module:
    """Build a model by name, optionally starting from trained weights.

    Args:
        name: one of :func:`actionrec.models.list_models` (``r2plus1d_18``, ``r2plus1d_mm_34``, ``i3d``, …).
        num_classes: size of the classification head; with ``pretrained``, a value different
            from the checkpoint's replaces the head (fine-tuning).
        pretrained: path of one of our checkpoints; a known weight set of ``name``, by full name
            (``"r2plus1d_18_kinetics400_torchvision"``) or tag (``"kinetics400_torchvision"``); or ``True`` /
            ``"default"`` for ``name``'s default weight set (``actionrec weights list`` shows them). Known weights
            are fetched, verified and converted on first use, then read from the cache.
        **kwargs: passed to the builder (e.g. ``in_channels=2`` for flow I3D).

    Returns:
        the model, with ``model.meta`` (:class:`~actionrec.meta.ModelMeta`).
    """
    if pretrained is None or pretrained is False:
        return build_model(name, num_classes=num_classes, **kwargs)
    path = _pretrained_path(name, pretrained)
    meta = read_meta(path)
    if meta.arch != name:
        raise CheckpointError(f"{path} holds a {meta.arch} model, not a {name}")
    model = _build_checked(path, meta, **kwargs)
    meta.arch_kwargs = {**meta.arch_kwargs, **kwargs}
    model.meta = meta
    if num_classes is not None and num_classes != meta.num_classes:
        log.info("replacing the %d-class head of %s with a new %d-class head", meta.num_classes, path, num_classes)
        replace_head(model, num_classes)
    return model
