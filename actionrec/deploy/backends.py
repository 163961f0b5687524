"""The backend registry: one vocabulary for ``predict``, ``eval``, ``stream``, ``serve`` and ``bench``.

A backend turns a resolved MODEL (:class:`~actionrec.deploy.source.ModelSource`) into a
:class:`~actionrec.deploy.predictor.Backend`: a callable ``(N, C, T, H, W) float32 → (N, K) float32``.
``bench`` measures every backend of this registry that can run the source here; the CLI lists the
same names in ``--help``. Adding one: write its loader (``loader(source, *, runtime, optimize, example,
calib) -> Backend``) and register a :class:`BackendSpec` below, plus a test.

This module does not import torch (the CLI reads the names); loaders are imported when used.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from actionrec.errors import UsageError
from actionrec.registry import Registry, lazy

__all__ = ["BackendSpec", "BACKENDS", "register_backend", "load_backend", "describe_backends", "auto_backend"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BackendSpec:
    """What a backend is and what it can run.

    ``sources``: the :class:`ModelSource` kinds it takes ("model" = anything with a PyTorch model:
    checkpoint, weights, arch, module). ``devices``: "cpu" and/or "cuda". ``needs_calib``: int8 made
    from a float model needs real clips (or, for speed only, random ones). ``available``: whether the
    libraries it needs are here (None: always).
    """

    name: str
    summary: str
    load: Callable[..., Any]
    sources: tuple[str, ...] = ("model",)
    devices: tuple[str, ...] = ("cpu",)
    needs_calib: bool = False
    slow_setup: bool = False  # compiles for a minute or more: opt-in in bench
    precisions: tuple[str, ...] = ("fp32",)  # the runtime precisions it honours (autocast)
    available: Callable[[], bool] | None = None
    install: str = ""  # how to get what it needs, for the "not available" message

    def takes(self, kind: str) -> bool:
        return kind in self.sources or (kind not in ("onnx", "pt2") and "model" in self.sources)

    def is_available(self) -> bool:
        return self.available is None or bool(self.available())


BACKENDS: Registry[BackendSpec] = Registry("backend", hint="`actionrec bench --help` describes each")


def register_backend(spec: BackendSpec) -> BackendSpec:
    """Add a backend (its name must be new)."""
    return BACKENDS.register(spec.name, spec)


def _ort_provider(name: str) -> Callable[[], bool]:
    def check() -> bool:
        import onnxruntime as ort

        return name in ort.get_available_providers()

    return check


_P = "actionrec.deploy.loaders:"
_OV = "actionrec.deploy.openvino:"
for _spec in (
    BackendSpec("torch", "PyTorch; on the CPU the exact fast path (BN folded, channels-last; --no-optimize: the plain model)",
                lazy(_P + "load_torch"), devices=("cpu", "cuda"), precisions=("fp32", "fp16", "bf16")),
    BackendSpec("torch-compile", "PyTorch fast path + torch.compile with freezing", lazy(_P + "load_torch_compile"),
                slow_setup=True),
    BackendSpec("torch-int8", "PyTorch FX static int8 (x86)", lazy(_P + "load_torch_int8"), needs_calib=True),
    BackendSpec("onnxruntime", "ONNX Runtime on an .onnx file (a model is exported first)", lazy(_P + "load_onnxruntime"),
                sources=("model", "onnx"), devices=("cpu", "cuda")),
    BackendSpec("onnxruntime-int8", "ONNX Runtime static QDQ int8 (an .int8.onnx file, or quantised from the model)",
                lazy(_P + "load_onnxruntime_int8"), sources=("model", "onnx"), needs_calib=True),
    BackendSpec("pt2", "AOTInductor package (.pt2; a checkpoint's cached package, or compiled from the model)",
                lazy(_P + "load_pt2_backend"), sources=("model", "pt2"), slow_setup=True),
    BackendSpec("pt2-int8", "AOTInductor package of the PT2E int8 model (.int8.pt2, or quantised and compiled)",
                lazy(_P + "load_pt2_int8"), sources=("model", "pt2"), needs_calib=True, slow_setup=True),
    BackendSpec("tensorrt", "ONNX Runtime with TensorRT (NVIDIA GPUs)", lazy(_P + "load_tensorrt"),
                sources=("model", "onnx"), devices=("cuda",), available=_ort_provider("TensorrtExecutionProvider")),
    BackendSpec("openvino", "OpenVINO CPU plugin on the ONNX export, f32 (pip install 'actionrec[openvino]')",
                lazy(_OV + "load_openvino"), sources=("model", "onnx"), available=lazy(_OV + "openvino_available"),
                install="pip install 'actionrec[openvino]'"),
    BackendSpec("openvino-int8", "OpenVINO int8: NNCF post-training quantisation on real clips",
                lazy(_OV + "load_openvino_int8"), sources=("model", "onnx"), needs_calib=True,
                available=lazy(_OV + "nncf_available"), install="pip install 'actionrec[openvino]'"),
):
    register_backend(_spec)


def describe_backends() -> str:
    """``name (summary)`` of every backend, for ``--help``."""
    return "; ".join(f"{s.name} ({s.summary})" for s in BACKENDS.values())


def auto_backend(kind: str) -> str:
    """``--backend auto``: by file type (a checkpoint's cached pt2 package is the torch loader's choice)."""
    return {"onnx": "onnxruntime", "pt2": "pt2"}.get(kind, "torch")


def load_backend(source: Any, *, backend: str = "auto", runtime: Any = None, optimize: bool | None = None,
                 example: Any = None, calib: Any = None, build: bool = False) -> Any:
    """A ready :class:`~actionrec.deploy.predictor.Backend` for ``source`` (any MODEL, resolved here).

    Args:
        source: a MODEL (path, name, module) or a :class:`ModelSource`.
        backend: ``"auto"`` or a name of :data:`BACKENDS`.
        runtime: a :class:`~actionrec.runtime.Runtime` (default: the CPU, all available cores); applied here.
        optimize: ``None`` default, ``False`` the plain model / basic graph optimisation, ``True`` fail if the
            fast path fails.
        example: ``(N, C, T, H, W)`` input for exactness checks and tracing (default: ``meta.input_shape``).
        calib: int8 from a float model: a ``(N, C, T, H, W)`` tensor of clips or a list of videos/folders.
        build: compile what is missing now (``pt2`` from a checkpoint without a cached package: a minute or
            more; ``bench`` does), instead of refusing with the command that makes it once.
    """
    from actionrec.deploy.source import resolve_model
    from actionrec.runtime import resolve_runtime

    src = resolve_model(source)
    runtime = (runtime or resolve_runtime()).apply()
    name = auto_backend(src.kind) if backend == "auto" else backend
    spec = BACKENDS.get(name)
    if not spec.takes(src.kind):
        runs = auto_backend(src.kind)
        article = "an" if src.kind[0] in "aeiou" else "a"
        raise UsageError(f"{src.spec}: {article} {src.kind} file runs with --backend {runs}, not {name} (or give the checkpoint)")
    device_kind = "cuda" if runtime.is_cuda else "cpu"
    if device_kind not in spec.devices:
        raise UsageError(f"backend {name} runs on {' or '.join(spec.devices)}, not {runtime.device}")
    if runtime.precision not in spec.precisions:
        raise UsageError(f"backend {name} runs in {'/'.join(spec.precisions)}, not {runtime.precision} (autocast is the torch backend's)")
    if not spec.is_available():
        how = f": {spec.install}" if spec.install else ""
        raise UsageError(f"backend {name} is not available here (its library or execution provider is missing){how}")
    return spec.load(src, runtime=runtime, optimize=optimize, example=example, calib=calib,
                     auto=backend == "auto", build=build)
