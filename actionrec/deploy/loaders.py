"""Backend loaders: a resolved MODEL + an applied runtime → a :class:`~actionrec.deploy.predictor.Backend`.

Each is registered by name in :mod:`actionrec.deploy.backends` and called as
``loader(source, *, runtime, optimize, example, calib, auto, build)`` with a
:class:`~actionrec.deploy.source.ModelSource` and an applied :class:`~actionrec.runtime.Runtime`; none sets
threads itself. A new backend: a loader here (or in its own module) and a ``BackendSpec`` there, plus a test.
"""

from __future__ import annotations

import copy
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from actionrec.deploy.predictor import Backend, TorchPredictor, onnx_backend
from actionrec.deploy.source import ModelSource
from actionrec.errors import UsageError
from actionrec.runtime import Runtime

log = logging.getLogger(__name__)


def calib_clips(src: ModelSource, calib: Any, backend: str) -> torch.Tensor:
    """``(N, C, T, H, W)`` calibration clips: a tensor as given, or every window of the given videos."""
    if isinstance(calib, torch.Tensor):
        return calib
    if not calib:
        raise UsageError(f"backend {backend} quantises {src.spec} on real clips: give --calib VIDEO... "
                         f"(or run an int8 file written by `actionrec export --int8`)")
    from actionrec.deploy.clips import collect_clips

    return collect_clips([calib] if isinstance(calib, (str, Path)) else calib, src.meta, max_clips=128)


def _plain_model(src: ModelSource, runtime: Runtime) -> nn.Module:
    """The source's PyTorch model on the runtime's device (a copy off the CPU: the source keeps its CPU model)."""
    model = src.torch_model()
    return copy.deepcopy(model).to(runtime.device) if runtime.is_cuda else model


def _cached_pt2(src: ModelSource) -> Path | None:
    if src.kind != "checkpoint":
        return None
    from actionrec.deploy.pt2 import find_cached_pt2

    return find_cached_pt2(src.path)  # hashes the checkpoint only when a package is there


def load_torch(src: ModelSource, *, runtime: Runtime, optimize: bool | None, example: torch.Tensor | None,
               auto: bool = False, **_: Any) -> Backend:
    """PyTorch: on the CPU the exact fast path (falls back to eager with a warning unless ``optimize``); eager on a GPU.

    With ``--backend auto`` a CPU checkpoint with a cached pt2 package runs through the package.
    """
    if (auto and optimize is None and not runtime.is_cuda and runtime.precision == "fp32"
            and (cached := _cached_pt2(src)) is not None):
        from actionrec.deploy.pt2 import load_pt2

        try:
            pred = load_pt2(cached)
            pred.info["optimize"] = "pt2-cache"
            return pred
        except Exception as e:  # noqa: BLE001 - the default falls back to the always-available torch path
            log.warning("cached pt2 package of %s not usable (%s); using the PyTorch model", src.spec, e)
    model, meta = _plain_model(src, runtime), src.meta
    info: dict[str, Any] = {"optimize": "eager"}
    if optimize is not False and not runtime.is_cuda:
        from actionrec.deploy.optimize import optimize_for_cpu

        try:
            model = optimize_for_cpu(model, example=None if example is None else example[:1], check=True)
            info = {"optimize": "fold_cl", **model.optimize_info}
        except Exception as e:  # noqa: BLE001 - the default falls back to the always-correct eager model
            if optimize is True:
                raise
            log.warning("fast CPU path unavailable for %s (%s); using the eager model", meta.arch, e)
    return TorchPredictor(model, meta, runtime=runtime, info=info)


def load_torch_compile(src: ModelSource, *, runtime: Runtime, example: torch.Tensor | None, **_: Any) -> Backend:
    """The fast path compiled by ``torch.compile`` (freezing); slow to set up, per input shape."""
    from actionrec.deploy.optimize import optimize_for_cpu

    fast = optimize_for_cpu(src.torch_model(), example=None if example is None else example[:1], mode="compile")
    return TorchPredictor(fast, src.meta, runtime=runtime, info=dict(fast.optimize_info))


def load_torch_int8(src: ModelSource, *, runtime: Runtime, calib: Any, **_: Any) -> Backend:
    """PyTorch FX static int8 (x86), calibrated on ``calib``."""
    from actionrec.deploy.quantize import quantize_torch

    q, rep = quantize_torch(src.torch_model(), clips=calib_clips(src, calib, "torch-int8"))
    return TorchPredictor(q, src.meta, runtime=runtime, info={"int8": rep.summary(), "top1_agreement": rep.top1_agreement})


def exported_onnx(src: ModelSource, workdir: Path, example: torch.Tensor | None) -> tuple[Path, dict[str, Any]]:
    """The source as an fp32 ONNX file: the file itself, or the model exported (with the parity check) into ``workdir``."""
    if src.kind == "onnx":
        return src.path, {}
    from actionrec.deploy.onnx_export import export_onnx

    tmp = workdir / f"{src.meta.arch}.onnx"
    report = export_onnx(src.torch_model(), tmp, meta=src.meta, batch=1, example=None if example is None else example[:1])
    return tmp, {"file": None, "exported_max_abs_diff": report.max_abs_diff}


