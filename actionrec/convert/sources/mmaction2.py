"""mmaction2's R(2+1)D (``ResNet2Plus1d`` + ``I3DHead``) ``.pth`` → our ``r2plus1d_mm_18/34``, and its X3D
(``X3D`` + ``X3DHead``) → our ``x3d_*`` in the mmaction2 layout (:mod:`actionrec.models.x3d`).

mmengine (1.x) and mmcv (0.x) checkpoints are ``{"state_dict", "meta", "optimizer", …}``; they are
read with the restricted unpickler (:mod:`actionrec.convert.safe_pickle`). ``data_preprocessor.*``
buffers are dropped; the preprocessing (mean/std on the 0–255 scale, clip length, frame interval,
resize, crop) is taken from the training config stored in ``meta`` when there is one, and the class
names from ``meta["dataset_meta"]["classes"]``.
"""

from __future__ import annotations

import dataclasses
import logging
import re

from actionrec.convert.common import complete_bn, in_channels_kwargs, resnet_depth, x3d_size
from actionrec.convert.registry import Converted, Converter, Foreign, StateDict, register_converter
from actionrec.errors import UsageError
from actionrec.meta import Preprocess
from actionrec.models.video_resnet import MMACTION2_PREPROCESS
from actionrec.models.x3d import x3d_preprocess

log = logging.getLogger(__name__)

_INNER = ((".conv.conv_s.", ".0.0."), (".conv.bn_s.", ".0.1."), (".conv.conv_t.", ".0.3."), (".bn.", ".1."))


def _key(k: str) -> str:
    if k.startswith("cls_head.fc_cls."):
        return "fc." + k.removeprefix("cls_head.fc_cls.")
    k = k.removeprefix("backbone.")
    if k.startswith("conv1."):
        k = "stem." + k.removeprefix("conv1.")
    k = "." + k
    for src, dst in _INNER:
        k = k.replace(src, dst)
    return k[1:]


_X3D_STEM = "backbone.conv1_s.conv.weight"
_X3D_TOP = (("backbone.conv1_s.conv.", "blocks.0.conv.conv_t."), ("backbone.conv1_t.conv.", "blocks.0.conv.conv_xy."),
            ("backbone.conv1_t.bn.", "blocks.0.norm."), ("backbone.conv5.conv.", "blocks.5.pool.pre_conv."),
            ("backbone.conv5.bn.", "blocks.5.pool.pre_norm."), ("cls_head.fc1.", "blocks.5.pool.post_conv."),
            ("cls_head.fc2.", "blocks.5.proj."))
_X3D_INNER = ((".conv1.conv.", ".branch2.conv_a."), (".conv1.bn.", ".branch2.norm_a."), (".conv2.conv.", ".branch2.conv_b."),
              (".conv2.bn.", ".branch2.norm_b.0."), (".se_module.fc1.", ".branch2.norm_b.1.block.0."),
              (".se_module.fc2.", ".branch2.norm_b.1.block.2."), (".conv3.conv.", ".branch2.conv_c."),
              (".conv3.bn.", ".branch2.norm_c."), (".downsample.conv.", ".branch1_conv."), (".downsample.bn.", ".branch1_norm."))
# mmaction2's X3D test input by size (its configs: resize the short side to the crop, 182 for S, 256 for M)
_X3D_CROP = {"xs": 182, "s": 182, "m": 256}
_X3D_MEAN, _X3D_STD = (114.75 / 255,) * 3, (57.38 / 255,) * 3


def _x3d_key(k: str) -> str:
    for src, dst in _X3D_TOP:
        if k.startswith(src):
            return dst + k.removeprefix(src)
    m = re.match(r"backbone\.layer(\d)\.(\d+)(\..*)$", k)
    if not m:
        return k  # unknown: reported by the checked load
    rest = m.group(3)
    for src, dst in _X3D_INNER:
        rest = rest.replace(src, dst)
    return f"blocks.{m.group(1)}.res_blocks.{m.group(2)}{rest}"


def _matches(f: Foreign) -> bool:
    return "backbone.conv1.conv.conv_s.weight" in f.tensors or _X3D_STEM in f.tensors


def _config_text(f: Foreign) -> str:
    meta = f.extra.get("meta") or {}
    for key in ("cfg", "config"):  # mmengine 1.x / mmcv 0.x runners
        if isinstance(meta.get(key), str):
            return meta[key]
    return ""


def _numbers(text: str, name: str) -> tuple[float, ...] | None:
    m = re.search(rf"\b{name}\s*=\s*[\[(]([^\])]*)[\])]", text)
    if not m:
        return None
    try:
        return tuple(float(v) for v in m.group(1).split(",") if v.strip())
    except ValueError:
        return None


def _int(text: str, pattern: str) -> int | None:
    m = re.search(pattern, text)
    return int(m.group(1)) if m else None


