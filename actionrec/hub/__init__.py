"""Known weights by name: the catalogue's files fetched, verified, converted once and cached under ``$ACTIONREC_HOME``.

The catalogue (what exists, where, how it is checked) is data in :mod:`actionrec.models` next to each
architecture (``i3d_weights``, ``video_resnet_weights``); this package gets the files:

* :mod:`~actionrec.hub.store` — the cache layout, checksums, locks, atomic records (no torch, no network);
* :mod:`~actionrec.hub.download` — HTTP with resume, ``ACTIONREC_WEIGHTS_MIRROR``, pip (no torch);
* :mod:`~actionrec.hub.api` — :func:`pretrained_path`, :func:`import_weights`, :func:`verify_cached` (converts);
* :mod:`~actionrec.hub.cli` — ``actionrec weights list|fetch|import|verify|path``.

Names are imported on first use, so that ``actionrec weights list`` does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "pretrained_path": "api", "import_weights": "api", "verify_cached": "api", "resolve_weights": "api",
    "FetchError": "store", "cache_dir": "store", "weights_path": "store", "source_path": "store", "hash_file": "store",
    "cached_state": "store", "MIRROR_ENV": "download",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str) -> Any:
    if name in _HOMES:
        return getattr(importlib.import_module(f"actionrec.hub.{_HOMES[name]}"), name)
    raise AttributeError(f"module 'actionrec.hub' has no attribute {name!r}")
