"""R(2+1)D-18 CPU inference: our fastest exact path vs the eager torchvision-style network vs the FP32 peak.

One run, same machine, interleaved rounds (every variant once per round, in a fresh random order);
figures are medians over rounds, speedups are medians of per-round ratios to eager.

    python benchmarks/bench_cpu_inference.py                 # 16×112×112, batch 8, 2 threads, 5 rounds
    python benchmarks/bench_cpu_inference.py --compile       # also torch.compile + freezing (slow to compile)
    python benchmarks/bench_cpu_inference.py --json out.json

Variants: ``peak`` (torch.matmul 4096², FP32), ``eager`` (create_model("r2plus1d_18"), eval, NCTHW, nothing else),
``optimized`` (our default: Conv+BN folding + channels_last_3d), ``compile`` (optimized + torch.compile with inductor
freezing), ``ort-fp32`` (our ONNX export in ONNX Runtime), ``torch-int8`` (FX static x86), ``ort-int8`` (static QDQ).
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
    if not args.no_ort or not args.no_int8:
        from actionrec.deploy.onnx_export import export_onnx
        from actionrec.deploy.predictor import _onnx_predictor

        d = Path(tempfile.mkdtemp(prefix="bench-cpu-"))
        t = time.perf_counter()
        rep = export_onnx(eager, d / "r2p1d18.onnx", example=x[:1])
        notes["ort-fp32"] = {"export_s": round(time.perf_counter() - t, 2), "export_max_abs_diff": rep.max_abs_diff}
        if not args.no_ort:
            fns["ort-fp32"] = _onnx_predictor(d / "r2p1d18.onnx", meta=eager.meta, optimize=True, device="cpu", num_threads=args.threads)
    if not args.no_int8:
        from actionrec.deploy.quantize import quantize_onnx, quantize_torch

        calib = torch.randn(8, *x.shape[1:], generator=torch.Generator().manual_seed(1))
        t = time.perf_counter()
        q, _ = quantize_torch(eager, clips=calib, max_calib=4)
        notes["torch-int8"] = {"setup_s": round(time.perf_counter() - t, 2), "calibration": "4 random clips (speed only)"}
        fns["torch-int8"] = q
        t = time.perf_counter()
        quantize_onnx(d / "r2p1d18.onnx", d / "r2p1d18.int8.onnx", clips=calib, max_calib=4, num_threads=args.threads)
        notes["ort-int8"] = {"setup_s": round(time.perf_counter() - t, 2), "calibration": "4 random clips (speed only)"}
        fns["ort-int8"] = _onnx_predictor(d / "r2p1d18.int8.onnx", meta=eager.meta, optimize=True, device="cpu", num_threads=args.threads)
    return fns, notes, eager


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clip-len", type=int, default=16)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--compile", action="store_true", help="include torch.compile + freezing (tens of seconds to compile)")
    ap.add_argument("--no-ort", action="store_true")
    ap.add_argument("--no-int8", action="store_true")
    ap.add_argument("--peak-n", type=int, default=4096)
    ap.add_argument("--json", help="write all figures here")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    x = torch.randn(args.batch, 3, args.clip_len, args.size, args.size, generator=torch.Generator().manual_seed(0))
    from actionrec.models.flops import count_flops

    t_build = time.perf_counter()
    fns, notes, eager = build_variants(args, x)
    gflop = count_flops(eager, (1, *x.shape[1:])) / 1e9
    print(f"built {len(fns)} variants in {time.perf_counter() - t_build:.0f} s; {gflop:.2f} GFLOP/clip; "
          f"input {tuple(x.shape)}, {args.threads} threads", file=sys.stderr)

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
        print(f"round {r + 1}/{args.rounds}: foreign CPU {fg.cores:.2f} cores", file=sys.stderr)

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
    for name, n in notes.items():
        print(f"- {name}: {json.dumps(n)}")
    if args.json:
        from actionrec.io import write_text_atomic

        write_text_atomic(args.json, json.dumps({
            "args": vars(args), "gflop_per_clip": gflop, "peak_gflops": peak, "foreign_cores": foreign,
            "times_s": times, "rows": rows, "notes": notes, "cpu": _cpu(),
        }, indent=2))
    return 0


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _cpu() -> str:
    from actionrec.deploy.bench import machine_info

    m = machine_info()
    return f"{m['cpu']} ({m['logical_cpus']} logical CPUs)"


if __name__ == "__main__":
    sys.exit(main())
