"""R(2+1)D-18 CPU inference: our fastest exact path vs the eager torchvision-style network vs the FP32 peak.

One run, same machine, interleaved rounds (every variant once per round, in a fresh random order);
figures are medians over rounds, speedups are medians of per-round ratios to eager.

    python benchmarks/bench_cpu_inference.py                 # 16×112×112, batch 8, 2 threads, 5 rounds
    python benchmarks/bench_cpu_inference.py --compile       # also torch.compile + freezing (slow to compile)
    python benchmarks/bench_cpu_inference.py --json out.json
    python benchmarks/bench_cpu_inference.py --compile --first-prediction   # + process start → first logits per path

Variants: ``peak`` (torch.matmul 4096², FP32), ``eager`` (create_model("r2plus1d_18"), eval, NCTHW, nothing else),
``optimized`` (Conv+BN folding + channels_last_3d), ``compile`` (optimized + torch.compile with inductor
freezing), ``pt2`` (our AOTInductor package, ``actionrec export --format pt2``), ``pt2-int8`` (PT2E int8 package),
``ort-fp32`` (our ONNX export in ONNX Runtime), ``torch-int8`` (FX static x86), ``ort-int8`` (static QDQ).
``--first-prediction`` starts a fresh Python process per path (eager, optimized, compile, pt2) and times process
start → first batch-1 logits, model loading included (the inductor cache of the machine is used as it is).
Weights are random; BatchNorm statistics are re-estimated on random clips so folding is not trivial.
Int8 here is calibrated on random clips (speed only); for top-1 agreement on real clips see
``bench_cpu_int8_i3d.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")


def _busy_jiffies() -> int:
    with open("/proc/stat") as f:
        parts = [int(v) for v in f.readline().split()[1:]]
    return sum(parts) - parts[3] - parts[4]  # minus idle, iowait


class Foreign:
    """CPU used by other processes during a block, in cores (from /proc/stat minus our own CPU time)."""

    def __enter__(self):
        self.j0, self.t0, self.w0 = _busy_jiffies(), sum(os.times()[:2]), time.perf_counter()
        return self

    def __exit__(self, *exc):
        hz = os.sysconf("SC_CLK_TCK")
        wall = time.perf_counter() - self.w0
        busy = (_busy_jiffies() - self.j0) / hz
        own = sum(os.times()[:2]) - self.t0
        self.cores = max(0.0, (busy - own) / max(wall, 1e-9))


def build_variants(args, x: torch.Tensor) -> tuple[dict, dict, torch.nn.Module]:
    from actionrec.deploy.optimize import optimize_for_cpu
    from actionrec.factory import create_model

    torch.manual_seed(0)
    eager = create_model("r2plus1d_18").eval()
    # BN statistics from random clips (cumulative average), as a trained model would have non-trivial ones
    for m in eager.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.momentum = None
            m.reset_running_stats()
    eager.train()
    with torch.no_grad():
        for _ in range(2):
            eager(torch.randn(2, *x.shape[1:]))
    eager.eval()

    fns, notes = {}, {}
    fns["eager"] = eager
    t = time.perf_counter()
    opt = optimize_for_cpu(eager, example=x[:1])
    notes["optimized"] = {"setup_s": round(time.perf_counter() - t, 2), **opt.optimize_info}
    fns["optimized"] = opt
    if args.compile:
        t = time.perf_counter()
        comp = optimize_for_cpu(eager, example=x, mode="compile")  # compiles for this shape
        notes["compile"] = {"setup_s": round(time.perf_counter() - t, 2)}
        fns["compile"] = comp
    d = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
    if not args.no_pt2:
        from actionrec.deploy.pt2 import export_pt2, load_pt2

        t = time.perf_counter()
        rep = export_pt2(eager, d / "r2p1d18.pt2", example=x)
        fns["pt2"] = load_pt2(d / "r2p1d18.pt2")
        notes["pt2"] = {"setup_s": round(time.perf_counter() - t, 2), "export_s": rep.export_s, "compile_s": rep.compile_s,
                        "load_s": fns["pt2"].info["load_s"], "size_mb": rep.size_mb, "input_dims": rep.input_dims}
        if not args.no_int8:
            from actionrec.deploy.quantize import quantize_pt2e

            calib = torch.randn(8, *x.shape[1:], generator=torch.Generator().manual_seed(1))
            t = time.perf_counter()
            try:
                quantize_pt2e(eager, d / "r2p1d18.int8.pt2", clips=calib, max_calib=4)
                fns["pt2-int8"] = load_pt2(d / "r2p1d18.int8.pt2")
                notes["pt2-int8"] = {"setup_s": round(time.perf_counter() - t, 2), "calibration": "4 random clips (speed only)"}
            except Exception as e:  # noqa: BLE001 - e.g. no 3-D convolution quantised: reported, not timed
                notes["pt2-int8"] = {"skipped": str(e)}
    if not args.no_ort or not args.no_ort_int8:
        from actionrec.deploy.onnx_export import export_onnx
        from actionrec.deploy.predictor import onnx_backend
        from actionrec.runtime import Runtime

        t = time.perf_counter()
        rep = export_onnx(eager, d / "r2p1d18.onnx", example=x[:1])
        notes["ort-fp32"] = {"export_s": round(time.perf_counter() - t, 2), "export_max_abs_diff": rep.max_abs_diff}
        if not args.no_ort:
            fns["ort-fp32"] = onnx_backend(d / "r2p1d18.onnx", eager.meta, runtime=Runtime(threads=args.threads or 1), optimize=True)
    if not args.no_int8:
        from actionrec.deploy.quantize import quantize_torch

        calib = torch.randn(8, *x.shape[1:], generator=torch.Generator().manual_seed(1))
        t = time.perf_counter()
        q, _ = quantize_torch(eager, clips=calib, max_calib=4)
        notes["torch-int8"] = {"setup_s": round(time.perf_counter() - t, 2), "calibration": "4 random clips (speed only)"}
        fns["torch-int8"] = q
    if not args.no_ort_int8:
        from actionrec.deploy.quantize import quantize_onnx

        t = time.perf_counter()
        quantize_onnx(d / "r2p1d18.onnx", d / "r2p1d18.int8.onnx", clips=calib, max_calib=4, num_threads=args.threads)
        notes["ort-int8"] = {"setup_s": round(time.perf_counter() - t, 2), "calibration": "4 random clips (speed only)"}
        fns["ort-int8"] = onnx_backend(d / "r2p1d18.int8.onnx", eager.meta, runtime=Runtime(threads=args.threads or 1), optimize=True)
    return fns, notes, eager, d


_FIRST = r"""
import sys, time, torch
from actionrec.runtime import resolve_runtime
rt = resolve_runtime(threads={threads}).apply()
from actionrec.deploy.backends import load_backend
variant, src = {variant!r}, {src!r}
x = torch.randn(1, 3, {t}, {s}, {s})
if variant == "compile":
    from actionrec.factory import load_model
    from actionrec.deploy.optimize import optimize_for_cpu
    from actionrec.deploy.predictor import TorchPredictor
    m = load_model(src)
    pred = TorchPredictor(optimize_for_cpu(m, example=x, mode="compile"), m.meta)
