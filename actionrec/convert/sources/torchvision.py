"""torchvision ``r2plus1d_18`` / ``r3d_18`` / ``mc3_18`` state dicts: our layout, only the arch is inferred."""

from __future__ import annotations

from actionrec.convert.common import has_keys, in_channels_kwargs, require, resnet_depth
from actionrec.convert.registry import Converted, Converter, Foreign, register_converter


def _matches(f: Foreign) -> bool:
    return has_keys(f, "stem.0.weight", "fc.weight") and any(k.startswith("layer1.0.conv1.0.") for k in f.tensors)


def convert(f: Foreign, num_classes: int | None = None) -> Converted:
    sd = f.tensors
    stem = require(f, "stem.0.weight", "a torchvision video ResNet")
    depth = resnet_depth(sd, f.path)
    if "stem.3.weight" in sd:
        arch = f"r2plus1d_{depth}"
    else:
        kernel = tuple(require(f, "layer2.0.conv1.0.weight", "a torchvision video ResNet").shape[2:])
        arch = f"r3d_{depth}" if kernel == (3, 3, 3) else f"mc3_{depth}"
    return Converted(arch, dict(sd), in_channels_kwargs(stem.shape[1]))


register_converter(Converter("torchvision", "torchvision r2plus1d_18 / r3d_18 / mc3_18 .pth", ("torch", "safetensors"), _matches, convert))
