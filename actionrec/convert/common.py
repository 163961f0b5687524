"""Helpers shared by the converters: reading video-ResNet layouts, completing BatchNorm buffers."""

from __future__ import annotations

import re
from typing import Any

import torch

from actionrec.convert.registry import Foreign, StateDict
from actionrec.errors import UsageError


def count_blocks(sd: StateDict, layer: int, prefix: str = "") -> int:
    ids = {int(m.group(1)) for k in sd if (m := re.match(rf"{re.escape(prefix)}layer{layer}\.(\d+)\.", k))}
    return len(ids)


def resnet_depth(sd: StateDict, path: str, prefix: str = "") -> int:
    """18 or 34 from the blocks per stage (basic blocks only)."""
    blocks = tuple(count_blocks(sd, i, prefix) for i in range(1, 5))
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