def preprocess_from_config(text: str, default: Preprocess = MMACTION2_PREPROCESS, *, what: str = "R(2+1)D") -> Preprocess:
    """Our :class:`Preprocess` from an mmaction2 config's text (test/val pipeline; 0–255 mean/std ÷ 255); ``default``
    where the text says nothing (mmaction2's ``what`` configs)."""
    pre = default
    if not text:
        log.info("no training config in the checkpoint: mmaction2's %s defaults assumed (%s)", what, pre)
        return pre
    mean, std = _numbers(text, "mean"), _numbers(text, "std")
    if mean and std and len(mean) == len(std) == 3:
        scale = 255.0 if max(mean) > 1.5 else 1.0
        pre = dataclasses.replace(pre, mean=tuple(v / scale for v in mean), std=tuple(v / scale for v in std))
    m = re.search(r"(val|test)_pipeline\s*=\s*\[(.*?)\n\]", text, re.S)
    pipeline = m.group(2) if m else text
    changes = {
        "clip_len": _int(pipeline, r"clip_len\s*=\s*(\d+)"),
        "frame_stride": _int(pipeline, r"frame_interval\s*=\s*(\d+)"),
        "resize_short": _int(pipeline, r"scale\s*=\s*\(\s*-1\s*,\s*(\d+)\s*\)"),
        "crop_size": _int(pipeline, r"crop_size\s*=\s*(\d+)"),
    }
    return pre.override(arch="mmaction2 config", warn=False, **changes)  # checked: bounds, crop ≤ resize


def _class_names(f: Foreign) -> list[str] | None:
    """``meta["dataset_meta"]["classes"]`` of an mmengine checkpoint, when it holds class-name strings."""
    dataset_meta = (f.extra.get("meta") or {}).get("dataset_meta")
    classes = dataset_meta.get("classes") if isinstance(dataset_meta, dict) else None
    return list(classes) if isinstance(classes, list) and classes and all(isinstance(c, str) for c in classes) else None


def _x3d_preprocess(text: str, sd: StateDict, path: str) -> tuple[str, Preprocess]:
    """The X3D size (from the depths, then the config's clip length, then the file name) and its test input."""
    clip_len = preprocess_from_config(text).clip_len if text else None
    size = x3d_size(sd, path, hint={4: "xs", 13: "s", 16: "m"}.get(clip_len or 0, ""))
    builder = x3d_preprocess(size)
    crop = _X3D_CROP.get(size, builder.crop_size)
    default = dataclasses.replace(builder, resize_short=crop, crop_size=crop, mean=_X3D_MEAN, std=_X3D_STD)
    return size, preprocess_from_config(text, default, what=f"X3D-{size.upper()}")


def _convert_x3d(f: Foreign) -> Converted:
    """mmaction2's ``X3D`` backbone + ``X3DHead`` → ``x3d_*`` (``layout="mmaction2"``)."""
    if "cls_head.fc2.weight" not in f.tensors or "cls_head.fc1.weight" not in f.tensors:
        raise UsageError(f"{f.path}: mmaction2 X3D backbone without its X3DHead ('cls_head.fc1.weight', 'cls_head.fc2.weight')")
    if "cls_head.fc1.bias" in f.tensors:
        raise UsageError(f"{f.path}: an X3DHead with fc1_bias=True (X3D's head has no bias there; not supported)")
    if f.tensors[_X3D_STEM].shape[1] != 3:
        raise UsageError(f"{f.path}: X3D with {int(f.tensors[_X3D_STEM].shape[1])} input channels (RGB only)")
    sd = complete_bn({_x3d_key(k): v for k, v in f.tensors.items() if not k.startswith("data_preprocessor.")})
    post = sd["blocks.5.pool.post_conv.weight"]
    sd["blocks.5.pool.post_conv.weight"] = post.reshape(*post.shape, 1, 1, 1)  # fc1 (2048, 432) → 1×1×1 conv
    size, pre = _x3d_preprocess(_config_text(f), sd, f.path)
    return Converted(f"x3d_{size}", sd, {"layout": "mmaction2"}, preprocess=pre, class_names=_class_names(f))


def convert(f: Foreign, num_classes: int | None = None) -> Converted:
    if _X3D_STEM in f.tensors:
        return _convert_x3d(f)
    if "backbone.conv1.conv.conv_s.weight" not in f.tensors:
        if any(k.startswith("backbone.") for k in f.tensors):
            raise UsageError(f"{f.path}: an mmaction2 model, but neither ResNet2Plus1d nor X3D "
                             "(no 'backbone.conv1.conv.conv_s.weight' or 'backbone.conv1_s.conv.weight')")
        raise UsageError(f"{f.path}: not an mmaction2 checkpoint (no 'backbone.*' weights)")
    if "cls_head.fc_cls.weight" not in f.tensors:
        raise UsageError(f"{f.path}: mmaction2 backbone without the classifier 'cls_head.fc_cls.weight' (an I3DHead is expected)")
    dropped = sorted(k for k in f.tensors if k.startswith("data_preprocessor."))
    if dropped:
        log.info("dropping %s (the preprocessing goes into the metadata)", ", ".join(dropped))
    sd = complete_bn({_key(k): v for k, v in f.tensors.items() if not k.startswith("data_preprocessor.")})
    depth = resnet_depth(sd, f.path)
    kwargs = in_channels_kwargs(sd["stem.0.0.weight"].shape[1])
    pre = preprocess_from_config(_config_text(f))
    return Converted(f"r2plus1d_mm_{depth}", sd, kwargs, preprocess=pre, class_names=_class_names(f))


register_converter(Converter("mmaction2", "mmaction2 ResNet2Plus1d + I3DHead, X3D + X3DHead .pth (0.x and 1.x)", ("torch",),
                             _matches, convert))
