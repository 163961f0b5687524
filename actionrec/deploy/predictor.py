"""Inference backends: whatever the model file and the engine behind it, one tensor → logits callable.

``load_predictor(source, backend=...)`` accepts one of our ``.safetensors`` checkpoints, an ``.onnx``
file or a ``.pt2`` package exported by ``actionrec export``, or a model with ``.meta``, and returns a :class:`Backend`
mapping an (N, C, T, H, W) float32 tensor to (N, num_classes) float32 logits on the CPU.
Pre- and post-processing are the caller's (:class:`actionrec.Predictor`) and identical for every
backend, so an accuracy comparison between backends is "evaluate the same split twice".

Backends are a registry ``name → loader`` (:data:`BACKENDS`); :func:`register_backend` adds one.
A loader is called as ``loader(source, *, optimize, device, num_threads, example)``.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from actionrec.errors import UsageError
from actionrec.meta import ModelMeta

__all__ = ["Backend", "TorchPredictor", "OnnxPredictor", "load_predictor", "register_backend", "BACKENDS", "is_onnx"]

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

    def __init__(self, model: nn.Module, meta: ModelMeta, *, device: str = "cpu", info: dict[str, Any] | None = None) -> None:
        self.model = model.eval()
        self.meta = meta
        self.device = device
        self.info = dict(info or {})

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        with torch.inference_mode():
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


def _set_threads(num_threads: int | None) -> None:
    if num_threads:
        torch.set_num_threads(int(num_threads))


def _ort_providers(device: str) -> list[str]:
    import onnxruntime as ort

    avail = ort.get_available_providers()
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in avail:
            raise RuntimeError(f"onnxruntime has no CUDA provider here (available: {', '.join(avail)})")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def _onnx_predictor(path: Path, *, meta: ModelMeta | None, optimize: bool | None, device: str, num_threads: int | None) -> OnnxPredictor:
    from actionrec.deploy.onnx_export import ort_session, read_onnx_meta

    meta = meta or read_onnx_meta(path)
    sess = ort_session(path, num_threads=num_threads or torch.get_num_threads(), optimize=optimize is not False,
                       providers=_ort_providers(device))
    info = {"file": str(path), "providers": sess.get_providers(), "graph_optimization": "all" if optimize is not False else "basic"}
    return OnnxPredictor(sess, meta, device=device, info=info)


def _torch_model(source: str | Path | nn.Module) -> tuple[nn.Module, ModelMeta]:
    if isinstance(source, nn.Module):
        meta = getattr(source, "meta", None)
        if meta is None:
            raise UsageError(f"load_predictor: the {type(source).__name__} model has no .meta (ModelMeta)")
        return source.eval(), meta
    from actionrec.factory import load_model

    model = load_model(source)
    return model, model.meta


def _not_pt2(source: object, backend: str) -> None:
    if _suffix(source) == ".pt2":
        raise UsageError(f"{source}: a .pt2 package runs with --backend pt2 (or auto), not {backend}")


def _load_onnxruntime(source: str | Path | nn.Module, *, optimize: bool | None, device: str, num_threads: int | None,
                      example: torch.Tensor | None) -> OnnxPredictor:
    if is_onnx(source):
        return _onnx_predictor(Path(source), meta=None, optimize=optimize, device=device, num_threads=num_threads)
    _not_pt2(source, "onnxruntime")
    model, meta = _torch_model(source)
    from actionrec.deploy.onnx_export import export_onnx

    with tempfile.TemporaryDirectory(prefix="actionrec-ort-") as d:
        tmp = Path(d) / f"{meta.arch}.onnx"
        report = export_onnx(model, tmp, meta=meta, batch=1, example=example)
        pred = _onnx_predictor(tmp, meta=meta, optimize=optimize, device=device, num_threads=num_threads)
    pred.info.update(file=None, exported_max_abs_diff=report.max_abs_diff)
    return pred


def _load_torch(source: str | Path | nn.Module, *, optimize: bool | None, device: str, num_threads: int | None,
                example: torch.Tensor | None) -> TorchPredictor:
    if is_onnx(source):
        raise UsageError(f"{source}: an ONNX file runs with --backend onnxruntime, not torch")
    _not_pt2(source, "torch")
    model, meta = _torch_model(source)
    model = model.to(device)
    info: dict[str, Any] = {"optimize": "eager"}
    on_cpu = device == "cpu"
    if optimize is not False and on_cpu:
        from actionrec.deploy.optimize import optimize_for_cpu

        try:
            model = optimize_for_cpu(model, example=example, check=True)
            info = {"optimize": "fold_cl", **model.optimize_info}
        except Exception as e:  # noqa: BLE001 - the default falls back to the always-correct eager model
            if optimize is True:
                raise
            log.warning("fast CPU path unavailable for %s (%s); using the eager model", meta.arch, e)
    elif optimize and not on_cpu:
        log.info("optimize applies to the CPU path only; running eager on %s", device)
    return TorchPredictor(model, meta, device=device, info=info)


def _load_pt2(source: str | Path | nn.Module, *, optimize: bool | None, device: str, num_threads: int | None,
              example: torch.Tensor | None) -> Backend:
    """A ``.pt2`` package, or the checkpoint's cached one (``actionrec export CKPT --format pt2 --cache``)."""
    from actionrec.deploy.pt2 import find_cached_pt2, load_pt2

    if device != "cpu":
        raise UsageError(f"pt2 packages run on the CPU, not {device}")
    if not isinstance(source, (str, os.PathLike)):
        raise UsageError("backend pt2 needs a .pt2 package or a checkpoint with a cached package, not a module")
    path = Path(source) if _suffix(source) == ".pt2" else find_cached_pt2(source)
    if path is None:
        raise UsageError(f"{source}: no pt2 package cached for this checkpoint, torch and CPU "
                         f"(make it with `actionrec export {source} --format pt2 --cache`)")
    return load_pt2(path, num_threads=num_threads)


