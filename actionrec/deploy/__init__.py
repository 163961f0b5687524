"""Deployment: ONNX export, ONNX Runtime and fast-CPU predictors, int8, benchmarks.

Public entry points (imported lazily, so ``actionrec --help`` does not import torch):
``resolve_model`` (:mod:`.source`), ``load_backend``/``register_backend``/``BACKENDS`` (:mod:`.backends`),
``Backend`` (:mod:`.predictor`), ``export_onnx`` (:mod:`.onnx_export`),
``optimize_for_cpu`` (:mod:`.optimize`), ``quantize_onnx``/``quantize_torch`` (:mod:`.quantize`),
``run_bench`` (:mod:`.bench`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "resolve_model": "source",
    "ModelSource": "source",
    "load_backend": "backends",
    "register_backend": "backends",
    "BACKENDS": "backends",
    "Backend": "predictor",
    "export_onnx": "onnx_export",
    "ExportReport": "onnx_export",
    "read_onnx_meta": "onnx_export",
    "optimize_for_cpu": "optimize",
    "quantize_onnx": "quantize",
    "quantize_torch": "quantize",
    "run_bench": "bench",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"actionrec.deploy.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module 'actionrec.deploy' has no attribute {name!r}")
