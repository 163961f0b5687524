"""CPU inference of our models on every backend: our fastest exact path vs the eager network vs the FP32 peak,
and (``--openvino``) OpenVINO side by side.

One run, same machine, interleaved rounds (every model × variant once per round, in a fresh random order);
figures are medians over rounds, speedups are medians of per-round ratios to the same model's eager.
Each model runs at its own input (``meta.preprocess``: R(2+1)D-18 16×112², I3D 64×224², X3D-XS 4×160²,
X3D-S 13×160², X3D-M 16×224²).

    python benchmarks/bench_cpu_inference.py                 # R(2+1)D-18, batch 8, 2 threads, 5 rounds
    python benchmarks/bench_cpu_inference.py --models r2plus1d_18,i3d,x3d_xs,x3d_s,x3d_m --batch 1 --openvino --rounds 3
    python benchmarks/bench_cpu_inference.py --compile       # also torch.compile + freezing (slow to compile)
    python benchmarks/bench_cpu_inference.py --json out.json
    python benchmarks/bench_cpu_inference.py --compile --first-prediction   # + process start → first logits per path

Variants: ``peak`` (torch.matmul 4096², FP32), ``eager`` (create_model("r2plus1d_18"), eval, NCTHW, nothing else),
``optimized`` (Conv+BN folding + channels_last_3d), ``compile`` (optimized + torch.compile with inductor
freezing), ``pt2`` (our AOTInductor package, ``actionrec export --format pt2``), ``pt2-int8`` (PT2E int8 package),
``ort-fp32`` (our ONNX export in ONNX Runtime), ``torch-int8`` (FX static x86), ``ort-int8`` (static QDQ),
``openvino`` / ``openvino-int8`` (``--openvino``: our ONNX export in OpenVINO's CPU plugin, f32 precision / NNCF PTQ).
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


def build_variants(args, x: torch.Tensor, arch: str = "r2plus1d_18") -> tuple[dict, dict, torch.nn.Module, Path]:
    from actionrec.deploy.optimize import optimize_for_cpu
    from actionrec.factory import create_model

    torch.manual_seed(0)
    eager = create_model(arch).eval()
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
    d = Path(tempfile.mkdtemp(prefix=f"bench-cpu-{arch}-"))
    if not args.no_pt2:
        from actionrec.deploy.pt2 import export_pt2, load_pt2

        t = time.perf_counter()
        rep = export_pt2(eager, d / "m.pt2", example=x)
        fns["pt2"] = load_pt2(d / "m.pt2")
        notes["pt2"] = {"setup_s": round(time.perf_counter() - t, 2), "export_s": rep.export_s, "compile_s": rep.compile_s,
                        "load_s": fns["pt2"].info["load_s"], "size_mb": rep.size_mb, "input_dims": rep.input_dims}
        if not args.no_int8:
            from actionrec.deploy.quantize import quantize_pt2e

            calib = torch.randn(8, *x.shape[1:], generator=torch.Generator().manual_seed(1))
            t = time.perf_counter()
            try:
                quantize_pt2e(eager, d / "m.int8.pt2", clips=calib, max_calib=4)
                fns["pt2-int8"] = load_pt2(d / "m.int8.pt2")
                notes["pt2-int8"] = {"setup_s": round(time.perf_counter() - t, 2), "calibration": "4 random clips (speed only)"}
            except Exception as e:  # noqa: BLE001 - e.g. no 3-D convolution quantised: reported, not timed
                notes["pt2-int8"] = {"skipped": str(e)}
    if not args.no_ort or not args.no_ort_int8 or args.openvino:
        from actionrec.deploy.onnx_export import export_onnx
        from actionrec.deploy.predictor import onnx_backend
        from actionrec.runtime import Runtime

        t = time.perf_counter()
        rep = export_onnx(eager, d / "m.onnx", example=x[:1])
        notes["ort-fp32"] = {"export_s": round(time.perf_counter() - t, 2), "export_max_abs_diff": rep.max_abs_diff}
        if not args.no_ort:
            fns["ort-fp32"] = onnx_backend(d / "m.onnx", eager.meta, runtime=Runtime(threads=args.threads or 1), optimize=True)
    if not args.no_int8:
        from actionrec.deploy.quantize import quantize_torch

        calib = torch.randn(8, *x.shape[1:], generator=torch.Generator().manual_seed(1))
        t = time.perf_counter()
        try:
            q, _ = quantize_torch(eager, clips=calib, max_calib=4)
            notes["torch-int8"] = {"setup_s": round(time.perf_counter() - t, 2), "calibration": "4 random clips (speed only)"}
            fns["torch-int8"] = q
        except Exception as e:  # noqa: BLE001 - e.g. FX int8 on X3D's depthwise convolutions: reported, not timed
            notes["torch-int8"] = {"skipped": f"{type(e).__name__}: {e}"}
    if not args.no_ort_int8:
        from actionrec.deploy.quantize import quantize_onnx

        t = time.perf_counter()
        quantize_onnx(d / "m.onnx", d / "m.int8.onnx", clips=calib, max_calib=4, num_threads=args.threads)
        notes["ort-int8"] = {"setup_s": round(time.perf_counter() - t, 2), "calibration": "4 random clips (speed only)"}
        fns["ort-int8"] = onnx_backend(d / "m.int8.onnx", eager.meta, runtime=Runtime(threads=args.threads or 1), optimize=True)
    if args.openvino:
        from actionrec.deploy.backends import load_backend
        from actionrec.runtime import Runtime

        rt = Runtime(threads=args.threads or 1)
        t = time.perf_counter()
        fns["openvino"] = load_backend(d / "m.onnx", backend="openvino", runtime=rt)
        notes["openvino"] = {"setup_s": round(time.perf_counter() - t, 2), "version": fns["openvino"].info.get("openvino")}
        if not args.no_int8:
            calib = torch.randn(8, *x.shape[1:], generator=torch.Generator().manual_seed(1))
            t = time.perf_counter()
            fns["openvino-int8"] = load_backend(d / "m.onnx", backend="openvino-int8", runtime=rt, calib=calib)
            notes["openvino-int8"] = {"setup_s": round(time.perf_counter() - t, 2), "calibration": "8 random clips (speed only)",
                                      "int8": fns["openvino-int8"].info.get("int8")}
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
    ap.add_argument("--models", default="r2plus1d_18", help="comma-separated architectures [r2plus1d_18]")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--clip-len", type=int, default=None, help="frames per clip (default: each model's)")
    ap.add_argument("--size", type=int, default=None, help="crop size (default: each model's)")
    ap.add_argument("--compile", action="store_true", help="include torch.compile + freezing (tens of seconds to compile)")
    ap.add_argument("--openvino", action="store_true", help="include OpenVINO fp32 and (unless --no-int8) NNCF int8")
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
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    if len(models) > 1 and (args.profile or args.first_prediction):
        ap.error("--profile and --first-prediction take one model")

    from actionrec.factory import create_model
    from actionrec.models.flops import count_flops
    from actionrec.runtime import resolve_runtime

    resolve_runtime(threads=args.threads, interop_threads=1).apply()
    inputs, fns, notes, gflop, exact, eagers, workdirs = {}, {}, {}, {}, {}, {}, {}
    for arch in models:
        pre = create_model(arch).meta.preprocess
        shape = (args.batch, 3, args.clip_len or pre.clip_len, args.size or pre.crop_size, args.size or pre.crop_size)
        x = inputs[arch] = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        t_build = time.perf_counter()
        f, notes[arch], eagers[arch], workdirs[arch] = build_variants(args, x, arch)
        fns.update({(arch, n): fn for n, fn in f.items()})
        gflop[arch] = count_flops(eagers[arch], (1, *x.shape[1:])) / 1e9
        print(f"{arch}: built {len(f)} variants in {time.perf_counter() - t_build:.0f} s; {gflop[arch]:.2f} GFLOP/clip; "
              f"input {tuple(x.shape)}, {args.threads} threads; setup {json.dumps(notes[arch])}", file=sys.stderr, flush=True)
        with torch.inference_mode():  # exactness (and warm-up)
            ref = eagers[arch](x)
            for name, fn in f.items():
                out = fn(x)
                exact[(arch, name)] = {
                    "max_abs_diff": float((out.double() - ref.double()).abs().max()),
                    "top1_agree_random_input": float((out.argmax(1) == ref.argmax(1)).float().mean()),
                }
    a = torch.randn(args.peak_n, args.peak_n)
    b = torch.randn(args.peak_n, args.peak_n)
    peak_flop = 2 * args.peak_n**3
    a @ b

    times: dict[tuple[str, str], list[float]] = {k: [] for k in fns}
    peak: list[float] = []
    foreign: list[float] = []
    rng = random.Random(0)
    t_run = time.perf_counter()
    for r in range(args.rounds):
        order: list = ["peak", *fns]
        rng.shuffle(order)
        with Foreign() as fg, torch.inference_mode():
            for key in order:
                if key == "peak":
                    best = min(_timed(lambda: a @ b) for _ in range(3))
                    peak.append(peak_flop / best / 1e9)
                else:
                    times[key].append(_timed(lambda: fns[key](inputs[key[0]])))
        foreign.append(round(fg.cores, 2))
        so_far = ", ".join(f"{a_}/{n} {args.batch / statistics.median(ts):.2f} clips/s" for (a_, n), ts in times.items())
        print(f"round {r + 1}/{args.rounds}: foreign CPU {fg.cores:.2f} cores; peak {statistics.median(peak):.0f} GFLOP/s; "
              f"so far: {so_far}", file=sys.stderr, flush=True)

    peak_med = statistics.median(peak)
    rows = []
    for (arch, name), ts in times.items():
        eager_ts = times[(arch, "eager")]
        cps = [args.batch / t for t in ts]
        ratios = [te / t for te, t in zip(eager_ts, ts)]
        pct = [args.batch / t * gflop[arch] / p * 100 for t, p in zip(ts, peak)]
        rows.append({
            "model": arch, "variant": name, "clips_per_s": statistics.median(cps), "min": min(cps), "max": max(cps),
            "speedup_vs_eager": statistics.median(ratios), "speedup_min": min(ratios), "speedup_max": max(ratios),
            "gflops": statistics.median(cps) * gflop[arch], "pct_of_peak": statistics.median(pct), **exact[(arch, name)],
        })

    print(f"\n### CPU inference, batch {args.batch}, {args.threads} threads, {args.rounds} interleaved rounds")
    print(f"\n{_cpu()}; torch {torch.__version__}; GFLOP per clip (2 per multiply-add): "
          + ", ".join(f"{m} {gflop[m]:.2f} at {tuple(inputs[m].shape[2:])}" for m in models))
    print(f"FP32 peak (torch.matmul {args.peak_n}², best of 3 per round): median **{peak_med:.0f} GFLOP/s** "
          f"(min {min(peak):.0f}, max {max(peak):.0f})\n")
    print("| model | variant | clips/s (median) | min–max | speedup vs its eager (paired median, min–max) | GFLOP/s | % of same-round peak | max abs Δlogit vs eager |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['model']} | {r['variant']} | {r['clips_per_s']:.2f} | {r['min']:.2f}–{r['max']:.2f} | ×{r['speedup_vs_eager']:.2f} "
              f"({r['speedup_min']:.2f}–{r['speedup_max']:.2f}) | {r['gflops']:.0f} | {r['pct_of_peak']:.0f}% | {r['max_abs_diff']:.1e} |")
    summary = _targets(rows, times, args.batch)
    for line in summary:
        print(line)
    print(f"\nforeign CPU per round (cores): {foreign}; timed part {time.perf_counter() - t_run:.0f} s")
    arch0 = models[0]
    single = {n: fns[(arch0, n)] for (a_, n) in fns if a_ == arch0}
    profiles = profile_variants({n: single[n] for n in ("optimized", "pt2") if n in single}, inputs[arch0]) if args.profile else {}
    first: dict[str, float] = {}
    if args.first_prediction:
        from actionrec.checkpoint import save_model

        args.clip_len, args.size = inputs[arch0].shape[2], inputs[arch0].shape[3]
        ckpt = save_model(eagers[arch0], workdirs[arch0] / "m.safetensors")
        for name in ["eager", "optimized", *(["compile"] if args.compile else []), *(["pt2"] if "pt2" in single else [])]:
            src = workdirs[arch0] / "m.pt2" if name == "pt2" else ckpt
            first[name] = round(first_prediction(name, src, args), 2)
            print(f"first prediction {name}: {first[name]} s", file=sys.stderr, flush=True)
        print("\n| path | process start → first logits (batch 1), s |\n|---|---|")
        for name, secs in first.items():
            print(f"| {name} | {secs:.1f} |")
    for arch, n in notes.items():
        print(f"- {arch}: {json.dumps(n)}")
    if args.json:
        from actionrec.io import write_text_atomic

        write_text_atomic(args.json, json.dumps({
            "args": vars(args), "gflop_per_clip": gflop, "inputs": {m: list(inputs[m].shape[1:]) for m in models}, "peak_gflops": peak, "foreign_cores": foreign,
            "times_s": {f"{a_}/{n}": ts for (a_, n), ts in times.items()}, "rows": rows, "notes": notes, "cpu": _cpu(),
            "first_prediction_s": first, "profiles": profiles, "targets": summary,
        }, indent=2))
    return 0


def _targets(rows: list[dict], times: dict, batch: int) -> list[str]:
    """The issue's targets: X3D-S best ≥ 8× R(2+1)D-18 eager; our best within 10% of OpenVINO per model."""
    out = ["", "Targets:"]
    best = {}
    for r in rows:
        if not r["variant"].startswith("openvino"):
            b = best.get(r["model"])
            if b is None or r["clips_per_s"] > b["clips_per_s"]:
                best[r["model"]] = r
    if "x3d_s" in best and ("r2plus1d_18", "eager") in times:
        # paired per round: X3D-S's best variant against R(2+1)D-18 eager in the same round
        bx = best["x3d_s"]
        ratio = statistics.median(te / tx for te, tx in zip(times[("r2plus1d_18", "eager")], times[("x3d_s", bx["variant"])]))
        out.append(f"- X3D-S on our best backend ({bx['variant']}, {bx['clips_per_s']:.2f} clips/s) vs R(2+1)D-18 eager: "
                   f"×{ratio:.1f} (target ≥ 8)")
    for model, b in best.items():
        ovs = [r for r in rows if r["model"] == model and r["variant"].startswith("openvino")]
        for ov in ovs:
            ratio = statistics.median(to / tb for to, tb in zip(times[(model, ov["variant"])], times[(model, b["variant"])]))
            out.append(f"- {model}: our best ({b['variant']}) vs {ov['variant']}: ×{ratio:.2f} (≥ 0.90 is within 10% or ahead)")
    return out


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
