"""``actionrec bench``: clips/s and latency per backend and batch size, as Markdown and JSON.

Backends (those available on the machine are used by default):

* ``eager`` — the model as built, NCTHW, ``torch.inference_mode``;
* ``optimized`` — the exact fast CPU path (:func:`~actionrec.deploy.optimize.optimize_for_cpu`);
* ``compile`` — folding + channels-last + ``torch.compile`` with freezing (opt-in: slow to compile);
* ``ort-fp32`` / ``ort-int8`` — ONNX Runtime on the fp32 export / its static QDQ int8 version;
* ``torch-int8`` — PyTorch FX static int8 (x86);
* ``cuda-fp32`` / ``cuda-fp16`` — when a CUDA device is present; ``ort-tensorrt`` when ORT has TensorRT.

Int8 backends are calibrated on ``calib`` clips if given, else on random input (speed only:
the table says so).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from actionrec.errors import UsageError
from actionrec.io import write_text_atomic

__all__ = ["BenchRow", "BenchResult", "run_bench", "machine_info", "to_markdown", "write_bench", "ALL_BACKENDS"]

log = logging.getLogger(__name__)

ALL_BACKENDS = ("eager", "optimized", "compile", "ort-fp32", "ort-int8", "torch-int8", "cuda-fp32", "cuda-fp16", "ort-tensorrt")
DEFAULT_CPU = ("eager", "optimized", "ort-fp32", "ort-int8", "torch-int8")


@dataclass
class BenchRow:
    backend: str
    batch: int
    clips_per_s: float  # batch / median call time
    p50_ms: float  # per call (one batch)
    p90_ms: float
    calls: int
    gflops: float | None = None  # achieved (fp32-equivalent) GFLOP/s


@dataclass
class BenchResult:
    model: str
    input_shape: list[int]  # per clip: C, T, H, W
    threads: int
    machine: dict[str, Any]
    gflop_per_clip: float | None
    rows: list[BenchRow] = field(default_factory=list)
    setup: dict[str, dict[str, Any]] = field(default_factory=dict)  # backend -> setup time, notes
    skipped: dict[str, str] = field(default_factory=dict)  # backend -> why


def machine_info() -> dict[str, Any]:
    """CPU model, logical cores, library versions, GPU (if any)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {"cpu": cpu, "logical_cpus": os.cpu_count(), "torch": torch.__version__, "python": platform.python_version()}
    try:
        import onnxruntime as ort

        info["onnxruntime"] = ort.__version__
    except ImportError:
        pass
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _time_calls(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, *, min_calls: int, min_time_s: float, max_calls: int) -> list[float]:
    fn(x)  # warm-up (first-call allocations, compilation, ORT arena)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_calls and (len(times) < min_calls or time.perf_counter() - start < min_time_s):
        t0 = time.perf_counter()
        fn(x)
        if x.is_cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return times


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def _load_source(source: str | os.PathLike | nn.Module, *, num_classes: int | None) -> tuple[nn.Module | None, Path | None, Any]:
    """(torch model or None, onnx path or None, meta)."""
    if isinstance(source, nn.Module):
        return source.eval(), None, source.meta
    s = str(source)
    if s.endswith(".onnx"):
        from actionrec.deploy.onnx_export import read_onnx_meta

        return None, Path(s), read_onnx_meta(s)
    if s.endswith(".safetensors") or Path(s).is_file():
        from actionrec.factory import load_model

        m = load_model(s)
        return m, None, m.meta
    from actionrec.factory import create_model

    m = create_model(s, num_classes=num_classes).eval()  # random weights: speed only
    return m, None, m.meta


def _available(model: nn.Module | None) -> list[str]:
    if model is None:
        out = ["ort-fp32"]
    else:
        out = list(DEFAULT_CPU)
    if torch.cuda.is_available() and model is not None:
        out += ["cuda-fp32", "cuda-fp16"]
    try:
        import onnxruntime as ort

        if "TensorrtExecutionProvider" in ort.get_available_providers():
            out.append("ort-tensorrt")
    except ImportError:
        pass
    return out


