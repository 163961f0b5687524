"""GluonCV (PyTorch) ``r2plus1d_v1_resnet18/34_kinetics400``: torchvision's network under other names."""

from __future__ import annotations

import re

from actionrec.convert.common import complete_bn, has_keys, in_channels_kwargs, resnet_depth
from actionrec.convert.registry import Converted, Converter, Foreign, register_converter
from actionrec.errors import UsageError

_STEM = {"conv1.": "stem.0.", "bn1.": "stem.1.", "conv2.": "stem.3.", "bn2.": "stem.4."}
_INNER = {
    "conv1.conv1.": "conv1.0.0.", "conv1.bn1.": "conv1.0.1.", "conv1.conv2.": "conv1.0.3.", "bn1.": "conv1.1.",
    "conv2.conv1.": "conv2.0.0.", "conv2.bn1.": "conv2.0.1.", "conv2.conv2.": "conv2.0.3.", "bn2.": "conv2.1.",
}  # fmt: skip


def gluoncv_key(k: str) -> str:
    """GluonCV name → ours (also used for the MindSpore R(2+1)D recipe, which keeps GluonCV's names)."""
    for src, dst in _STEM.items():
        if k.startswith(src):
            return dst + k[len(src) :]
    m = re.match(r"(layer\d\.\d+)\.(.+)$", k)
    if not m:
        return k  # fc.*
    block, rest = m.groups()
    for src, dst in _INNER.items():
        if rest.startswith(src):
            return f"{block}.{dst}{rest[len(src):]}"
    return k  # downsample.*


def _matches(f: Foreign) -> bool:
    return has_keys(f, "conv1.weight", "layer1.0.conv1.conv1.weight")


def convert(f: Foreign, num_classes: int | None = None) -> Converted:
    if not _matches(f):
        raise UsageError(f"{f.path}: not a GluonCV R(2+1)D v1 checkpoint (no 'layer1.0.conv1.conv1.weight')")
    if "layer1.0.conv3.weight" in f.tensors:
        raise UsageError(f"{f.path}: bottleneck R(2+1)D (ResNet-50 and deeper) is not supported; use resnet18/34")
    sd = complete_bn({gluoncv_key(k): v for k, v in f.tensors.items()})
    depth = resnet_depth(sd, f.path)
    return Converted(f"r2plus1d_{depth}", sd, in_channels_kwargs(sd["stem.0.weight"].shape[1]))


register_converter(Converter("gluoncv", "GluonCV (PyTorch) r2plus1d_v1_resnet18/34 .pth", ("torch",), _matches, convert))
