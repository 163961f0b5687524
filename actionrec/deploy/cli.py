"""``actionrec export`` and ``actionrec bench``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from actionrec.errors import UsageError
from actionrec.options import (add_backend_args, add_preprocess_args, add_runtime_args, float_arg, int_arg,
                               preprocess_overrides, runtime_from_args)


def _ints(s: str) -> list[int]:
    try:
        vals = [int(v) for v in s.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {s!r}") from None
    if not vals or min(vals) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {s!r}")
    return vals


def add_parsers(sub) -> None:  # noqa: ANN001
    p = sub.add_parser(
        "export",
        help="export a checkpoint to ONNX or a compiled .pt2 package (parity-checked against PyTorch; optional int8)",
        description="Export CKPT to ONNX (--format onnx) or to an AOTInductor package (--format pt2: compiled kernels, "
        "no compile at load time) with a dynamic batch axis and the model's metadata, check it against PyTorch "
        "(max |Δlogit| above --tol is an error, nothing is written) and optionally write a static int8 version "
        "calibrated on real clips (ORT QDQ for onnx, PT2E for pt2), reporting its top-1 agreement with fp32.",
    )
    p.add_argument("checkpoint", metavar="MODEL", help="our .safetensors checkpoint or a weight-set name (an architecture name: "
                   "random weights, for testing)")
    p.add_argument("--format", choices=["onnx", "pt2"], default="onnx")
    p.add_argument("-o", "--output", help="destination .onnx / .pt2 file")
    p.add_argument("--cache", action="store_true", help="pt2: write the package next to the checkpoint, keyed on its hash, "
                   "torch and the CPU; predict/eval/stream/serve then use it by default")
    p.add_argument("--batch", type=int, default=2, help="batch size of the traced and checked input (axis stays dynamic)")
    p.add_argument("--opset", type=int, default=18)
    p.add_argument("--static-time", action="store_true", help="fix the clip length instead of making it dynamic")
    p.add_argument("--no-check", action="store_true", help="skip the ONNX Runtime parity check")
    p.add_argument("--tol", type=float, default=1e-3, help="largest accepted max |Δlogit| (default 1e-3)")
    p.add_argument("--int8", action="store_true", help="also write OUTPUT.int8.onnx (ORT static QDQ) or OUTPUT.int8.pt2 (PT2E), calibrated on --calib")
    p.add_argument("--calib", nargs="+", metavar="VIDEO", help="videos or folders of real clips for int8 calibration")
    p.add_argument("--calib-step", type=int, help="frames between calibration windows (default: clip length)")
    p.add_argument("--calib-max", type=int, default=32, help="at most this many calibration windows (default 32)")
    p.add_argument("--int8-stem", action="store_true", help="int8: quantise the stem convolution too (kept fp32 by default: "
                   "normalised 8-bit video sits off the u8 grid); much faster for I3D, check the printed agreement")
    p.add_argument("--json", metavar="PATH", help="also write the export report as JSON")
    p.set_defaults(func=_export)

    b = sub.add_parser(
        "bench",
        help="clips/s and latency per backend and batch size (Markdown + JSON)",
        description="Benchmark MODEL (a checkpoint, .onnx, .pt2, a weight-set name, or an architecture name: random weights) "
        "over the backends that run it here: the same backend names as predict, eval and serve.",
    )
    b.add_argument("source", metavar="MODEL", help="checkpoint, .onnx file, .pt2 package, weight-set or architecture name")
    add_backend_args(b, several=True)
    add_runtime_args(b)
    add_preprocess_args(b)
    b.add_argument("--batch-sizes", type=_ints, default=[1, 4, 8, 16, 32], help="default 1,4,8,16,32")
    b.add_argument("--num-classes", type=int_arg(1, 100_000), help="head size for an architecture name")
    b.add_argument("--min-calls", type=int_arg(1, 10_000), default=3)
    b.add_argument("--min-time", type=float_arg(), default=2.0, help="seconds of timed calls per cell, at least")
    b.add_argument("-o", "--output", default="bench.md", help="Markdown table (default bench.md)")
    b.add_argument("--json", default=None, help="JSON record (default: OUTPUT with .json)")
    b.set_defaults(func=_bench)


def _export(args: argparse.Namespace) -> int:
    from actionrec.deploy.onnx_export import export_onnx

    from actionrec.runtime import resolve_runtime

    runtime = resolve_runtime().apply()

    from actionrec.deploy.source import resolve_model

    source = resolve_model(args.checkpoint, allow_arch=True)
    if source.kind in ("onnx", "pt2"):
        raise UsageError(f"{args.checkpoint}: already an exported {source.kind} file; export from the checkpoint")
    if source.kind == "arch":
        print(f"note: {args.checkpoint!r} is not a checkpoint file; exporting the architecture with random weights")
    model = source.torch_model()
    src = Path(args.checkpoint)
    if args.batch < 1:
        raise UsageError(f"--batch must be ≥ 1, got {args.batch}")
    if args.int8 and not args.calib:
        raise UsageError("--int8 needs --calib VIDEO... (real clips to calibrate on and to measure top-1 agreement)")
    if args.cache:
        if args.format != "pt2" or not src.is_file():
            raise UsageError("--cache needs --format pt2 and a checkpoint file")
        from actionrec.deploy.pt2 import cached_pt2_path

        out = cached_pt2_path(src)
    elif args.output:
        out = Path(args.output)
    else:
        raise UsageError("give -o/--output (or --cache with --format pt2)")
    dynamic_time = False if args.static_time else None
    if args.format == "pt2":
        from actionrec.deploy.pt2 import export_pt2

        report = export_pt2(model, out, batch=args.batch, check=not args.no_check, dynamic_time=dynamic_time, tol=args.tol)
        print(f"wrote {out} ({report.size_mb:.1f} MiB; input ranges {report.input_dims}; "
              f"export {report.export_s:.1f} s, compile {report.compile_s:.1f} s)")
    else:
        report = export_onnx(model, out, batch=args.batch, check=not args.no_check, opset=args.opset,
                             dynamic_time=dynamic_time, tol=args.tol)
        axes = ", ".join(f"{k}={v}" for k, v in report.dynamic_axes.items())
        print(f"wrote {out} (opset {report.opset}, dynamic axes {axes}, {report.export_s:.1f} s)")
    if report.max_abs_diff is not None:
        print(f"parity vs PyTorch: max |Δlogit| {report.max_abs_diff:.2e} over inputs {report.checked_shapes} (tolerance {args.tol:g})")
    record = {"export": report.to_dict()}
    if args.int8 and args.format == "pt2":
        from actionrec.deploy.clips import collect_clips
        from actionrec.deploy.quantize import quantize_pt2e

        clips = collect_clips(args.calib, model.meta, step=args.calib_step, max_clips=4 * args.calib_max)
        q_out = out.with_suffix(".int8.pt2")
        qrep = quantize_pt2e(model, q_out, clips=clips, max_calib=args.calib_max, keep_fp32=() if args.int8_stem else None)
        print(f"wrote {q_out}: {qrep.summary()}")
        record["int8"] = qrep.to_dict()
    elif args.int8:
        from actionrec.deploy.clips import collect_clips
        from actionrec.deploy.quantize import quantize_onnx

        clips = collect_clips(args.calib, model.meta, step=args.calib_step, max_clips=4 * args.calib_max)
        q_out = out.with_suffix(".int8.onnx")
        qrep = quantize_onnx(out, q_out, clips=clips, max_calib=args.calib_max, num_threads=runtime.threads,
                             keep_stem_fp32=not args.int8_stem)
        print(f"wrote {q_out}: {qrep.summary()}")
        record["int8"] = qrep.to_dict()
    if args.json:
        from actionrec.io import write_text_atomic

        write_text_atomic(args.json, json.dumps(record, indent=2) + "\n")
    return 0


def _bench(args: argparse.Namespace) -> int:
    from actionrec.deploy.bench import run_bench, to_markdown, write_bench
    from actionrec.deploy.source import resolve_model

    src = resolve_model(args.source, allow_arch=True, num_classes=args.num_classes)
    runtime = runtime_from_args(args)
    overrides = preprocess_overrides(args)
    shape = calib = None
    if overrides or args.calib:
        meta = src.meta
        pre = meta.preprocess.override(arch=meta.arch, **overrides)
        shape = [meta.in_channels, pre.clip_len, pre.crop_size, pre.crop_size]
        if args.calib:
            import dataclasses

            from actionrec.deploy.clips import collect_clips

            calib = collect_clips(args.calib, dataclasses.replace(meta, preprocess=pre), max_clips=16)
    result = run_bench(src, backends=args.backends, batch_sizes=args.batch_sizes, runtime=runtime,
                       optimize=False if args.no_optimize else None, input_shape=shape, min_calls=args.min_calls,
                       min_time_s=args.min_time, calib=calib, num_classes=args.num_classes, progress=True)
    json_path = args.json or str(Path(args.output).with_suffix(".json"))
    write_bench(result, markdown=args.output, json_path=json_path)
    print(to_markdown(result))
    print(f"wrote {args.output} and {json_path}")
    return 0
