"""``actionrec bench``: clips/s and latency per backend and batch size, as Markdown and JSON.

The backends are the registry's (:data:`~actionrec.deploy.backends.BACKENDS`): the names ``predict``,
``eval`` and ``serve`` take. By default every backend that can run the source on this runtime is
measured, except those that compile for a minute or more (``torch-compile``, ``pt2``, ``pt2-int8``:
name them in ``backends``), plus a ``torch --no-optimize`` row (the plain model, the baseline).
Int8 backends are calibrated on ``calib`` clips if given, else on random input (speed only: the
table says so). Every result records the runtime and the host it was measured on.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from actionrec.deploy.backends import BACKENDS, load_backend
from actionrec.deploy.source import ModelSource, resolve_model
from actionrec.io import write_text_atomic
from actionrec.runtime import Runtime, resolve_runtime

__all__ = ["BenchRow", "BenchResult", "run_bench", "to_markdown", "write_bench", "default_backends", "EAGER"]

log = logging.getLogger(__name__)

EAGER = "torch --no-optimize"  # the plain PyTorch model: the baseline row


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
    machine: dict[str, Any]  # the runtime and the host (Runtime.as_dict)
    gflop_per_clip: float | None
    rows: list[BenchRow] = field(default_factory=list)
    setup: dict[str, dict[str, Any]] = field(default_factory=dict)  # backend -> setup time, notes
    skipped: dict[str, str] = field(default_factory=dict)  # backend -> why


def _time_calls(fn: Callable[[torch.Tensor], Any], x: torch.Tensor, *, min_calls: int, min_time_s: float, max_calls: int) -> list[float]:
    fn(x)  # warm-up (first-call allocations, compilation, ORT arena)
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < max_calls and (len(times) < min_calls or time.perf_counter() - start < min_time_s):
        t0 = time.perf_counter()
        fn(x)
        times.append(time.perf_counter() - t0)
    return times


def _pct(values: list[float], q: float) -> float:
    s = sorted(values)
    k = (len(s) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def default_backends(src: ModelSource, runtime: Runtime) -> list[str]:
    """What ``bench`` measures when not told: the plain model, then every quick backend that runs ``src`` here."""
    out = [EAGER] if src.kind not in ("onnx", "pt2") else []
    device = "cuda" if runtime.is_cuda else "cpu"
    for spec in BACKENDS.values():
        if spec.takes(src.kind) and device in spec.devices and spec.is_available() and (not spec.slow_setup or src.kind == "pt2"):
            if src.kind == "pt2" and spec.name == "pt2-int8":
                continue  # a package is one or the other: pt2 runs both
            out.append(spec.name)
    return out


def _build(label: str, src: ModelSource, runtime: Runtime, *, optimize: bool | None, example: torch.Tensor,
           calib: torch.Tensor | None) -> tuple[Any, dict[str, Any]]:
    """(backend, notes) for one row; ``label`` is a backend name or :data:`EAGER`."""
    name, opt = ("torch", False) if label == EAGER else (label, optimize)
    notes: dict[str, Any] = {}
    if BACKENDS.get(name).needs_calib and not (src.kind in ("onnx", "pt2") and calib is None):
        real = calib is not None
        if not real:
            calib = torch.randn(8, *example.shape[1:], generator=torch.Generator().manual_seed(0))
        notes["calibration"] = f"{len(calib)} real clips" if real else "random input (speed only)"
    backend = load_backend(src, backend=name, runtime=runtime, optimize=opt, example=example[:2], calib=calib, build=True)
    notes.update({k: v for k, v in backend.info.items() if k in ("optimize", "load_s", "export_s", "compile_s", "top1_agreement",
                                                                  "graph_optimization", "precision")})
    return backend, notes


def run_bench(
    source: Any,
    *,
    backends: Sequence[str] | None = None,
    batch_sizes: Sequence[int] = (1, 4, 8, 16, 32),
    runtime: Runtime | None = None,
    optimize: bool | None = None,
    input_shape: Sequence[int] | None = None,
    min_calls: int = 3,
    min_time_s: float = 2.0,
    max_calls: int = 50,
    calib: torch.Tensor | None = None,
    num_classes: int | None = None,
    progress: bool = False,
) -> BenchResult:
    """Benchmark ``source`` (any MODEL, or an architecture name: random weights) over backends × batch sizes.

    ``backends``: registry names (or :data:`EAGER`); default :func:`default_backends`. ``input_shape`` is
    (C, T, H, W) per clip (default: the model's). Each cell: one warm-up call, then calls until
    ``min_calls`` and ``min_time_s`` are reached (at most ``max_calls``).
    """
    src = resolve_model(source, allow_arch=True, num_classes=num_classes)
    runtime = (runtime or resolve_runtime()).apply()
    names = list(backends or default_backends(src, runtime))
    for n in names:
        if n != EAGER:
            BACKENDS.get(n)  # an unknown name: one line with the close matches
    meta = src.meta
    shape = list(input_shape or meta.input_shape(1)[1:])
    gflop = _gflop(src, shape)
    label = meta.arch if src.path is None or src.kind == "checkpoint" else f"{meta.arch} ({src.path.name})"
    result = BenchResult(model=label, input_shape=shape, threads=runtime.threads, machine=runtime.as_dict(), gflop_per_clip=gflop)
    example = torch.randn(max(batch_sizes), *shape, generator=torch.Generator().manual_seed(0))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(names) * len(batch_sizes), desc="bench", unit="cell", leave=False)
    for name in names:
        t0 = time.perf_counter()
        try:
            fn, notes = _build(name, src, runtime, optimize=optimize, example=example, calib=calib)
        except Exception as e:  # noqa: BLE001 - one failing backend must not end the benchmark
            result.skipped[name] = f"{type(e).__name__}: {e}"
            log.warning("bench: backend %s skipped (%s)", name, e)
            if bar:
                bar.update(len(batch_sizes))
            continue
        notes["setup_s"] = round(time.perf_counter() - t0, 2)
        result.setup[name] = notes
        for b in batch_sizes:
            _bench_cell(result, name, fn, example[:b].contiguous(), gflop, min_calls=min_calls, min_time_s=min_time_s,
                        max_calls=max_calls)
            if bar:
                bar.update(1)
        del fn
    if bar:
        bar.close()
    return result


def _gflop(src: ModelSource, shape: list[int]) -> float | None:
    if src.kind in ("onnx", "pt2"):
        return None
    try:
        from actionrec.models.flops import count_flops

        return count_flops(src.torch_model(), (1, *shape)) / 1e9
    except Exception as e:  # noqa: BLE001 - FLOPs are a nicety
        log.debug("FLOP count failed: %s", e)
        return None


def _bench_cell(result: BenchResult, name: str, fn: Any, x: torch.Tensor, gflop: float | None, **timing: Any) -> None:
    b = len(x)
    try:
        times = _time_calls(fn, x, **timing)
    except Exception as e:  # noqa: BLE001
        result.skipped[f"{name}@{b}"] = f"{type(e).__name__}: {e}"
        log.warning("bench: %s at batch %d failed (%s)", name, b, e)
        return
    med = statistics.median(times)
    cps = b / med
    result.rows.append(BenchRow(
        backend=name, batch=b, clips_per_s=round(cps, 3), p50_ms=round(med * 1e3, 1),
        p90_ms=round(_pct(times, 0.9) * 1e3, 1), calls=len(times), gflops=round(cps * gflop, 3) if gflop else None,
    ))
    log.info("%-20s b%-3d %8.2f clips/s  p50 %.0f ms", name, b, cps, med * 1e3)


def to_markdown(r: BenchResult) -> str:
    """The table with its header (hardware, threads, input shape)."""
    m = r.machine
    head = [
        f"### actionrec bench: {r.model}, input {'×'.join(map(str, r.input_shape))} (C×T×H×W) per clip",
        "",
        f"{m.get('cpu')} ({m.get('logical_cpus')} logical CPUs, torch kernels {m.get('cpu_capability', '?')}), "
        f"device {m.get('device', 'cpu')}, **{r.threads} threads**, {m.get('precision', 'fp32')}"
        + (f", GPU {m['gpu']}" if m.get("gpu") else "")
        + f"; torch {m.get('torch')}"
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
