"""Int8 on real clips: DeepMind's I3D (converted) over every 64-frame window of the real videos, fp32 vs int8.

Reports top-1 agreement with fp32 of PT2E int8 (a compiled .pt2 package), ONNX Runtime static QDQ int8 and
PyTorch FX static int8 (all windows, and the windows not used for calibration), and the speed of eager /
optimized / ORT fp32 / the int8 variants at batch 1 (interleaved rounds).

    python benchmarks/bench_cpu_int8_i3d.py                       # checkpoint from actionrec.hub (converted once)
    python benchmarks/bench_cpu_int8_i3d.py --flows pt2e --rounds 3
    python benchmarks/bench_cpu_int8_i3d.py --ckpt i3d.safetensors --videos a.mp4 b.avi --step 16
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import torch

warnings.filterwarnings("ignore")

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"  # the project's ../shared
DEFAULT_VIDEOS = [
    SHARED / "i3d_cricket" / "v_CricketShot_g04_c01_rgb.gif",
    SHARED / "videos" / "applyeyemakeup_xvid.avi",
    SHARED / "videos" / "cleaning_pool_h264.mp4",
    SHARED / "videos" / "ntu_drink_water_1080p_h264.avi",
    SHARED / "videos" / "short_32frames_h264.mp4",
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ckpt", help="converted I3D checkpoint (default: actionrec.hub's kinetics400)")
    ap.add_argument("--videos", nargs="+", default=[str(p) for p in DEFAULT_VIDEOS if p.exists()])
    ap.add_argument("--step", type=int, default=16, help="frames between window starts (default 16)")
    ap.add_argument("--max-calib", type=int, default=8, help="calibration windows (every other window, at most this many)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3, help="speed rounds (batch 1); 0 = agreement only")
    ap.add_argument("--quantize-stem", action="store_true", help="ORT/PT2E: quantise the stem convolution too")
    ap.add_argument("--flows", default="pt2e,ort,fx", help="int8 flows to run (comma-separated subset of pt2e, ort, fx)")
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    from actionrec.runtime import resolve_runtime

    resolve_runtime(threads=args.threads).apply()

    from actionrec.factory import load_model
    from actionrec.deploy.clips import collect_clips
    from actionrec.deploy.onnx_export import export_onnx
    from actionrec.deploy.optimize import optimize_for_cpu
    from actionrec.deploy.predictor import onnx_backend
    from actionrec.runtime import Runtime
    from actionrec.deploy.pt2 import load_pt2
    from actionrec.deploy.quantize import quantize_onnx, quantize_pt2e, quantize_torch

    if args.ckpt is None:
        from actionrec.hub import pretrained_path

        args.ckpt = str(pretrained_path("i3d", "kinetics400"))
    model = load_model(args.ckpt)
    meta = model.meta
    clips = collect_clips(args.videos, meta, step=args.step)
    print(f"{len(clips)} windows of {meta.preprocess.clip_len} frames (step {args.step}) from {len(args.videos)} videos",
          file=sys.stderr)

    flows = {f.strip() for f in args.flows.split(",") if f.strip()}
    d = Path(tempfile.mkdtemp(prefix="bench-i3d-"))
    result = {"windows": len(clips), "speed": {}}
    fns = {"eager": model.eval(), "optimized": optimize_for_cpu(model, example=clips[:1])}
    print(f"\n### I3D (DeepMind Kinetics-400, converted) int8 vs fp32 on real windows, {args.threads} threads\n")
    if "pt2e" in flows:
        t = time.perf_counter()
        try:
            prep = quantize_pt2e(model, d / "i3d.int8.pt2", clips=clips, max_calib=args.max_calib, batch=1,
                                 keep_fp32=() if args.quantize_stem else None)
            print(f"- {prep.summary()} ({time.perf_counter() - t:.0f} s, compiled package)")
            result["pt2e_int8"] = prep.to_dict()
            fns["pt2-int8"] = load_pt2(d / "i3d.int8.pt2")
        except Exception as e:  # noqa: BLE001 - reported, not silent
            print(f"- PT2E int8: not available ({e})")
            result["pt2e_int8"] = {"error": str(e)}
    if "ort" in flows:
        t = time.perf_counter()
        rep = export_onnx(model, d / "i3d.onnx", example=clips[:1])
        print(f"- ONNX export parity: max |Δlogit| {rep.max_abs_diff:.2e} ({time.perf_counter() - t:.0f} s)")
        t = time.perf_counter()
        qrep = quantize_onnx(d / "i3d.onnx", d / "i3d.int8.onnx", clips=clips, max_calib=args.max_calib, batch=1,
                             num_threads=args.threads, keep_stem_fp32=not args.quantize_stem)
        print(f"- {qrep.summary()} ({time.perf_counter() - t:.0f} s)")
        result.update(export=rep.to_dict(), int8=qrep.to_dict())
        fns["ort-fp32"] = onnx_backend(d / "i3d.onnx", meta, runtime=Runtime(threads=args.threads or 1), optimize=True)
        fns["ort-int8"] = onnx_backend(d / "i3d.int8.onnx", meta, runtime=Runtime(threads=args.threads or 1), optimize=True)
    if "fx" in flows:
        t = time.perf_counter()
        fns["torch-int8"], tqrep = quantize_torch(model, clips=clips, max_calib=args.max_calib, batch=1)
        print(f"- {tqrep.summary()} ({time.perf_counter() - t:.0f} s)")
        result["torch_int8"] = tqrep.to_dict()

    if args.rounds:
        x = clips[:1]
        with torch.inference_mode():
            for fn in fns.values():
                fn(x)
        times = {n: [] for n in fns}
        rng = random.Random(0)
        for _ in range(args.rounds):
            order = list(fns)
            rng.shuffle(order)
            for n in order:
                with torch.inference_mode():
                    t = time.perf_counter()
                    fns[n](x)
                    times[n].append(time.perf_counter() - t)
        from actionrec.models.flops import count_flops

        gflop = count_flops(model, tuple(x.shape)) / 1e9
        print(f"\n{gflop:.0f} GFLOP per 64×224² clip; batch 1; {args.rounds} interleaved rounds\n")
        print("| variant | clips/s (median) | speedup vs eager (paired median) | GFLOP/s |")
        print("|---|---|---|---|")
        for n, ts in times.items():
            cps = statistics.median(1 / t for t in ts)
            ratio = statistics.median(te / t for te, t in zip(times["eager"], ts))
            print(f"| {n} | {cps:.3f} | ×{ratio:.2f} | {cps * gflop:.0f} |")
            result["speed"][n] = {"clips_per_s": cps, "speedup": ratio, "times_s": ts}
    if args.json:
        from actionrec.io import write_text_atomic

        write_text_atomic(args.json, json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