def load_onnxruntime(src: ModelSource, *, runtime: Runtime, optimize: bool | None, example: torch.Tensor | None,
                     **_: Any) -> Backend:
    """ONNX Runtime on an ``.onnx`` file, or on the model exported to a temporary one."""
    if runtime.is_cuda:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UsageError(f"onnxruntime has no CUDA provider here (available: {', '.join(ort.get_available_providers())})")
    with tempfile.TemporaryDirectory(prefix="actionrec-ort-") as d:
        path, info = exported_onnx(src, Path(d), example)
        return onnx_backend(path, src.meta, runtime=runtime, optimize=optimize, info=info)


def _is_quantized_onnx(path: Path) -> bool:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return any(n.op_type in ("QuantizeLinear", "QLinearConv", "ConvInteger") for n in graph.node)


def load_onnxruntime_int8(src: ModelSource, *, runtime: Runtime, example: torch.Tensor | None, calib: Any,
                          **_: Any) -> Backend:
    """An int8 ``.onnx`` file as it is; an fp32 file or a model quantised (static QDQ) on ``calib`` first."""
    if src.kind == "onnx" and calib is None:
        if not _is_quantized_onnx(src.path):
            raise UsageError(f"{src.spec} is an fp32 ONNX file: give --calib VIDEO... to quantise it, or use --backend onnxruntime")
        return onnx_backend(src.path, src.meta, runtime=runtime, optimize=True)
    from actionrec.deploy.quantize import quantize_onnx

    clips = calib_clips(src, calib, "onnxruntime-int8")
    with tempfile.TemporaryDirectory(prefix="actionrec-ort-") as d:
        fp32, _ = exported_onnx(src, Path(d), example)
        out = Path(d) / "model.int8.onnx"
        rep = quantize_onnx(fp32, out, clips=clips, num_threads=runtime.threads)
        return onnx_backend(out, src.meta, runtime=runtime, optimize=True,
                             info={"int8": rep.summary(), "top1_agreement": rep.top1_agreement})


class _TempFiles:
    """Keeps a temporary folder (a compiled package) alive as long as the backend that uses it."""

    def __init__(self, backend: Backend, tmp: tempfile.TemporaryDirectory) -> None:
        self.backend, self._tmp = backend, tmp

    def __getattr__(self, name: str) -> Any:
        return getattr(self.backend, name)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return self.backend(x)

    def __repr__(self) -> str:
        return repr(self.backend)


def load_pt2_backend(src: ModelSource, *, runtime: Runtime, example: torch.Tensor | None, build: bool = False,
                     **_: Any) -> Backend:
    """A ``.pt2`` package; a checkpoint's cached package; with ``build``, the model compiled now (a minute or more)."""
    from actionrec.deploy.pt2 import export_pt2, load_pt2

    if src.kind == "pt2":
        return load_pt2(src.path)
    cached = _cached_pt2(src)
    if cached is not None:
        return load_pt2(cached)
    if not build:
        raise UsageError(f"{src.spec}: no pt2 package cached for this checkpoint, torch and CPU "
                         f"(make it once with `actionrec export {src.spec} --format pt2 --cache`)")
    log.info("%s: compiling a pt2 package (a minute or more)", src.spec)
    tmp = tempfile.TemporaryDirectory(prefix="actionrec-pt2-")
    out = Path(tmp.name) / "model.pt2"
    rep = export_pt2(src.torch_model(), out, meta=src.meta, example=None if example is None else example[:2])
    pred = load_pt2(out)
    pred.info.update(export_s=rep.export_s, compile_s=rep.compile_s, max_abs_diff=rep.max_abs_diff)
    return _TempFiles(pred, tmp)


def load_pt2_int8(src: ModelSource, *, runtime: Runtime, calib: Any, **_: Any) -> Backend:
    """An int8 ``.pt2`` package; or the model quantised by PT2E on ``calib`` and compiled now."""
    from actionrec.deploy.pt2 import load_pt2

    if src.kind == "pt2":
        pred = load_pt2(src.path)
        if pred.info.get("precision") != "int8":
            raise UsageError(f"{src.spec} is an fp32 package; run it with --backend pt2, or export an int8 one "
                             f"(`actionrec export CKPT --format pt2 --int8 --calib VIDEO...`)")
        return pred
    from actionrec.deploy.quantize import quantize_pt2e

    clips = calib_clips(src, calib, "pt2-int8")
    tmp = tempfile.TemporaryDirectory(prefix="actionrec-pt2-")
    out = Path(tmp.name) / "model.int8.pt2"
    rep = quantize_pt2e(src.torch_model(), out, clips=clips)
    pred = load_pt2(out)
    pred.info.update(int8=rep.summary(), top1_agreement=rep.top1_agreement)
    return _TempFiles(pred, tmp)


def load_tensorrt(src: ModelSource, *, runtime: Runtime, example: torch.Tensor | None, **_: Any) -> Backend:
    """ONNX Runtime's TensorRT execution provider (CUDA, then CPU for what it does not take)."""
    with tempfile.TemporaryDirectory(prefix="actionrec-trt-") as d:
        path, info = exported_onnx(src, Path(d), example)
        return onnx_backend(path, src.meta, runtime=runtime, optimize=True, info=info,
                             providers=["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
