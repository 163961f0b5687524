"""mmaction2's R(2+1)D (``ResNet2Plus1d`` + ``I3DHead``) ``.pth`` → our ``r2plus1d_mm_18/34``.

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

from actionrec.convert.common import complete_bn, in_channels_kwargs, resnet_depth
from actionrec.convert.registry import Converted, Converter, Foreign, register_converter
from actionrec.errors import UsageError
from actionrec.meta import Preprocess
from actionrec.models.video_resnet import MMACTION2_PREPROCESS

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


def _matches(f: Foreign) -> bool:
    return "backbone.conv1.conv.conv_s.weight" in f.tensors


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


def preprocess_from_config(text: str) -> Preprocess:
    """Our :class:`Preprocess` from an mmaction2 config's text (test/val pipeline; 0–255 mean/std ÷ 255)."""
    pre = MMACTION2_PREPROCESS
    if not text:
        log.info("no training config in the checkpoint: mmaction2's R(2+1)D defaults assumed (%s)", pre)
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


def convert(f: Foreign, num_classes: int | None = None) -> Converted:
    if "backbone.conv1.conv.conv_s.weight" not in f.tensors:
        if any(k.startswith("backbone.") for k in f.tensors):
            raise UsageError(f"{f.path}: an mmaction2 model, but not ResNet2Plus1d (no 'backbone.conv1.conv.conv_s.weight')")
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


register_converter(Converter("mmaction2", "mmaction2 ResNet2Plus1d + I3DHead .pth (0.x and 1.x)", ("torch",), _matches, convert))
