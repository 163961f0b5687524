"""actionrec: video action recognition with 3D CNNs, from raw videos to a deployed model.

The public names are imported on first use (PEP 562), so ``import actionrec`` and ``actionrec --help``
do not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "Predictor": "actionrec.inference.predictor",
    "Prediction": "actionrec.inference.predictor",
    "ClipPipeline": "actionrec.data.pipeline",
    "VideoClips": "actionrec.data.pipeline",
    "SegmentParams": "actionrec.inference.segments",
    "SegmentResult": "actionrec.inference.segments",
    "create_model": "actionrec.factory",
    "load_model": "actionrec.factory",
    "save_model": "actionrec.checkpoint",
    "list_models": "actionrec.models",
    "list_pretrained": "actionrec.models",
    "ModelMeta": "actionrec.meta",
    "Preprocess": "actionrec.meta",
    "Runtime": "actionrec.runtime",
    "resolve_runtime": "actionrec.runtime",
    "resolve_model": "actionrec.deploy.source",
}

__all__ = [*_EXPORTS, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'actionrec' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
