"""Int8 post-training quantisation, calibrated on real clips, with its top-1 agreement reported.

Two flows (both static: activation ranges come from calibration clips):

* :func:`quantize_onnx` — ONNX Runtime static QDQ (per-channel s8 weights, u8 activations);
  the result is a deployable ``.onnx`` file with our metadata and the agreement figures in it.
* :func:`quantize_torch` — PyTorch FX static PTQ with the x86 backend (VNNI where the CPU has it);
  needs an FX-traceable model (all of ours are). PyTorch has deprecated this flow;
* :func:`quantize_pt2e` — PT2E (``torch.export`` + torchao's ``X86InductorQuantizer``) compiled by
  AOTInductor into a ``.pt2`` package (:mod:`actionrec.deploy.pt2`): oneDNN int8 kernels, dynamic batch.

Int8 changes the logits: never use it silently. :func:`top1_agreement` measures how often the
int8 model's top-1 class equals the fp32 model's on real windows.
"""

from __future__ import annotations

import json
import logging
import os
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from actionrec.errors import UsageError
from actionrec.io import atomic_path
from actionrec.meta import ModelMeta

__all__ = ["QuantReport", "quantize_onnx", "quantize_torch", "quantize_pt2e", "stem_convs", "top1_agreement", "split_calibration"]

log = logging.getLogger(__name__)


class _DropOrtAdvice(logging.Filter):
    """onnxruntime.quantization logs 'consider pre-processing' on the root logger at every call."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing" not in record.getMessage()


@dataclass
class QuantReport:
    """Agreement of an int8 model with its fp32 original on real windows."""

    path: str | None
    calib_windows: int
    eval_windows: int
    top1_agreement: float  # over all evaluation windows
    heldout_windows: int
    heldout_top1_agreement: float | None  # over windows not used for calibration
    max_abs_diff: float
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        held = (
            f", {self.heldout_top1_agreement:.1%} on the {self.heldout_windows} held-out"
            if self.heldout_top1_agreement is not None
            else ""
        )
        return (
            f"int8 ({self.method}) top-1 agrees with fp32 on {self.top1_agreement:.1%} of {self.eval_windows} windows"
            f"{held}; calibrated on {self.calib_windows}; max |Δlogit| {self.max_abs_diff:.3g}"
        )


def _batched(fn: Callable[[torch.Tensor], torch.Tensor], clips: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat([fn(clips[i : i + batch]) for i in range(0, len(clips), batch)])


def top1_agreement(
    ref: Callable[[torch.Tensor], torch.Tensor], other: Callable[[torch.Tensor], torch.Tensor], clips: torch.Tensor, *, batch: int = 4
) -> tuple[float, float, torch.Tensor]:
    """Fraction of ``clips`` (N, C, T, H, W) where both models pick the same class; max |Δlogit|; per-clip agreement (N,)."""
    with torch.inference_mode():
        a = _batched(ref, clips, batch)
        b = _batched(other, clips, batch)
    same = a.argmax(1) == b.argmax(1)
    return float(same.float().mean()), float((a.double() - b.double()).abs().max()), same


def split_calibration(clips: torch.Tensor, *, max_calib: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices of the calibration windows (every other one, at most ``max_calib``) and of the held-out rest."""
    idx = torch.arange(len(clips))
    calib = idx[::2][:max_calib]
    held = idx[~torch.isin(idx, calib)]
    return calib, held


def _agreement_report(path, method, ref, q, clips, calib, held, batch) -> QuantReport:
    agree, diff, same = top1_agreement(ref, q, clips, batch=batch)
    return QuantReport(
        path=str(path) if path else None, calib_windows=len(calib), eval_windows=len(clips), top1_agreement=agree,
        heldout_windows=len(held), heldout_top1_agreement=float(same[held].float().mean()) if len(held) else None,
        max_abs_diff=diff, method=method,
    )


class _Reader:
    """An ORT ``CalibrationDataReader`` over a clip tensor."""

    def __init__(self, clips: torch.Tensor, input_name: str, batch: int) -> None:
        self._batches = [np.ascontiguousarray(clips[i : i + batch].numpy(), dtype=np.float32) for i in range(0, len(clips), batch)]
        self._name = input_name
        self._i = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self._i >= len(self._batches):
            return None
        self._i += 1
        return {self._name: self._batches[self._i - 1]}

    def rewind(self) -> None:
        self._i = 0


def stem_convs(graph: Any) -> list[str]:
    """Names of the Conv nodes that read the graph input (through Pad/Identity/Transpose/Cast nodes, if any)."""
    passthrough = {"Pad", "Identity", "Transpose", "Cast", "Reshape"}
    tensors = {i.name for i in graph.input}
    found: list[str] = []
    for node in graph.node:  # ONNX graphs are topologically sorted
        if not tensors.intersection(node.input):
            continue
        if node.op_type == "Conv":
            found.append(node.name)
        elif node.op_type in passthrough:
            tensors.update(node.output)
    return found


