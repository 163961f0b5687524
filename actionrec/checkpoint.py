"""Our checkpoint format: safetensors tensors plus JSON metadata, written atomically.

This is the bottom layer of the model code: it reads and writes tensors and
:class:`~actionrec.meta.ModelMeta` and knows no architecture (building a model from a file is
:func:`actionrec.factory.load_model`).

Two kinds of files, both plain safetensors (no pickle anywhere):

* **model checkpoints** (:func:`save_model` / :func:`load_model`): the model's state dict and
  its :class:`~actionrec.meta.ModelMeta` under the metadata key ``"actionrec"``;
* **training states** (:func:`save_state` / :func:`load_state`): any nest of dicts, lists,
  tensors and JSON scalars (model, optimiser, scheduler, RNG, epoch). Tensors are stored
  flat under their path; the structure is stored as JSON.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from actionrec.errors import ActionrecError
from actionrec.io import atomic_path
from actionrec.meta import ModelMeta, meta_from_json

META_KEY = "actionrec"
STATE_KEY = "actionrec_state"


class CheckpointError(ActionrecError, ValueError):
    """A checkpoint that cannot be read or does not fit the model."""


def _contiguous(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses shared or non-contiguous storage; clone to own the memory.
    return {k: v.detach().to("cpu").contiguous().clone() for k, v in sd.items()}


def save_model(model: torch.nn.Module, path: str | os.PathLike, meta: ModelMeta | None = None) -> Path:
    """Write ``model``'s weights and metadata to ``path`` (a ``.safetensors`` file), atomically."""
    meta = meta or getattr(model, "meta", None)
    if meta is None:
        raise CheckpointError("save_model needs a ModelMeta (pass meta= or set model.meta)")
    path = Path(path)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(_contiguous(model.state_dict()), str(tmp), metadata={META_KEY: meta.to_json()})
    return path


def _header(path: Path) -> tuple[dict[str, str], dict[str, tuple[int, ...]]]:
    """Metadata and tensor shapes of a safetensors file, read from its header only (no tensor data)."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {}), {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for bad headers
        raise CheckpointError(f"{path}: not a safetensors file ({e})") from e


def read_meta(path: str | os.PathLike) -> ModelMeta:
    """Read only the metadata of one of our model checkpoints (malformed metadata → :class:`CheckpointError`)."""
    path = Path(path)
    md, _ = _header(path)
    if META_KEY not in md:
        raise CheckpointError(
            f"{path}: safetensors file without actionrec metadata; convert foreign weights with `actionrec convert`"
        )
    return meta_from_json(md[META_KEY], source=str(path), error=CheckpointError)


def read_shapes(path: str | os.PathLike) -> dict[str, tuple[int, ...]]:
    """Names and shapes of a checkpoint's model tensors, from the header (nothing is allocated)."""
    _, shapes = _header(Path(path))
    return {k: v for k, v in shapes.items() if not k.startswith("@")}


def read_tensors(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    except FileNotFoundError as e:
        raise CheckpointError(f"{path}: no such file") from e
    except Exception as e:
        raise CheckpointError(f"{path}: cannot read safetensors ({e})") from e


def read_weights(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The model tensors of a checkpoint: a training state's ``@``-prefixed entries are left out."""
    return {k: v for k, v in read_tensors(path).items() if not k.startswith("@")}


def check_shapes(
    expected: dict[str, tuple[int, ...]], found: dict[str, tuple[int, ...]], *, source: str = "", target: str = "the model"
) -> None:
    """Raise :class:`CheckpointError` listing missing/unexpected keys and shape mismatches, if any."""
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(found[k])} vs model {tuple(expected[k])}"
        for k in expected
        if k in found and tuple(expected[k]) != tuple(found[k])
    ]
    if missing or unexpected or mismatched:
        parts = [f"checkpoint {source} does not fit {target}".replace("  ", " ")]
        for title, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", mismatched)):
            if items:
                shown = ", ".join(items[:10]) + (f", … ({len(items)} in all)" if len(items) > 10 else "")
                parts.append(f"{title}: {shown}")
        raise CheckpointError("; ".join(parts))


def load_state_dict_checked(model: torch.nn.Module, state_dict: dict[str, torch.Tensor], *, source: str = "") -> None:
    """``load_state_dict(strict=True)`` with an error that lists missing/unexpected keys and shape mismatches."""
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    check_shapes(expected, {k: tuple(v.shape) for k, v in state_dict.items()}, source=source, target=type(model).__name__)
    model.load_state_dict(state_dict, strict=True)


# ---------------------------------------------------------------- training states


def _flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, torch.Tensor):
        key = prefix or "_"
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, dict):
        if not all(isinstance(k, (str, int)) for k in obj):
            raise TypeError(f"state keys must be str or int at {prefix!r}")
        return {
            "__dict__": [[k, _flatten(v, f"{prefix}/{k}", tensors)] for k, v in obj.items()],
        }
    if isinstance(obj, (list, tuple)):
        items = [_flatten(v, f"{prefix}/{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} at {prefix!r} in a training state")


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            return tensors[obj["__tensor__"]]
        if "__dict__" in obj:
            return {k: _unflatten(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(_unflatten(v, tensors) for v in obj["__tuple__"])
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_state(state: dict[str, Any], path: str | os.PathLike, meta: ModelMeta | None = None) -> Path:
    """Save a nested training state (tensors + JSON-able values) as one safetensors file, atomically.

    If ``meta`` is given and ``state["model"]`` is a state dict, the file also loads with
    :func:`load_model` (model tensors are stored under their plain names).
    """
    tensors: dict[str, torch.Tensor] = {}
    rest = dict(state)
    model_sd = rest.pop("model", None)
    if model_sd is not None:
        tensors.update(model_sd)
    skeleton = _flatten(rest, "@", tensors)
    metadata = {STATE_KEY: json.dumps({"skeleton": skeleton, "has_model": model_sd is not None})}
    if meta is not None:
        metadata[META_KEY] = meta.to_json()
    path = Path(path)
    with atomic_path(path, suffix=".safetensors") as tmp:
        save_file(_contiguous(tensors), str(tmp), metadata=metadata)
    return path


def load_state(path: str | os.PathLike) -> dict[str, Any]:
    """Inverse of :func:`save_state`."""
    path = Path(path)
    md, _ = _header(path)
    if STATE_KEY not in md:
        raise CheckpointError(f"{path}: not an actionrec training state")
    tensors = read_tensors(path)
    try:
        info = json.loads(md[STATE_KEY])
        state = _unflatten(info["skeleton"], tensors)
        has_model = bool(info["has_model"])
    except (ValueError, TypeError, KeyError) as e:
        raise CheckpointError(f"{path}: malformed training state ({type(e).__name__}: {e})") from e
    if has_model:
        state["model"] = {k: v for k, v in tensors.items() if not k.startswith("@")}
    return state