def _load_auto(source: str | Path | nn.Module, *, optimize: bool | None, device: str, num_threads: int | None,
               example: torch.Tensor | None) -> Backend:
    """By file type; a CPU checkpoint with a cached pt2 package runs through it (unless ``optimize`` is set)."""
    kind = {".onnx": "onnxruntime", ".pt2": "pt2"}.get(_suffix(source), "torch")
    if kind == "torch" and optimize is None and device == "cpu" and _suffix(source) == ".safetensors":
        from actionrec.deploy.pt2 import find_cached_pt2, load_pt2

        cached = find_cached_pt2(source)  # hashes the checkpoint only when a package is there
        if cached is not None:
            try:
                pred = load_pt2(cached, num_threads=num_threads)
                pred.info["optimize"] = "pt2-cache"
                return pred
            except Exception as e:  # noqa: BLE001 - the default falls back to the always-available torch path
                log.warning("cached pt2 package of %s not usable (%s); using the PyTorch model", source, e)
    return BACKENDS[kind](source, optimize=optimize, device=device, num_threads=num_threads, example=example)


BackendLoader = Callable[..., Backend]
BACKENDS: dict[str, BackendLoader] = {"torch": _load_torch, "onnxruntime": _load_onnxruntime, "pt2": _load_pt2}


def register_backend(name: str, loader: BackendLoader) -> None:
    """Add a backend: ``loader(source, *, optimize, device, num_threads, example) -> Backend``."""
    BACKENDS[name] = loader


def _suffix(source: object) -> str:
    return Path(source).suffix.lower() if isinstance(source, (str, os.PathLike)) else ""


def is_onnx(source: object) -> bool:
    return _suffix(source) == ".onnx"


def load_predictor(
    source: str | Path | nn.Module,
    *,
    backend: str = "auto",
    optimize: bool | None = None,
    device: str = "cpu",
    num_threads: int | None = None,
    example: torch.Tensor | None = None,
) -> Backend:
    """Build a :class:`Backend`.

    Args:
        source: one of our ``.safetensors`` checkpoints, an ``.onnx`` file exported by us (its
            metadata gives ``meta``), or a model with ``.meta``.
        backend: ``"auto"`` (``.onnx`` → onnxruntime, ``.pt2`` → pt2, else torch) or a name of
            :data:`BACKENDS` (``"torch"``; ``"onnxruntime"``: a checkpoint or model is exported to a
            temporary ONNX file first, with the parity check; ``"pt2"``: a package or a checkpoint's cached one).
        optimize: ``None`` = default: on CPU a checkpoint's cached pt2 package if there is one
            (``actionrec export CKPT --format pt2 --cache``), else the exact fast path (Conv+BN folding + channels-last-3d,
            checked against eager; falls back to eager with a warning if it fails or is not exact);
            ``True`` = the fast path, errors are raised; ``False`` = plain eager (ORT: basic graph
            optimisations only).
        device: ``"cpu"`` or ``"cuda[:i]"``.
        num_threads: intra-op threads (torch: ``torch.set_num_threads``, process-wide; ORT: per session).
        example: input for the fast path's exactness check (default: ``meta.input_shape(1)``).
    """
    if backend != "auto" and backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of auto, {', '.join(BACKENDS)}")
    if isinstance(source, (str, os.PathLike)) and not Path(source).is_file():
        raise FileNotFoundError(f"{source}: no such model file")
    _set_threads(num_threads)
    loader = _load_auto if backend == "auto" else BACKENDS[backend]
    return loader(source, optimize=optimize, device=device, num_threads=num_threads, example=example)