def quantize_onnx(
    fp32_path: str | os.PathLike,
    out_path: str | os.PathLike,
    *,
    clips: torch.Tensor,
    max_calib: int = 32,
    batch: int = 2,
    num_threads: int | None = None,
    keep_stem_fp32: bool = True,
) -> QuantReport:
    """Static QDQ int8 of one of our fp32 ONNX files, calibrated on real ``clips`` (N, C, T, H, W).

    Every other window calibrates; agreement is measured on all windows and on the held-out
    ones, stored in the file's metadata (``int8``) and returned.

    ``keep_stem_fp32`` leaves the convolution(s) reading the input in fp32. Normalised 8-bit video
    (e.g. ``x/255*2-1``) lies half a step off any u8 grid that holds 0 exactly, so quantising the input
    merges neighbouring levels. With DeepMind's I3D, quantising the stem (input and weights) flipped the
    top-1 of 6 of 26 real windows (max |Δlogit| 6.5); with the stem in fp32, 0 of 26 (0.71).
    """
    import onnx
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

    from actionrec.deploy.onnx_export import INPUT_NAME, META_KEY
    from actionrec.deploy.predictor import onnx_backend
    from actionrec.runtime import Runtime

    fp32_path, out_path = Path(fp32_path), Path(out_path)
    if len(clips) < 1:
        raise UsageError("int8 calibration needs at least one real clip")
    calib, held = split_calibration(clips, max_calib=max_calib)
    reader = type("ClipReader", (_Reader, CalibrationDataReader), {})(clips[calib], INPUT_NAME, batch)
    src = onnx.load(str(fp32_path))
    props = {p.key: p.value for p in src.metadata_props}
    if META_KEY not in props:
        raise UsageError(f"{fp32_path}: not an actionrec ONNX export")
    exclude = stem_convs(src.graph) if keep_stem_fp32 else []
    with atomic_path(out_path, suffix=".onnx") as tmp:
        drop = _DropOrtAdvice()
        logging.getLogger().addFilter(drop)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                quantize_static(
                    str(fp32_path), str(tmp), reader, quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True, calibrate_method=CalibrationMethod.MinMax,
                    nodes_to_exclude=exclude,
                )
        finally:
            logging.getLogger().removeFilter(drop)
        meta = ModelMeta.from_json(props[META_KEY])
        rt = Runtime(threads=num_threads or 1)
        ref = onnx_backend(fp32_path, meta, runtime=rt, optimize=True)
        q = onnx_backend(Path(tmp), meta, runtime=rt, optimize=True)
        method = "onnxruntime static QDQ u8/s8 per-channel" + (", stem fp32" if exclude else "")
        report = _agreement_report(out_path, method, ref, q, clips, calib, held, batch)
        m = onnx.load(str(tmp))
        del m.metadata_props[:]
        for k, v in {**props, "int8": json.dumps(report.to_dict())}.items():
            p = m.metadata_props.add()
            p.key, p.value = k, v
        onnx.save(m, str(tmp))
    log.info("%s", report.summary())
    return report