def _build(
    name: str, model: nn.Module | None, onnx_path: Path | None, meta: Any, example: torch.Tensor,
    calib: torch.Tensor | None, workdir: Path, threads: int,
) -> tuple[Callable[[torch.Tensor], Any], dict[str, Any], bool]:
    """(callable, notes, on_cuda) for one backend."""
    from actionrec.deploy.predictor import TorchPredictor, _onnx_predictor

    notes: dict[str, Any] = {}
    if name in ("eager", "optimized", "compile", "torch-int8") and model is None:
        raise UsageError("needs a PyTorch model (pass a checkpoint or model name, not an ONNX file)")
    if name == "eager":
        return TorchPredictor(model, meta), notes, False
    if name in ("optimized", "compile"):
        from actionrec.deploy.optimize import optimize_for_cpu

        fast = optimize_for_cpu(model, example=example[:1], mode="fold_cl" if name == "optimized" else "compile")
        notes.update(fast.optimize_info)
        return TorchPredictor(fast, meta), notes, False
    if name in ("torch-int8", "ort-int8"):
        real = calib is not None
        clips = calib if real else torch.randn(8, *example.shape[1:], generator=torch.Generator().manual_seed(0))
        notes["calibration"] = f"{len(clips)} real clips" if real else "random input (speed only)"
        if name == "torch-int8":
            from actionrec.deploy.quantize import quantize_torch

            q, rep = quantize_torch(model, clips=clips, max_calib=8)
            if real:
                notes["top1_agreement"] = rep.top1_agreement
            return TorchPredictor(q, meta), notes, False
        from actionrec.deploy.quantize import quantize_onnx

        fp32 = _ensure_onnx(model, onnx_path, meta, example, workdir)
        out = workdir / "model.int8.onnx"
        rep = quantize_onnx(fp32, out, clips=clips, max_calib=8, num_threads=threads)
        if real:
            notes["top1_agreement"] = rep.top1_agreement
        return _onnx_predictor(out, meta=meta, optimize=True, device="cpu", num_threads=threads), notes, False
    if name == "ort-fp32":
        fp32 = _ensure_onnx(model, onnx_path, meta, example, workdir)
        return _onnx_predictor(fp32, meta=meta, optimize=True, device="cpu", num_threads=threads), notes, False
    if name in ("cuda-fp32", "cuda-fp16"):
        import copy

        dtype = torch.float16 if name == "cuda-fp16" else torch.float32
        dev_model = copy.deepcopy(model).to("cuda", dtype).eval()  # a copy: the other backends keep the CPU model

        def run(x: torch.Tensor) -> torch.Tensor:
            with torch.inference_mode():
                return dev_model(x.to(dtype))

        return run, notes, True
    if name == "ort-tensorrt":
        from actionrec.deploy.onnx_export import ort_session

        fp32 = _ensure_onnx(model, onnx_path, meta, example, workdir)
        sess = ort_session(fp32, providers=["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
        return (lambda x: sess.run(None, {sess.get_inputs()[0].name: x.numpy()})), notes, False
    raise UsageError(f"unknown backend {name!r}; choose from {', '.join(ALL_BACKENDS)}")


def _ensure_onnx(model: nn.Module | None, onnx_path: Path | None, meta: Any, example: torch.Tensor, workdir: Path) -> Path:
    if onnx_path is not None:
        return onnx_path
    out = workdir / "model.onnx"
    if not out.exists():
        from actionrec.deploy.onnx_export import export_onnx

        export_onnx(model, out, meta=meta, example=example[:1])
    return out


def run_bench(
    source: str | os.PathLike | nn.Module,
    *,
    backends: Sequence[str] | None = None,
    batch_sizes: Sequence[int] = (1, 4, 8, 16, 32),
    num_threads: int | None = None,
    input_shape: Sequence[int] | None = None,
    min_calls: int = 3,
    min_time_s: float = 2.0,
    max_calls: int = 50,
    calib: torch.Tensor | None = None,
    num_classes: int | None = None,
    progress: bool = False,
) -> BenchResult:
    """Benchmark ``source`` (model name, checkpoint, ONNX file or module) over backends × batch sizes.

    ``input_shape`` is (C, T, H, W) per clip (default: the model's). Each cell: one warm-up
    call, then calls until ``min_calls`` and ``min_time_s`` are reached (at most ``max_calls``).
    """
    if num_threads:
        torch.set_num_threads(int(num_threads))
    threads = torch.get_num_threads()
    model, onnx_path, meta = _load_source(source, num_classes=num_classes)
    shape = list(input_shape or meta.input_shape(1)[1:])
    names = list(backends or _available(model))
    for n in names:
        if n not in ALL_BACKENDS:
            raise UsageError(f"unknown backend {n!r}; choose from {', '.join(ALL_BACKENDS)}")
    gflop = None
    if model is not None:
        try:
            from actionrec.models.flops import count_flops

            gflop = count_flops(model, (1, *shape)) / 1e9
        except Exception as e:  # noqa: BLE001 - FLOPs are a nicety
            log.debug("FLOP count failed: %s", e)
    result = BenchResult(
        model=meta.arch if onnx_path is None else f"{meta.arch} ({onnx_path.name})", input_shape=shape, threads=threads,
        machine=machine_info(), gflop_per_clip=gflop,
    )
    gen = torch.Generator().manual_seed(0)
    example = torch.randn(max(batch_sizes), *shape, generator=gen)
    total = len(names) * len(batch_sizes)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="bench", unit="cell", leave=False)
    with tempfile.TemporaryDirectory(prefix="actionrec-bench-") as d:
        for name in names:
            t0 = time.perf_counter()
            try:
                fn, notes, on_cuda = _build(name, model, onnx_path, meta, example, calib, Path(d), threads)
            except Exception as e:  # noqa: BLE001 - one failing backend must not end the benchmark
                result.skipped[name] = f"{type(e).__name__}: {e}"
                log.warning("bench: backend %s skipped (%s)", name, e)
                if bar:
                    bar.update(len(batch_sizes))
                continue
            notes["setup_s"] = round(time.perf_counter() - t0, 2)
            result.setup[name] = notes
            for b in batch_sizes:
                x = example[:b].contiguous()
                if on_cuda:
                    x = x.cuda()
                try:
                    times = _time_calls(fn, x, min_calls=min_calls, min_time_s=min_time_s, max_calls=max_calls)
                except Exception as e:  # noqa: BLE001
                    result.skipped[f"{name}@{b}"] = f"{type(e).__name__}: {e}"
                    log.warning("bench: %s at batch %d failed (%s)", name, b, e)
                    if bar:
                        bar.update(1)
                    continue
                med = statistics.median(times)
                cps = b / med
                result.rows.append(BenchRow(
                    backend=name, batch=b, clips_per_s=round(cps, 3), p50_ms=round(med * 1e3, 1),
                    p90_ms=round(_pct(times, 0.9) * 1e3, 1), calls=len(times),
                    gflops=round(cps * gflop, 1) if gflop else None,
                ))
                log.info("%-11s b%-3d %8.2f clips/s  p50 %.0f ms", name, b, cps, med * 1e3)
                if bar:
                    bar.update(1)
            del fn
    if bar:
        bar.close()
    return result


def to_markdown(r: BenchResult) -> str:
    """The table with its header (hardware, threads, input shape)."""
    m = r.machine
    head = [
        f"### actionrec bench: {r.model}, input {'×'.join(map(str, r.input_shape))} (C×T×H×W) per clip",
        "",
        f"{m.get('cpu')} ({m.get('logical_cpus')} logical CPUs), **{r.threads} threads**"
        + (f", GPU {m['gpu']}" if m.get("gpu") else "")
        + f"; torch {m.get('torch')}, onnxruntime {m.get('onnxruntime', '-')}"
        + (f"; {r.gflop_per_clip:.1f} GFLOP/clip" if r.gflop_per_clip else ""),
        "",
        "| backend | batch | clips/s | p50 ms/batch | p90 ms/batch | GFLOP/s | calls |",
        "|---|---|---|---|---|---|---|",
    ]
    rows = [
        f"| {x.backend} | {x.batch} | {x.clips_per_s:.2f} | {x.p50_ms:.0f} | {x.p90_ms:.0f} | "
        f"{x.gflops if x.gflops is not None else '-'} | {x.calls} |"
        for x in r.rows
    ]
    tail = ["", "Backends run one after another (not interleaved): machine drift between them shows up as a difference; "
            "for paired ratios use benchmarks/bench_cpu_inference.py.", ""]
    for name, notes in r.setup.items():
        tail.append(f"- {name}: " + ", ".join(f"{k} {v}" for k, v in notes.items()))
    for name, why in r.skipped.items():
        tail.append(f"- {name}: skipped ({why})")
    return "\n".join(head + rows + tail) + "\n"


def write_bench(r: BenchResult, *, markdown: str | os.PathLike | None = None, json_path: str | os.PathLike | None = None) -> None:
    """Write the Markdown table and/or the JSON record, atomically."""
    if markdown:
        write_text_atomic(markdown, to_markdown(r))
    if json_path:
        write_text_atomic(json_path, json.dumps(asdict(r), indent=2) + "\n")