else:
    pred = load_backend(src, backend="pt2" if variant == "pt2" else "torch", runtime=rt, optimize={{"eager": False, "optimized": True}}.get(variant))
pred(x)
print(time.time())
"""


def first_prediction(variant: str, src: Path, args) -> float:
    """Seconds from starting a fresh ``python`` to its first batch-1 logits (imports and model loading included)."""
    import subprocess

    code = _FIRST.format(threads=args.threads, variant=variant, src=str(src), t=args.clip_len, s=args.size)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True).stdout
    return float(out.strip().splitlines()[-1]) - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clip-len", type=int, default=16)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--compile", action="store_true", help="include torch.compile + freezing (tens of seconds to compile)")
    ap.add_argument("--no-ort", action="store_true")
    ap.add_argument("--no-int8", action="store_true", help="no int8 variants at all")
    ap.add_argument("--no-ort-int8", action="store_true", help="no ORT int8 (saves its ONNX export with --no-ort)")
    ap.add_argument("--no-pt2", action="store_true", help="skip the pt2 packages (a minute or two to compile)")
    ap.add_argument("--profile", action="store_true", help="torch.profiler: where optimized and pt2 spend their time, batch 8 and 1")
    ap.add_argument("--first-prediction", action="store_true",
                    help="time process start → first logits in a fresh process for eager, optimized, compile (with --compile), pt2")
    ap.add_argument("--peak-n", type=int, default=4096)
    ap.add_argument("--json", help="write all figures here")
    args = ap.parse_args(argv)
    args.no_ort_int8 = args.no_ort_int8 or args.no_int8

    from actionrec.runtime import resolve_runtime

    resolve_runtime(threads=args.threads, interop_threads=1).apply()
    x = torch.randn(args.batch, 3, args.clip_len, args.size, args.size, generator=torch.Generator().manual_seed(0))
    from actionrec.models.flops import count_flops

    t_build = time.perf_counter()
    fns, notes, eager, workdir = build_variants(args, x)
    gflop = count_flops(eager, (1, *x.shape[1:])) / 1e9
    print(f"built {len(fns)} variants in {time.perf_counter() - t_build:.0f} s; {gflop:.2f} GFLOP/clip; "
          f"input {tuple(x.shape)}, {args.threads} threads; setup {json.dumps(notes)}", file=sys.stderr, flush=True)

    # exactness (and warm-up)
    with torch.inference_mode():
        ref = eager(x)
        exact = {}
        for name, fn in fns.items():
            out = fn(x)
            exact[name] = {
                "max_abs_diff": float((out.double() - ref.double()).abs().max()),
                "top1_agree_random_input": float((out.argmax(1) == ref.argmax(1)).float().mean()),
            }
    a = torch.randn(args.peak_n, args.peak_n)
    b = torch.randn(args.peak_n, args.peak_n)
    peak_flop = 2 * args.peak_n**3
    a @ b

    times: dict[str, list[float]] = {n: [] for n in fns}
    peak: list[float] = []
    foreign: list[float] = []
    rng = random.Random(0)
    t_run = time.perf_counter()
    for r in range(args.rounds):
        order = ["peak", *fns]
        rng.shuffle(order)
        with Foreign() as fg, torch.inference_mode():
            for name in order:
                if name == "peak":
                    best = min(_timed(lambda: a @ b) for _ in range(3))
                    peak.append(peak_flop / best / 1e9)
                else:
                    times[name].append(_timed(lambda: fns[name](x)))
        foreign.append(round(fg.cores, 2))
        so_far = ", ".join(f"{n} {args.batch / statistics.median(ts):.2f} clips/s "
                           f"×{statistics.median(te / t for te, t in zip(times['eager'], ts)):.2f}" for n, ts in times.items())
        print(f"round {r + 1}/{args.rounds}: foreign CPU {fg.cores:.2f} cores; peak {statistics.median(peak):.0f} GFLOP/s; "
              f"so far: {so_far}", file=sys.stderr, flush=True)

    peak_med = statistics.median(peak)
    rows = []
    for name, ts in times.items():
        cps = [args.batch / t for t in ts]
        ratios = [te / t for te, t in zip(times["eager"], ts)]
        pct = [args.batch / t * gflop / p * 100 for t, p in zip(ts, peak)]
        rows.append({
            "variant": name, "clips_per_s": statistics.median(cps), "min": min(cps), "max": max(cps),
            "speedup_vs_eager": statistics.median(ratios), "speedup_min": min(ratios), "speedup_max": max(ratios),
            "gflops": statistics.median(cps) * gflop, "pct_of_peak": statistics.median(pct), **exact[name],
        })

    print(f"\n### R(2+1)D-18 CPU inference, input {args.batch}×3×{args.clip_len}×{args.size}×{args.size}, "
          f"{args.threads} threads, {args.rounds} interleaved rounds")
    print(f"\n{_cpu()}; torch {torch.__version__}; {gflop:.1f} GFLOP/clip (2 per multiply-add)")
    print(f"FP32 peak (torch.matmul {args.peak_n}², best of 3 per round): median **{peak_med:.0f} GFLOP/s** "
          f"(min {min(peak):.0f}, max {max(peak):.0f})\n")
    print("| variant | clips/s (median) | min–max | speedup vs eager (paired median, min–max) | GFLOP/s | % of same-round peak | max abs Δlogit vs eager |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['variant']} | {r['clips_per_s']:.2f} | {r['min']:.2f}–{r['max']:.2f} | ×{r['speedup_vs_eager']:.2f} "
              f"({r['speedup_min']:.2f}–{r['speedup_max']:.2f}) | {r['gflops']:.0f} | {r['pct_of_peak']:.0f}% | {r['max_abs_diff']:.1e} |")
    print(f"\nforeign CPU per round (cores): {foreign}; timed part {time.perf_counter() - t_run:.0f} s")
    profiles = profile_variants({n: fns[n] for n in ("optimized", "pt2") if n in fns}, x) if args.profile else {}
    first: dict[str, float] = {}
    if args.first_prediction:
        from actionrec.checkpoint import save_model

        ckpt = save_model(eager, workdir / "r2p1d18.safetensors")
        for name in ["eager", "optimized", *(["compile"] if args.compile else []), *(["pt2"] if "pt2" in fns else [])]:
            src = workdir / "r2p1d18.pt2" if name == "pt2" else ckpt
            first[name] = round(first_prediction(name, src, args), 2)
            print(f"first prediction {name}: {first[name]} s", file=sys.stderr, flush=True)
        print("\n| path | process start → first logits (batch 1), s |\n|---|---|")
        for name, secs in first.items():
            print(f"| {name} | {secs:.1f} |")
    for name, n in notes.items():
        print(f"- {name}: {json.dumps(n)}")
    if args.json:
        from actionrec.io import write_text_atomic

        write_text_atomic(args.json, json.dumps({
            "args": vars(args), "gflop_per_clip": gflop, "peak_gflops": peak, "foreign_cores": foreign,
            "times_s": times, "rows": rows, "notes": notes, "cpu": _cpu(), "first_prediction_s": first, "profiles": profiles,
        }, indent=2))
    return 0


def profile_variants(fns: dict, x: torch.Tensor, *, top: int = 8) -> dict:
    """Self CPU time per operator (torch.profiler) of each variant at batch len(x) and 1; prints a table per case."""
    from torch.profiler import ProfilerActivity, profile

    out = {}
    for name, fn in fns.items():
        for b in sorted({x.shape[0], 1}, reverse=True):
            xb = x[:b].contiguous()
            with torch.inference_mode():
                fn(xb)
                t = time.perf_counter()
                with profile(activities=[ProfilerActivity.CPU]) as prof:
                    fn(xb)
                wall = time.perf_counter() - t
            events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
            total = sum(e.self_cpu_time_total for e in events) or 1
            rows = [{"op": e.key, "calls": e.count, "self_ms": round(e.self_cpu_time_total / 1e3, 1),
                     "share": round(e.self_cpu_time_total / total, 3)} for e in events[:top]]
            out[f"{name}@{b}"] = {"wall_s": round(wall, 3), "rows": rows}
            print(f"\n{name}, batch {b}: {wall * 1e3:.0f} ms under the profiler\n\n| op | calls | self ms | share |\n|---|---|---|---|")
            for r in rows:
                print(f"| {r['op']} | {r['calls']} | {r['self_ms']} | {r['share']:.0%} |")
    return out


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _cpu() -> str:
    from actionrec.runtime import host_info

    m = host_info()
    return f"{m['cpu']} ({m['logical_cpus']} logical CPUs, torch kernels {m['cpu_capability']})"


if __name__ == "__main__":
    sys.exit(main())