def quantize_torch(model: nn.Module, *, clips: torch.Tensor, max_calib: int = 32, batch: int = 2) -> tuple[nn.Module, QuantReport]:
    """PyTorch FX static int8 (x86 backend) calibrated on real ``clips``; returns the model and its agreement report.

    Unlike :func:`quantize_onnx`, the stem is quantised too: keeping it fp32 did not change the agreement
    measured with DeepMind's I3D here (96.2% of 26 windows either way).
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    meta: ModelMeta | None = getattr(model, "meta", None)
    model = model.eval()
    calib, held = split_calibration(clips, max_calib=max_calib)
    import copy

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.backends.quantized.engine = "x86"
        try:
            prepared = prepare_fx(copy.deepcopy(model), get_default_qconfig_mapping("x86"), (clips[:1],))
        except Exception as e:
            raise UsageError(f"{meta.arch if meta else type(model).__name__} cannot be FX-traced for int8 ({type(e).__name__}: {e})") from e
        with torch.inference_mode():
            for i in range(0, len(calib), batch):
                prepared(clips[calib[i : i + batch]])
        qmodel = convert_fx(prepared)
    if meta is not None:
        qmodel.meta = meta
    report = _agreement_report(None, "torch.ao FX static x86", model, qmodel, clips, calib, held, batch)
    log.info("%s", report.summary())
    return qmodel, report


def _torchao_pt2e() -> tuple[Any, Any, Any, Any]:
    """(prepare_pt2e, convert_pt2e, allow_exported_model_train_eval, x86_inductor_quantizer module).

    torchao logs its missing CUDA kernels on import; kept quiet here.
    """
    lg = logging.getLogger("torchao")
    level = lg.level
    lg.setLevel(logging.ERROR)
    try:
        import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
        from torchao.quantization.pt2e import allow_exported_model_train_eval
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    except ImportError as e:
        raise UsageError(f"int8 pt2 packages need torchao (pip install torchao): {e}") from e
    finally:
        lg.setLevel(level)
    return prepare_pt2e, convert_pt2e, allow_exported_model_train_eval, xiq


def quantize_pt2e(
    model: nn.Module,
    out_path: str | os.PathLike,
    *,
    clips: torch.Tensor,
    max_calib: int = 32,
    batch: int = 2,
    keep_fp32: tuple[str, ...] | None = None,
) -> QuantReport:
    """Static int8 through PT2E, calibrated on real ``clips`` (N, C, T, H, W), compiled into a ``.pt2`` package.

    Per-channel symmetric s8 weights, u8 activations (histogram observers), x86 Inductor
    quantiser; every other window calibrates (:func:`split_calibration`). The compiled package's
    top-1 agreement with the fp32 ``model`` is measured on all windows and on the held-out ones
    before the file is published, and returned.

    Every Conv3d but those in ``keep_fp32`` runs as a oneDNN int8 convolution (torchao's quantiser
    and Inductor stop at 2-D; :mod:`actionrec.deploy.qconv3d` adds 3-D), except depthwise ones and
    those over one position (:func:`~actionrec.deploy.qconv3d.stays_fp32`: X3D's, measured). ``keep_fp32``: module
    names left in fp32; default: the stem convolution (``model.first_conv``), for the reason given
    in :func:`quantize_onnx`. Raises :class:`UsageError` (nothing written) if no convolution would
    run in int8.
    """
    from actionrec.deploy.pt2 import export_pt2
    from actionrec.deploy.qconv3d import lower_conv3d, make_quantizer

    prepare_pt2e, convert_pt2e, allow_train_eval, xiq = _torchao_pt2e()
    meta: ModelMeta | None = getattr(model, "meta", None)
    if meta is None:
        raise UsageError("quantize_pt2e needs a model with .meta")
    if len(clips) < 1:
        raise UsageError("int8 calibration needs at least one real clip")
    model = model.eval()
    calib, held = split_calibration(clips, max_calib=max_calib)
    if keep_fp32 is None:
        stem = getattr(model, "first_conv", None)
        keep_fp32 = (stem,) if isinstance(stem, str) else ()
    quantizer = make_quantizer(xiq, keep_fp32=tuple(keep_fp32))
    example = clips[calib[:2]] if len(calib) >= 2 else clips[:1].expand(2, *clips.shape[1:])
    dims = ({0: torch.export.Dim("batch", min=1, max=1024)},)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        try:
            graph = torch.export.export(model, (example.contiguous(),), dynamic_shapes=dims).module()
        except Exception as e:
            raise UsageError(f"{meta.arch} cannot be exported for PT2E int8 ({type(e).__name__}: {e})") from e
        prepared = prepare_pt2e(graph, quantizer)
        for i in range(0, len(calib), batch):
            prepared(clips[calib[i : i + batch]])
        qmodel = convert_pt2e(prepared)
        convs = lower_conv3d(qmodel, example=example)
    if convs.int8 == 0:
        raise UsageError(f"PT2E int8: none of the {convs.fp32} convolutions of {meta.arch} can run in int8, "
                         "so the package would not be int8; use the ONNX Runtime int8 export (--format onnx --int8)")
    allow_train_eval(qmodel)  # export_pt2 calls .eval(); exported graphs refuse it otherwise
    method = (f"PT2E x86-inductor s8/u8 per-channel, int8 convs {convs.int8}/{convs.int8 + convs.fp32}"
              + (f", fp32: {', '.join(keep_fp32)}" if keep_fp32 else "")
              + (f"; {quantizer.kept_fp32} depthwise or one-position convs fp32" if quantizer.kept_fp32 else ""))
    result: list[QuantReport] = []

    def verify(pred: Callable[[torch.Tensor], torch.Tensor]) -> None:
        result.append(_agreement_report(out_path, method, model, pred, clips, calib, held, batch))

    export_pt2(qmodel, out_path, meta=meta, example=example, dynamic_time=False, precision="int8", check=False, verify=verify,
               extra={"int8": {"method": method, "calib_windows": len(calib)}})
    log.info("%s", result[0].summary())
    return result[0]
