"""A torchvision ``googlenet`` (ImageNet) state dict inflated into I3D (the I3D paper's "boring video" rule)."""

from __future__ import annotations

import torch

from actionrec.convert.registry import Converted, Converter, Foreign, StateDict, register_converter
from actionrec.errors import UsageError
from actionrec.models import build_model

_BLOCKS = {
    "inception3a": "Mixed_3b", "inception3b": "Mixed_3c", "inception4a": "Mixed_4b", "inception4b": "Mixed_4c",
    "inception4c": "Mixed_4d", "inception4d": "Mixed_4e", "inception4e": "Mixed_4f", "inception5a": "Mixed_5b",
    "inception5b": "Mixed_5c",
}  # fmt: skip
_BRANCHES = {"branch1": "b0", "branch2.0": "b1a", "branch2.1": "b1b", "branch3.0": "b2a", "branch3.1": "b2b", "branch4.1": "b3b"}
_STEM = {"conv1": "Conv3d_1a_7x7", "conv2": "Conv3d_2b_1x1", "conv3": "Conv3d_2c_3x3"}


def googlenet_unit_names() -> dict[str, str]:
    """Map of GoogLeNet conv-unit prefixes (``inception3a.branch2.1``) to I3D units (``Mixed_3b.b1b``)."""
    names = dict(_STEM)
    for blk, mixed in _BLOCKS.items():
        for br, unit in _BRANCHES.items():
            names[f"{blk}.{br}"] = f"{mixed}.{unit}"
    return names


def inflate_googlenet(sd2d: StateDict, model3d: torch.nn.Module) -> StateDict:
    """Inflate a torchvision ``googlenet`` state dict into ``model3d`` (an :class:`~actionrec.models.i3d.I3D`).

    Each 2D kernel ``(O, I, kh, kw)`` is repeated ``kt`` times over time and divided by ``kt``,
    so a video of one repeated image gives the 2D network's activations. BN statistics are
    copied. The 1000-class ``fc`` is dropped: the I3D classifier keeps its fresh initialisation.
    """
    own = model3d.state_dict()
    out: StateDict = {}
    for src, dst in googlenet_unit_names().items():
        w2 = sd2d.get(f"{src}.conv.weight")
        if w2 is None:
            raise UsageError(f"googlenet state dict lacks {src}.conv.weight")
        w3 = own[f"{dst}.conv3d.weight"]
        if w3.shape[:2] != w2.shape[:2] or w3.shape[3:] != w2.shape[2:]:
            raise UsageError(f"{src}: 2D kernel {tuple(w2.shape)} does not inflate to {dst} {tuple(w3.shape)}")
        kt = w3.shape[2]
        out[f"{dst}.conv3d.weight"] = w2.unsqueeze(2).repeat(1, 1, kt, 1, 1) / kt
        for leaf in ("weight", "bias", "running_mean", "running_var"):
            out[f"{dst}.bn.{leaf}"] = sd2d[f"{src}.bn.{leaf}"]
        out[f"{dst}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
    head = model3d.classifier
    for k in (f"{head}.weight", f"{head}.bias"):
        out[k] = own[k]
    return out


def _matches(f: Foreign) -> bool:
    return "inception3a.branch1.conv.weight" in f.tensors


def convert(f: Foreign, num_classes: int | None = None) -> Converted:
    model = build_model("i3d", num_classes=num_classes or 400)
    return Converted("i3d", inflate_googlenet(f.tensors, model))


register_converter(Converter("googlenet", "torchvision googlenet (ImageNet) inflated into I3D (new head)", ("torch",), _matches, convert))
