"""OpenVINO backends: our ONNX export run by OpenVINO's CPU plugin, in fp32 or NNCF post-training int8.

``--backend openvino`` reads an ``.onnx`` file written by ``actionrec export`` (or exports the model to a
temporary one, with the usual parity check) and compiles it for the CPU with the runtime's threads and
**f32 inference precision** (OpenVINO's CPU plugin otherwise runs bf16 on CPUs that have it, which would
make "fp32" results depend on the host). ``--backend openvino-int8`` quantises that model with NNCF on real
calibration clips (the stem convolution kept in fp32, as for ONNX Runtime's int8: see
:func:`actionrec.deploy.quantize.quantize_onnx`) and reports top-1 agreement with the fp32 model.

Optional: ``pip install actionrec[openvino]``. OpenVINO and NNCF are imported only here.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actionrec.deploy.predictor import Backend
from actionrec.deploy.source import ModelSource
from actionrec.errors import UsageError
from actionrec.meta import ModelMeta
from actionrec.runtime import Runtime

__all__ = ["OpenVinoPredictor", "load_openvino", "load_openvino_int8", "openvino_available", "nncf_available"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'actionrec[openvino]'"


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def nncf_available() -> bool:
    return openvino_available() and importlib.util.find_spec("nncf") is not None


class OpenVinoPredictor(Backend):
    """An OpenVINO compiled model (CPU plugin); ``(N, C, T, H, W)`` float32 → ``(N, K)`` float32 logits."""

    def __init__(self, compiled: Any, meta: ModelMeta, *, backend: str, info: dict[str, Any]) -> None:
        self.compiled, self.meta, self.backend, self.info = compiled, meta, backend, dict(info)
        self.device = "cpu"
        self._request = compiled.create_infer_request()
        shape = compiled.inputs[0].get_partial_shape()
        self.fixed_clip_len = shape[2].get_length() if len(shape) == 5 and shape[2].is_static else None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        try:
            out = self._request.infer({0: arr})
        except Exception as e:
            raise RuntimeError(f"OpenVINO failed on input {tuple(x.shape)} ({self.meta.arch}): {e}") from e
        return torch.from_numpy(np.array(out[self.compiled.outputs[0]], dtype=np.float32))


@functools.cache
def _core() -> Any:
    """The process's one ``openvino.Core``, kept for the life of the process.

    Each ``Core`` loads its own CPU plugin, and that plugin installs an alternate signal stack for the calling
    thread when it is created and puts the previous one back when it is destroyed. Cores destroyed out of
    creation order (two predictors freed first-in first-out) leave the thread pointing at a freed stack, and
    the next signal handled there (a ``SIGCHLD`` from a finished subprocess, with PyTorch's DataLoader
    handler installed) kills the process with SIGSEGV. One Core that never dies cannot be unwound out of
    order (tests/deploy/test_openvino.py reproduces the crash in a subprocess).
    """
    import openvino as ov

    return ov.Core()


def _compile(model: Any, runtime: Runtime) -> Any:
    import openvino as ov
    import openvino.properties as props
    import openvino.properties.hint as hints

    config = {props.inference_num_threads: runtime.threads, hints.inference_precision: ov.Type.f32,
              hints.performance_mode: hints.PerformanceMode.LATENCY}
    return _core().compile_model(model, "CPU", config)


def _require(ok: bool, backend: str) -> None:
    if not ok:
        raise UsageError(f"backend {backend} needs OpenVINO{' and NNCF' if backend.endswith('int8') else ''}: {INSTALL_HINT}")


def _read_model(src: ModelSource, workdir: Path, example: torch.Tensor | None) -> tuple[Any, dict[str, Any]]:
    """The source as an OpenVINO model, read from our ONNX file (exported first for a PyTorch model)."""
    from actionrec.deploy.loaders import exported_onnx

    path, info = exported_onnx(src, workdir, example)
    return _core().read_model(str(path)), {**info, "file": str(src.path) if src.kind == "onnx" else None}


def load_openvino(src: ModelSource, *, runtime: Runtime, example: torch.Tensor | None, **_: Any) -> Backend:
    """OpenVINO fp32 on the CPU (f32 inference precision on every host)."""
    _require(openvino_available(), "openvino")
    import openvino as ov

    with tempfile.TemporaryDirectory(prefix="actionrec-ov-") as d:
        model, info = _read_model(src, Path(d), example)
        compiled = _compile(model, runtime)
    return OpenVinoPredictor(compiled, src.meta, backend="openvino",
                             info={**info, "openvino": ov.get_version(), "precision": "f32", "threads": runtime.threads})


def _stem_nodes(model: Any) -> list[str]:
    """Names of the Convolution nodes that read the model input (kept in fp32: see the module docstring)."""
    stems, frontier = [], {model.inputs[0].get_node().get_friendly_name()}
    for node in model.get_ordered_ops():
        parents = {i.get_source_output().get_node().get_friendly_name() for i in node.inputs()}
        if not parents & frontier:
            continue
        if node.get_type_name() == "Convolution":
            stems.append(node.get_friendly_name())
        elif node.get_type_name() in ("Pad", "Convert", "Transpose", "Reshape", "Add", "Multiply"):
            frontier.add(node.get_friendly_name())
    return stems


def load_openvino_int8(src: ModelSource, *, runtime: Runtime, example: torch.Tensor | None, calib: Any,
                       **_: Any) -> Backend:
    """OpenVINO int8: NNCF post-training quantisation of the fp32 model on ``calib`` clips, agreement reported."""
    _require(nncf_available(), "openvino-int8")
    import nncf
    import openvino as ov

    from actionrec.deploy.loaders import calib_clips
    from actionrec.deploy.quantize import split_calibration, top1_agreement

    clips = calib_clips(src, calib, "openvino-int8")
    calib_idx, held = split_calibration(clips)
    with tempfile.TemporaryDirectory(prefix="actionrec-ov-") as d:
        model, info = _read_model(src, Path(d), example)
        fp32 = OpenVinoPredictor(_compile(model, runtime), src.meta, backend="openvino", info={})
        data = nncf.Dataset([clips[i : i + 1].numpy() for i in calib_idx.tolist()])
        stems = _stem_nodes(model)
        quantized = nncf.quantize(model, data, subset_size=len(calib_idx), ignored_scope=nncf.IgnoredScope(names=stems))
        compiled = _compile(quantized, runtime)
    q = OpenVinoPredictor(compiled, src.meta, backend="openvino-int8", info={})
    agree, diff, same = top1_agreement(fp32, q, clips)
    held_agree = float(same[held].float().mean()) if len(held) else None
    q.info = {**info, "openvino": ov.get_version(), "int8": f"NNCF PTQ on {len(calib_idx)} clips (stem in fp32: {stems})",
              "top1_agreement": agree, "heldout_top1_agreement": held_agree, "max_abs_diff": diff, "threads": runtime.threads}
    log.info("openvino-int8: top-1 agrees with fp32 on %.1f%% of %d windows (max |Δlogit| %.3f)", 100 * agree, len(clips), diff)
    return q
