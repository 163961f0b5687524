"""Backend objects and their loaders: whatever the model file and the engine behind it, one tensor → logits.

A :class:`Backend` maps an ``(N, C, T, H, W)`` float32 tensor to ``(N, num_classes)`` float32 logits on
the CPU. Pre- and post-processing are the caller's (:class:`actionrec.Predictor`) and identical for
every backend, so comparing backends is "evaluate the same split twice".

The loaders that build them from a MODEL live in :mod:`actionrec.deploy.loaders`, registered by name in
:mod:`actionrec.deploy.backends` (the one vocabulary).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from actionrec.errors import UsageError
from actionrec.meta import ModelMeta
from actionrec.runtime import Runtime

__all__ = ["Backend", "TorchPredictor", "OnnxPredictor", "onnx_backend"]

log = logging.getLogger(__name__)


class Backend:
    """Callable ``(N, C, T, H, W) float32 → (N, num_classes) float32`` logits (CPU tensor)."""

    meta: ModelMeta
    backend: str  # registry name: "torch", "onnxruntime", ...
    device: str = "cpu"
    info: dict[str, Any]  # how it was set up (optimisation, providers, ...), for logs and benchmarks
    fixed_clip_len: int | None = None  # the clip length a file was exported with, if it cannot take others

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _check_input(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or x.dim() != 5:
            raise UsageError(f"{self.backend} predictor: expected an (N, C, T, H, W) tensor, got {getattr(x, 'shape', type(x))}")
        if x.shape[1] != self.meta.in_channels:
            raise UsageError(
                f"{self.backend} predictor: {self.meta.arch} ({self.meta.modality}) takes {self.meta.in_channels} channels, "
                f"got input of shape {tuple(x.shape)}"
            )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(arch={self.meta.arch!r}, backend={self.backend!r}, device={self.device!r}, info={self.info})"


class TorchPredictor(Backend):
    """A PyTorch module (eager or optimised) in eval mode, run under ``inference_mode``."""

    backend = "torch"

    def __init__(self, model: nn.Module, meta: ModelMeta, *, runtime: Runtime | None = None,
                 info: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.meta = meta
        self.runtime = runtime or Runtime()
        self.device = self.runtime.device
        self.info = dict(info or {})

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        with torch.inference_mode(), self.runtime.autocast():
            out = self.model(x.to(self.device, torch.float32))
        return out.float().cpu()


class OnnxPredictor(Backend):
    """An ONNX Runtime session on one of our exported files."""

    backend = "onnxruntime"

    def __init__(self, session: Any, meta: ModelMeta, *, device: str = "cpu", info: dict[str, Any] | None = None) -> None:
        self.session = session
        self.meta = meta
        self.device = device
        self.info = dict(info or {})
        inp = session.get_inputs()[0]
        self._input = inp.name
        self._output = session.get_outputs()[0].name
        shape = list(inp.shape)
        self.fixed_clip_len = shape[2] if len(shape) == 5 and isinstance(shape[2], int) else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        try:
            out = self.session.run([self._output], {self._input: arr})[0]
        except Exception as e:
            raise RuntimeError(f"onnxruntime failed on input {tuple(x.shape)} ({self.meta.arch}): {e}") from e
        return torch.from_numpy(np.asarray(out, dtype=np.float32))


def onnx_backend(path: str | Path, meta: ModelMeta | None = None, *, runtime: Runtime | None = None, optimize: bool | None = None,
                 providers: list[str] | None = None, info: dict[str, Any] | None = None) -> OnnxPredictor:
    """An ONNX Runtime session on ``path`` with the runtime's threads (``meta``: default, the file's own)."""
    from actionrec.deploy.onnx_export import ort_session, read_onnx_meta

    path, runtime = Path(path), runtime or Runtime()
    meta = meta or read_onnx_meta(path)

    if providers is None:
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if runtime.is_cuda else ["CPUExecutionProvider"]
    sess = ort_session(path, num_threads=runtime.threads, optimize=optimize is not False, providers=providers)
    info = {"file": str(path), "providers": sess.get_providers(),
            "graph_optimization": "all" if optimize is not False else "basic", **(info or {})}
    pred = OnnxPredictor(sess, meta, device=runtime.device, info=info)
    return pred
