"""MindSpore ``.ckpt`` weights (read by :mod:`actionrec.convert.mindspore_ckpt`, no MindSpore needed).

Three layouts are known:

* **MindVideo** ``R2Plus1d18`` (ZJUT-ERCISS/zjut_mindvideo): torchvision's R(2+1)D under other
  names (``conv1.{0,3}``, ``layerL.B.conv12.conv{1,2}_{0,1}.features.{0,1}``, ``down_sample``,
  ``classifier``) → ``r2plus1d_18``, exact.
* **MindVideo** ``I3D``: our I3D except that ``Conv3d_1a_7x7`` pads 3 on both sides and BatchNorm
  has eps 1e-5 → ``i3d`` with ``stem_padding="symmetric", bn_eps=1e-5`` (kept in ``meta.arch_kwargs``).
* the **mindspore-ai/models R(2+1)D** recipe (``research/cv/r2plus1d``), whose ``transfer_pth.py``
  renames GluonCV's ``.pth`` (``bn1`` → ``bn1.bn2d``, ``weight`` → ``gamma`` …) → ``r2plus1d_18/34``.

MindSpore BatchNorm parameters (``….bn2d.{gamma,beta,moving_mean,moving_variance}``) become
PyTorch's (``weight``, ``bias``, ``running_mean``, ``running_var``); optimiser entries a training
checkpoint carries (``moments.*``, ``global_step``, ``learning_rate``, …) are dropped.
"""

from __future__ import annotations

import logging
import re

from actionrec.convert.common import complete_bn, in_channels_kwargs, resnet_depth
from actionrec.convert.registry import Converted, Converter, Foreign, StateDict, register_converter
from actionrec.convert.sources.gluoncv import gluoncv_key
from actionrec.errors import UsageError

log = logging.getLogger(__name__)

_BN_LEAF = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}
_OPTIMISER_PREFIXES = ("moments.", "moment1.", "moment2.", "accum.", "adam_m.", "adam_v.", "accumulation.")
_I3D_STEM = {"conv3d_1a_7x7": "Conv3d_1a_7x7", "conv3d_2b_1x1": "Conv3d_2b_1x1", "conv3d_2c_3x3": "Conv3d_2c_3x3"}
_CONV12 = {"conv1_0.features.0": "conv1.0.0", "conv1_0.features.1": "conv1.0.1", "conv1_1.features.0": "conv1.0.3",
           "conv1_1.features.1": "conv1.1", "conv2_0.features.0": "conv2.0.0", "conv2_0.features.1": "conv2.0.1",
           "conv2_1.features.0": "conv2.0.3", "conv2_1.features.1": "conv2.1"}  # fmt: skip


def _torch_bn(k: str) -> str:
    """``x.bn2d.gamma`` → ``x.weight`` (and beta, moving_mean, moving_variance)."""
    head, _, leaf = k.rpartition(".")
    if head.endswith(".bn2d") and leaf in _BN_LEAF:
        return f"{head.removesuffix('.bn2d')}.{_BN_LEAF[leaf]}"
    return k


def _network_tensors(f: Foreign) -> StateDict:
    kept, dropped = {}, []
    for k, v in f.tensors.items():
        if "." not in k or k.startswith(_OPTIMISER_PREFIXES):
            dropped.append(k)
        else:
            kept[k] = v
    if dropped:
        log.info("%s: dropping %d optimiser/training entries (%s…)", f.path, len(dropped), ", ".join(dropped[:3]))
    return kept


def _mindvideo_r2plus1d_key(k: str) -> str:
    k = _torch_bn(k)
    if k.startswith("conv1."):
        return "stem." + k.removeprefix("conv1.")
    if k.startswith("classifier."):
        return "fc." + k.removeprefix("classifier.")
    k = k.replace(".down_sample.features.", ".downsample.")
    for src, dst in _CONV12.items():
        k = k.replace(f".conv12.{src}.", f".{dst}.")
    return k


def _mindvideo_i3d_key(k: str) -> str:
    k = _torch_bn(k)
    if k.startswith("head.logits.features.0."):
        return "logits.conv3d." + k.removeprefix("head.logits.features.0.")
    m = re.match(r"backbone\.(\w+?)\.(?:(b\w+)\.)?features\.([01])\.(\w+)$", k)
    if not m:
        return k
    unit, branch, layer, leaf = m.groups()
    unit = _I3D_STEM.get(unit) or unit.replace("mixed_", "Mixed_")
    return f"{unit}.{branch + '.' if branch else ''}{'conv3d' if layer == '0' else 'bn'}.{leaf}"


def _layout(keys: set[str]) -> str | None:
    if "layer1.0.conv12.conv1_0.features.0.weight" in keys:
        return "mindvideo-r2plus1d"
    if "backbone.conv3d_1a_7x7.features.0.weight" in keys:
        return "mindvideo-i3d"
    if "layer1.0.conv1.conv1.weight" in keys and "bn1.bn2d.gamma" in keys:
        return "mindspore-models-r2plus1d"
    return None


def _matches(f: Foreign) -> bool:
    return _layout(set(f.tensors)) is not None


def convert(f: Foreign, num_classes: int | None = None) -> Converted:
    tensors = _network_tensors(f)
    layout = _layout(set(tensors))
    if layout == "mindvideo-r2plus1d":
        sd = complete_bn({_mindvideo_r2plus1d_key(k): v for k, v in tensors.items()})
        if "fc.weight" not in sd:
            raise UsageError(f"{f.path}: MindVideo R(2+1)D without the classifier 'classifier.weight'")
        return Converted(f"r2plus1d_{resnet_depth(sd, f.path)}", sd, in_channels_kwargs(sd["stem.0.weight"].shape[1]))
    if layout == "mindvideo-i3d":
        sd = complete_bn({_mindvideo_i3d_key(k): v for k, v in tensors.items()})
        if "logits.conv3d.weight" not in sd:
            raise UsageError(f"{f.path}: MindVideo I3D without the classifier 'head.logits.features.0.weight'")
        kwargs = {**in_channels_kwargs(sd["Conv3d_1a_7x7.conv3d.weight"].shape[1]), "bn_eps": 1e-5, "stem_padding": "symmetric"}
        return Converted("i3d", sd, kwargs)
    if layout == "mindspore-models-r2plus1d":
        sd = complete_bn({gluoncv_key(_torch_bn(k)): v for k, v in tensors.items()})
        if "fc.weight" not in sd:
            raise UsageError(f"{f.path}: MindSpore R(2+1)D without the classifier 'fc.weight'")
        return Converted(f"r2plus1d_{resnet_depth(sd, f.path)}", sd, in_channels_kwargs(sd["stem.0.weight"].shape[1]))
    sample = ", ".join(list(tensors)[:4])
    raise UsageError(f"{f.path}: a MindSpore checkpoint of an unknown network (keys {sample}, …)")


register_converter(
    Converter("mindspore", "MindSpore .ckpt: MindVideo R2Plus1d18 / I3D, mindspore-ai/models R(2+1)D", ("mindspore",), _matches, convert)
)
