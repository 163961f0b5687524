"""Export a model to ONNX with its metadata, then check it against PyTorch in ONNX Runtime.

The file gets a dynamic batch axis, a dynamic clip length where the architecture allows it,
and the model's :class:`~actionrec.meta.ModelMeta` (classes, preprocessing) as ONNX
``metadata_props``: ``actionrec`` (the full JSON), ``class_names`` and ``preprocess``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from actionrec.io import atomic_path
from actionrec.meta import ModelMeta, check_io, meta_from_json
from actionrec.errors import ActionrecError

__all__ = ["ExportReport", "ExportError", "export_onnx", "read_onnx_meta", "ort_session", "META_KEY", "INPUT_NAME", "OUTPUT_NAME"]

log = logging.getLogger(__name__)

META_KEY = "actionrec"
INPUT_NAME = "video"
FIXED_TIME_ARCHS = frozenset({"i3d"})  # the exporter specialises T for these; skip the (slow) dynamic attempt
OUTPUT_NAME = "logits"


class ExportError(ActionrecError, RuntimeError):
    """Export failed, or the exported model does not reproduce PyTorch's logits."""


@dataclass
class ExportReport:
    """What :func:`export_onnx` wrote and how well it matches PyTorch."""

    path: str
    opset: int
    input_shape: tuple[int, ...]  # the shape checked
    dynamic_axes: dict[str, str] = field(default_factory=dict)  # axis index -> name, e.g. {"0": "batch", "2": "time"}
    max_abs_diff: float | None = None  # max |Δlogit| between ORT and PyTorch over all checks
    checked_shapes: list[tuple[int, ...]] = field(default_factory=list)
    export_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def ort_session(path: str | os.PathLike | bytes, *, num_threads: int | None = None, optimize: bool = True, providers: list[str] | None = None):
    """An ``onnxruntime.InferenceSession`` with our CPU settings (no spinning, 1 inter-op thread)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize else ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    )
    if num_threads:
        so.intra_op_num_threads = int(num_threads)
    so.inter_op_num_threads = 1
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.log_severity_level = 3
    src = path if isinstance(path, bytes) else str(path)
    try:
        return ort.InferenceSession(src, sess_options=so, providers=providers or ["CPUExecutionProvider"])
    except Exception as e:
        raise ExportError(f"{path if not isinstance(path, bytes) else '<onnx bytes>'}: ONNX Runtime cannot load it ({e})") from e


def read_onnx_meta(path: str | os.PathLike) -> ModelMeta:
    """The :class:`ModelMeta` stored in one of our ONNX files (reads only the graph header, not run)."""
    import onnx

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such ONNX file")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise ExportError(f"{path}: not an ONNX file ({e})") from e
    props = {p.key: p.value for p in model.metadata_props}
    if META_KEY not in props:
        raise ExportError(f"{path}: ONNX file without actionrec metadata (export it with `actionrec export`)")
    # i10-engine: the metadata is checked like a checkpoint's, and against the graph's output size
    meta = meta_from_json(props[META_KEY], source=str(path), error=ExportError)
    check_io(meta, in_channels=_static_dim(model.graph.input, 1), num_outputs=_static_dim(model.graph.output, -1),
             source=str(path), error=ExportError)
    return meta


def _static_dim(values: Any, axis: int) -> int | None:
    """Dimension ``axis`` of the first graph input/output (``None``: dynamic or not declared)."""
    dims = values[0].type.tensor_type.shape.dim if values else []
    if not dims or not -len(dims) <= axis < len(dims):
        return None
    return int(dims[axis].dim_value) if dims[axis].HasField("dim_value") else None


_NOISY_LOGGERS = ("onnxscript", "onnx_ir", "torch.onnx", "torch.export", "torch._dynamo", "torch.fx.experimental")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """The dynamo exporter logs dozens of INFO/WARNING lines per export; keep them out of our output."""
    saved = {}
    for name in _NOISY_LOGGERS:
        lg = logging.getLogger(name)
        saved[name] = lg.level
        lg.setLevel(logging.ERROR if not log.isEnabledFor(logging.DEBUG) else lg.level)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def _torch_export(model: nn.Module, example: torch.Tensor, dst: Path, *, opset: int, dynamic: dict[int, str]) -> None:
    dims = {i: torch.export.Dim(name, min=1 if name == "batch" else 2, max=4096) for i, name in dynamic.items()}
    with warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(
            model,
            (example,),
            dynamo=True,
            opset_version=opset,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=(dims,),
            verbose=False,
        )
    if prog is None:
        raise ExportError("torch.onnx.export returned nothing")
    prog.save(str(dst))


def _with_metadata(onnx_path: Path, meta: ModelMeta) -> Any:
    import onnx

    m = onnx.load(str(onnx_path))
    props = {META_KEY: meta.to_json(), "class_names": json.dumps(meta.class_names or []),
             "preprocess": json.dumps(asdict(meta.preprocess))}
    del m.metadata_props[:]
    for k, v in props.items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    m.producer_name = "actionrec"
    return m


def _dynamic_axes(m: Any) -> dict[int, str]:
    """Axes of the graph input that are symbolic in the file (the exporter may specialise some)."""
    dims = m.graph.input[0].type.tensor_type.shape.dim
    return {i: (d.dim_param or "dynamic") for i, d in enumerate(dims) if not d.HasField("dim_value")}


def _check(sess, model: nn.Module, x: torch.Tensor) -> float:
    with torch.inference_mode():
        ref = model(x).float().numpy()
    got = sess.run([OUTPUT_NAME], {INPUT_NAME: np.ascontiguousarray(x.numpy(), dtype=np.float32)})[0]
    if got.shape != ref.shape:
        raise ExportError(f"ONNX output shape {got.shape} != PyTorch {ref.shape} for input {tuple(x.shape)}")
    return float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max())


def export_onnx(
    model: nn.Module,
    path: str | os.PathLike,
    *,
    meta: ModelMeta | None = None,
    batch: int = 2,
    check: bool = True,
    opset: int = 18,
    example: torch.Tensor | None = None,
    dynamic_time: bool | None = None,
    tol: float = 1e-3,
) -> ExportReport:
    """Export ``model`` to ``path`` (written atomically) and check it in ONNX Runtime.

    Args:
        model: (N, C, T, H, W) → (N, K) network (put in eval mode; not modified otherwise).
        path: destination ``.onnx`` file.
        meta: stored in the file; default ``model.meta``.
        batch: batch size of the traced example (the batch axis is dynamic anyway).
        check: run ORT and PyTorch on seeded N(0, 1) input of the real shape (``meta.input_shape``,
            or ``example``'s shape) at ``batch`` and at batch 1 (and at another clip length when
            time is dynamic); raise :class:`ExportError` if max |Δlogit| > ``tol``.
        opset: ONNX opset (the dynamo exporter writes 18 or newer).
        example: input to trace with, instead of ``meta.input_shape(batch)`` (e.g. small tests).
        dynamic_time: also make axis 2 (T) dynamic; ``None`` (default) = yes unless the
            architecture is known to need a fixed T (I3D: its TF "SAME" padding depends on T).
            The exporter may still fix T; the report's ``dynamic_axes`` says what the file has.

    Returns:
        an :class:`ExportReport` (``report.max_abs_diff``).
    """
    meta = meta or getattr(model, "meta", None)
    if meta is None:
        raise ExportError("export_onnx needs a ModelMeta (pass meta= or set model.meta)")
    path = Path(path)
    if path.suffix != ".onnx":
        raise ExportError(f"{path}: the ONNX file name must end in .onnx")
    model = model.eval()
    gen = torch.Generator().manual_seed(0)
    if example is None:
        example = torch.randn(meta.input_shape(batch), generator=gen)
    if example.dim() != 5 or example.shape[1] != meta.in_channels:
        raise ExportError(f"example input must be (N, {meta.in_channels}, T, H, W), got {tuple(example.shape)}")
    example = example.float().contiguous()

    if dynamic_time is None:
        dynamic_time = meta.arch not in FIXED_TIME_ARCHS
    t0 = time.perf_counter()
    dynamic = {0: "batch", 2: "time"} if dynamic_time else {0: "batch"}
    with atomic_path(path, suffix=".onnx") as tmp:
        raw = tmp.with_name(tmp.name + ".raw.onnx")
        try:
            try:
                _torch_export(model, example, raw, opset=opset, dynamic=dynamic)
            except Exception as e:  # noqa: BLE001 - retry with fixed T, then report
                if len(dynamic) == 1:
                    raise
                log.info("clip length cannot be dynamic for %s (%s); exporting with T=%d", meta.arch, type(e).__name__, example.shape[2])
                dynamic = {0: "batch"}
                _torch_export(model, example, raw, opset=opset, dynamic=dynamic)
            import onnx

            m = _with_metadata(raw, meta)
            dynamic = _dynamic_axes(m)
            if 0 not in dynamic:
                raise ExportError(f"{meta.arch}: the exporter fixed the batch axis; cannot make a batch-agnostic model")
            if dynamic_time and 2 not in dynamic:
                log.info("clip length of %s is fixed at T=%d in the ONNX file (the architecture needs it)", meta.arch, example.shape[2])
            p = m.metadata_props.add()
            p.key, p.value = "dynamic_axes", json.dumps({str(k): v for k, v in dynamic.items()})
            onnx.save(m, str(tmp))
        except ExportError:
            raise
        except Exception as e:
            raise ExportError(f"exporting {meta.arch} to ONNX failed: {type(e).__name__}: {e}") from e
        finally:
            if raw.exists():
                raw.unlink()
            data = raw.with_name(raw.name + ".data")
            if data.exists():
                data.unlink()
        export_s = time.perf_counter() - t0
        report = ExportReport(
            path=str(path), opset=opset, input_shape=tuple(example.shape),
            dynamic_axes={str(k): v for k, v in dynamic.items()}, export_s=round(export_s, 2),
        )
        if check:
            sess = ort_session(tmp, num_threads=torch.get_num_threads())
            shapes = [example]
            if example.shape[0] != 1:
                shapes.append(example[:1])
            if 2 in dynamic:
                t = example.shape[2]
                t2 = t + 8 if t >= 8 else 2 * t
                shapes.append(torch.randn(1, example.shape[1], t2, *example.shape[3:], generator=gen))
            diffs = []
            for x in shapes:
                try:
                    diffs.append(_check(sess, model, x))
                except ExportError:
                    raise
                except Exception as e:
                    raise ExportError(f"exported model fails on input {tuple(x.shape)}: {e}") from e
                report.checked_shapes.append(tuple(x.shape))
            report.max_abs_diff = max(diffs)
            log.info("ONNX parity vs PyTorch: max |Δlogit| %.2e over inputs %s", report.max_abs_diff, report.checked_shapes)
            if not report.max_abs_diff <= tol:
                raise ExportError(f"ONNX model differs from PyTorch by max |Δlogit| {report.max_abs_diff:.3g} > {tol:g}; not written")
    return report
