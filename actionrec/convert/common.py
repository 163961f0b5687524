"""Helpers shared by the converters: reading video-ResNet layouts, completing BatchNorm buffers."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import torch

from actionrec.convert.registry import Foreign, StateDict
from actionrec.errors import UsageError

log = logging.getLogger(__name__)
_X3D_SIZE_IN_NAME = re.compile(r"x3d[_-]?(xs|s|m|l)(?![a-z])", re.IGNORECASE)


def count_blocks(sd: StateDict, layer: int) -> int:
    ids = {int(m.group(1)) for k in sd if (m := re.match(rf"layer{layer}\.(\d+)\.", k))}
    return len(ids)


def resnet_depth(sd: StateDict, path: str) -> int:
    """18 or 34 from the blocks per stage (basic blocks only)."""
    blocks = tuple(count_blocks(sd, i) for i in range(1, 5))
    depth = {(2, 2, 2, 2): 18, (3, 4, 6, 3): 34}.get(blocks)
    if depth is None:
        raise UsageError(f"{path}: unsupported video ResNet: blocks per stage {list(blocks)} (expected [2,2,2,2] or [3,4,6,3])")
    return depth


def in_channels_kwargs(c: int) -> dict[str, Any]:
    return {} if c == 3 else {"in_channels": int(c)}


def complete_bn(sd: StateDict) -> StateDict:
    """Add ``num_batches_tracked`` where a checkpoint lacks it (old PyTorch, GluonCV, other frameworks)."""
    out = dict(sd)
    for k in sd:
        if k.endswith(".running_mean"):
            out.setdefault(k.removesuffix(".running_mean") + ".num_batches_tracked", torch.tensor(0, dtype=torch.long))
    return out


def require(foreign: Foreign, key: str, what: str) -> torch.Tensor:
    """``foreign.tensors[key]``, or an error saying the file is not ``what``."""
    t = foreign.tensors.get(key)
    if t is None:
        raise UsageError(f"{foreign.path}: not {what} (no {key!r})")
    return t


def has_keys(foreign: Foreign, *keys: str) -> bool:
    return all(k in foreign.tensors for k in keys)


def x3d_stage_depths(sd: StateDict) -> tuple[int, ...]:
    """Blocks per stage of an X3D state dict in our (PyTorchVideo's) names, ``blocks.<stage 1-4>.res_blocks.<i>.``."""
    found = {(int(m.group(1)), int(m.group(2))) for k in sd if (m := re.match(r"blocks\.([1-4])\.res_blocks\.(\d+)\.", k))}
    return tuple(len({i for s, i in found if s == stage}) for stage in range(1, 5))


def x3d_size(sd: StateDict, path: str, *, hint: str = "") -> str:
    """``"xs"``, ``"s"``, ``"m"`` or ``"l"`` from the depths, then ``hint`` or the file name (XS/S/M are one network)."""
    depths = x3d_stage_depths(sd)
    if depths == (5, 10, 25, 15):
        return "l"
    if depths != (3, 5, 11, 7):
        raise UsageError(f"{path}: an X3D with {list(depths)} blocks per stage (XS/S/M: [3, 5, 11, 7]; L: [5, 10, 25, 15])")
    if hint:
        return hint
    m = _X3D_SIZE_IN_NAME.search(Path(path).name)
    if m and m.group(1).lower() != "l":
        return m.group(1).lower()
    log.warning("%s: X3D-XS, -S and -M share one network and nothing in the file says which: X3D-S assumed (13-frame "
                "clips); put the size in the file name (X3D_M.pyth, x3d_xs_….pth) to choose", path)
    return "s"
