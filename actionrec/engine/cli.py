"""CLI subcommands: ``train``, ``eval``, ``fuse``, ``predict``, ``stream``, ``demo``."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

from actionrec.data.formats import format_names
from actionrec.errors import UsageError
from actionrec.meta import LIMITS
from actionrec.options import (add_backend_args, add_engine_args, add_preprocess_args, add_runtime_args, add_threads_arg,
                               backend_kwargs, engine_from_args, float_arg, int_arg, preprocess_overrides,
                               runtime_from_args, span_arg)

MAX_CLIPS = LIMITS["clips"]


def add_parsers(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("train", help="train a model from a YAML recipe (also under torchrun for several processes)")
    p.add_argument("config", help="recipe YAML (see configs/)")
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="override fields, e.g. optimizer.lr=0.01 data.clip_len=8 (may be repeated)")
    p.add_argument("--output-dir", help="shorthand for --set output_dir=DIR")
    p.add_argument("--pretrained", metavar="NAME_OR_PATH", help="start from these weights: a weight-set name (`actionrec weights list`) "
                   "or a checkpoint; shorthand for --set model.pretrained=NAME_OR_PATH")
    p.add_argument("--max-steps", type=int_arg(1), metavar="N", help="at most N optimiser steps per epoch (smoke runs); "
                   "shorthand for --set train.max_steps_per_epoch=N")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT", help="continue a run (newest checkpoint of output_dir, or CKPT)")
    p.add_argument("--stop-after-epoch", type=int_arg(1), default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate one or more models (clip- and video-level accuracy, agreement with a reference)",
                       description="Evaluate MODELs (checkpoints, .onnx, .pt2, weight-set names) with any backend on a dataset; "
                       "--reference FLOAT_MODEL also reports how far each is from the float model on the same clips.")
    p.add_argument("checkpoints", nargs="+", metavar="MODEL", help="checkpoints (.safetensors), .onnx, .pt2 or weight-set names")
    _data_args(p)
    p.add_argument("--subset", default="val", choices=["train", "val", "test"])
    p.add_argument("--clips", type=int_arg(1, MAX_CLIPS), default=10, help="clips per video (default 10)")
    p.add_argument("--crops", type=int, default=3, choices=[1, 3], help="spatial crops per clip (default 3)")
    p.add_argument("--batch-size", type=int_arg(1, 1024), default=4, help="videos per batch")
    p.add_argument("--out", default="eval", help="output directory (one subfolder per checkpoint when several, named after it)")
    p.add_argument("--reference", metavar="FLOAT_MODEL", help="also score this float model on the same views and report "
                   "top-1 agreement and the largest logit difference (e.g. the checkpoint an ONNX/pt2/int8 file was exported from)")
    add_backend_args(p)
    add_runtime_args(p)
    p.set_defaults(func=_eval)

    p = sub.add_parser("fuse", help="combine saved predictions (e.g. RGB + flow) with weights")
    p.add_argument("predictions", nargs="+", help="predictions.npz files written by `actionrec eval`")
    p.add_argument("--weights", type=float_arg(), nargs="+", help="one weight per file, >= 0 (default: equal)")
    p.add_argument("--on", choices=["probs", "logits"], default="probs", help="sum softmax probabilities or logits")
    p.add_argument("--out", default="eval_fused", help="output directory")
    p.set_defaults(func=_fuse)

    p = sub.add_parser(
        "predict", help="top-k actions of videos: files, folders, globs or a list; one row per video with --output",
        description="Top-k actions of one video, or of a whole collection (resumable, shardable). "
        "MODEL is a checkpoint, an ONNX file or a known pretrained name (`actionrec models`).",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("inputs", nargs="*", metavar="INPUT", help="video files, folders (searched recursively) or glob patterns")
    p.add_argument("--list", dest="list_file", metavar="FILE", help="a file with one video path per line")
    p.add_argument("--output", metavar="FILE", help="write one row per video to FILE (.jsonl or .csv); a rerun skips videos already in it")
    p.add_argument("--shard", metavar="i/N|auto", help="predict only shard i (0-based) of N; output goes to FILE.part-i-of-N.EXT "
                   "(auto: from torchrun/SLURM variables)")
    p.add_argument("--topk", type=int_arg(1, 10_000), default=5, help="labels per video (default 5)")
    p.add_argument("--clips", type=int_arg(0, MAX_CLIPS), default=0, help=f"clips per video (0: from its length, up to 10; at most {MAX_CLIPS})")
    p.add_argument("--crops", type=int, default=1, choices=[1, 3], help="spatial crops per clip (default 1)")
    p.add_argument("--workers", type=int_arg(0, 64), default=None, help="decoding processes for several videos (default: cores/4, 1-4)")
    p.add_argument("--batch-size", type=int_arg(1, 1024), default=None,
                   help="clips per forward pass, across videos (default 2 on the CPU, 16 on a GPU)")
    p.add_argument("--json", action="store_true", help="print JSON (one object per video, with timings and the runtime)")
    p.add_argument("--out", help="one video only: write it with the prediction drawn on it (.gif or .mp4)")
    _segment_args(p)
    add_backend_args(p)
    add_runtime_args(p)
    add_preprocess_args(p)
    add_engine_args(p)
    p.set_defaults(func=_predict)

    p = sub.add_parser("stream", help="predictions over time on a long video or a camera (index, e.g. 0)")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("source", help="video file or camera index")
    p.add_argument("--step", type=int_arg(1, 100_000), default=None, help="frames between predictions (default: half a window)")
    p.add_argument("--smooth", type=int_arg(1, 1000), default=3, help="windows averaged (default 3)")
    p.add_argument("--topk", type=int_arg(1, 10_000), default=3)
    p.add_argument("--max-frames", type=int_arg(1, 10**9), default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object per prediction")
    p.add_argument("--out", help="also write the annotated video (.gif or .mp4)")
    add_backend_args(p)
    add_runtime_args(p)
    add_preprocess_args(p)
    p.set_defaults(func=_stream)

    p = sub.add_parser("demo", help="synthetic data -> train a small model on the CPU -> evaluate -> annotated prediction")
    p.add_argument("--out", default="actionrec-demo", help="output directory (default ./actionrec-demo)")
    p.add_argument("--fast", action="store_true", help="a one-minute smoke version (low accuracy)")
    add_threads_arg(p, default_help="one per core, less one for the data-loading process")
    p.set_defaults(func=_demo)


def _segment_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("long videos: labelled time segments (--segments)")
    g.add_argument("--segments", action="store_true", help="slide the model's clip over each video and print (or write to "
                   "--output) the segments (label, start, end, score) and each window's top-k, as JSON")
    g.add_argument("--window", type=span_arg(), metavar="SECONDS|Nf", help="window length: seconds (2.5) or frames "
                   "(32f); default the model's clip span")
    g.add_argument("--window-stride", type=span_arg(), metavar="SECONDS|Nf", help="between window starts: seconds or "
                   "frames (16f); default half the window")
    g.add_argument("--smooth", type=int_arg(1, 1000), default=None, help="windows averaged (centred; default 3)")
    g.add_argument("--threshold", type=float_arg(high=1.0), default=None, metavar="P",
                   help="below this best score a window is 'no confident action' (default 0.3)")
    g.add_argument("--min-segment", type=float_arg(), default=None, metavar="SECONDS",
                   help="shorter runs join a neighbour or are dropped (default 1.0)")
    g.add_argument("--subtitles", metavar="FILE", help="one video: also write the segments as WebVTT (.vtt) or SRT (.srt) cues")


def _data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (a recipe's data section, or the options below)")
    g.add_argument("--config", help="recipe YAML whose data section to use")
    g.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help="overrides for --config (e.g. data.root=...; may be repeated)")
    g.add_argument("--root", help="videos directory (data.root)")
    g.add_argument("--list", help="list file '<path> <label index>' (data.val_list, format 'list'), or a .csv of "
                   "'file,label name' (format 'csv': names matched to the model's classes; paths under --root, "
                   "default the CSV's folder)")
    g.add_argument("--format", choices=format_names(), help="data.format")
    g.add_argument("--annotations", help="data.annotations (ucf101/hmdb51 split folder, kinetics csv)")
    g.add_argument("--split", type=int_arg(1), help="data.split")
    g.add_argument("--workers", type=int_arg(0, 1024), help="data.num_workers (0: decode in this process)")


def _predictor(args: argparse.Namespace, **kwargs):  # noqa: ANN003, ANN202
    from actionrec.inference import Predictor

    return Predictor(args.model, runtime=runtime_from_args(args), **backend_kwargs(args), **preprocess_overrides(args),
                     **kwargs)


def _train(args: argparse.Namespace) -> int:
    from actionrec.config import load_config
    from actionrec.engine.train import train

    overrides = list(args.set) + ([f"output_dir={args.output_dir}"] if args.output_dir else [])
    if args.pretrained:  # quoted: a name or path stays a string whatever YAML would make of it
        overrides.append(f"model.pretrained={json.dumps(args.pretrained)}")
    if args.max_steps is not None:
        overrides.append(f"train.max_steps_per_epoch={args.max_steps}")
    cfg = load_config(args.config, overrides)
    result = train(cfg, resume=args.resume or False, stop_after_epoch=args.stop_after_epoch)
    if result.history and int(__import__("os").environ.get("RANK", "0")) == 0:
        best = f"{result.best_top1:.4f} (epoch {result.best_epoch})" if result.best_top1 is not None else "n/a"
        print(f"trained {result.epochs_done} epochs -> {result.output_dir}; best val video top-1 {best}")
    return 0


def _data_config(args: argparse.Namespace):  # noqa: ANN202
    from actionrec.config import load_config

    overrides = list(args.set)
    label_csv = bool(args.list) and (args.format == "csv" or (not args.format and Path(args.list).suffix.lower() == ".csv"))
    root = args.root or (str(Path(args.list).parent) if label_csv and not args.config else None)  # a CSV's paths: its folder
    if root:
        overrides.append(f"data.root={json.dumps(root)}")
    if args.list:
        overrides += [f"data.val_list={json.dumps(args.list)}", f"data.train_list={json.dumps(args.list)}"]
        if not args.format:
            overrides.append(f"data.format={'csv' if label_csv else 'list'}")
    for key, value in (("format", args.format), ("annotations", args.annotations), ("split", args.split), ("num_workers", args.workers)):
        if value is not None:
            overrides.append(f"data.{key}={value}")
    if not args.config and not root:
        raise UsageError("give the data with --config RECIPE, --root DIR [--list FILE] or --list LABELS.csv")
    return load_config(args.config, overrides).data


def _eval(args: argparse.Namespace) -> int:
    from actionrec.deploy.source import resolve_model
    from actionrec.engine.evaluate import evaluate_checkpoint, report_names, write_report, write_summary
    from actionrec.io import output_lock

    data = _data_config(args)
    models = [resolve_model(m) for m in args.checkpoints]  # a missing file or unknown name: one line, before any work
    reference = resolve_model(args.reference) if args.reference else None
    runtime = runtime_from_args(args)
    out = Path(args.out)
    several = len(models) > 1
    folders = report_names(args.checkpoints) if several else ["."]
    rows = []
    with contextlib.ExitStack() as stack:
        for model, folder in zip(models, folders):
            preds, m = evaluate_checkpoint(
                model, data, subset=args.subset, num_clips=args.clips, num_crops=args.crops, batch_size=args.batch_size,
                runtime=runtime, reference=reference, **backend_kwargs(args),
            )
            if not rows:  # lock the output folder once there is something to write (a bad input creates no folder)
                stack.enter_context(output_lock(out, purpose="eval"))
            dst = out / folder if several else out
            row = write_report(dst, preds, m, name=str(model))
            rows.append({"folder": folder, **row} if several else row)
            print(f"{model}: {m.num_videos} videos x {m.num_views} views | clip-level top-1 {m.clip_top1:.4f} top-5 {m.clip_top5:.4f} | "
                  f"video-level top-1 {m.video_top1:.4f} top-5 {m.video_top5:.4f} | mean class acc {m.mean_class_accuracy:.4f}"
                  f"{_agreement_text(m.agreement, reference)} -> {dst}")
        if several:
            _, md_path = write_summary(rows, out)
            print(md_path.read_text())
    return 0


def _agreement_text(agreement: dict | None, reference: object) -> str:
    if not agreement:
        return ""
    return (f" | vs {reference}: top-1 agreement {agreement['clip_top1_agreement']:.4f} (clips), "
            f"{agreement['video_top1_agreement']:.4f} (videos), max |Δlogit| {agreement['max_abs_logit_diff']:.3g}")


def _fuse(args: argparse.Namespace) -> int:
    from actionrec.engine.evaluate import fuse_predictions, write_report
    from actionrec.engine.metrics import summarize

    preds = fuse_predictions(args.predictions, args.weights, on=args.on)
    m = summarize(preds.view_logits, preds.labels, len(preds.class_names))
    write_report(args.out, preds, m, name="fused")
    w = args.weights or [1.0] * len(args.predictions)
    print(f"fused {len(args.predictions)} predictions (weights {w}, on {args.on}): video-level top-1 {m.video_top1:.4f} top-5 {m.video_top5:.4f} -> {args.out}")
    return 0


def _predict(args: argparse.Namespace) -> int:
    from actionrec.engine.predict import PredictionFile, collect_videos, predict_collection, shard_output
    from actionrec.engine.segments import check_segment_args, predict_segments
    from actionrec.engine.visualize import annotate_video, check_video_output
    from actionrec.shard import parse_shard, take_shard

    if not args.inputs and not args.list_file:
        raise UsageError("give at least one INPUT (video, folder or glob) or --list FILE")
    ray_options = engine_from_args(args, local_only=("workers", "device", "threads", "out", "subtitles"))
    shard = parse_shard(args.shard)
    if args.out:
        check_video_output(args.out)
    if args.output:
        output_path = shard_output(args.output, shard)
        if output_path.suffix.lower() not in (".jsonl", ".csv"):
            raise UsageError(f"{args.output}: --output must end in .jsonl or .csv")
    videos = take_shard(collect_videos(args.inputs, list_file=args.list_file), shard)
    single = len(videos) == 1 and len(args.inputs) == 1 and not args.list_file and Path(args.inputs[0]).is_file()
    if args.out and not single and not args.segments:
        raise UsageError("--out draws the prediction on one video; give exactly one video file")
    if not videos:
        raise UsageError("no videos found in " + ", ".join(args.inputs + ([args.list_file] if args.list_file else [])))
    params = check_segment_args(args, single=single)
    if ray_options is not None:
        from actionrec.engine.ray_predict import predict_with_ray

        return predict_with_ray(args, videos, output_path if args.output else None, ray_options, params=params)
    if params is not None:
        return predict_segments(_predictor(args, num_crops=args.crops, batch_size=args.batch_size), videos, params, args,
                                single=single, output_path=output_path if args.output else None)
    predictor = _predictor(args, num_clips=args.clips or None, num_crops=args.crops, batch_size=args.batch_size)
    topk = predictor.check_topk(args.topk)

    def show(pred) -> None:  # noqa: ANN001
        if args.json:
            print(json.dumps(pred.to_dict(timings=True)), flush=True)
        elif pred.error:
            print(f"{pred.video}: error: {pred.error}", flush=True)
        else:
            trunc = ", truncated" if pred.truncated else ""
            print(f"{pred.video} ({pred.clips} clip(s) of {pred.clip_len} frames{trunc}):")
            for label, score in pred.topk:
                print(f"  {score:7.4f}  {label}", flush=True)

    if single and not args.output:  # one video: errors are errors (exit 2), as before
        pred = predictor.predict(videos[0], topk=topk)
        show(pred)
        if args.out:
            annotate_video(videos[0], args.out, pred.topk)
            print(f"wrote {args.out}", file=sys.stderr if args.json else sys.stdout)
        return 0
    if args.output:
        with PredictionFile(output_path, topk=topk) as out:
            if out.done:
                print(f"{output_path}: {len(out.done)} videos already done, skipping them", file=sys.stderr)
            r = predict_collection(predictor, videos, out, topk=topk, workers=args.workers, batch_size=args.batch_size)
        print(f"{r.written} videos predicted ({r.errors} unreadable) in {r.seconds:.1f} s, "
              f"{r.skipped} skipped as already done -> {output_path}", file=sys.stderr)
    else:
        r = predict_collection(predictor, videos, None, topk=topk, workers=args.workers, batch_size=args.batch_size,
                               on_result=show)
        print(f"{r.written} videos predicted ({r.errors} unreadable) in {r.seconds:.1f} s", file=sys.stderr)
    return 0


def _stream(args: argparse.Namespace) -> int:
    from actionrec.engine.stream import iter_frames, stream_predictions
    from actionrec.engine.visualize import VideoWriter, check_video_output, draw_predictions

    if args.out:
        check_video_output(args.out)
    predictor = _predictor(args)
    frames, fps = iter_frames(args.source, max_frames=args.max_frames)
    writer = VideoWriter(args.out, fps=fps) if args.out else None
    drawn = iter(range(10**12))

    def draw(frame, topk) -> None:  # noqa: ANN001
        writer.write(draw_predictions(frame, topk, time_s=next(drawn) / fps))

    try:
        events = stream_predictions(predictor, frames, fps=fps, step=args.step, smooth=args.smooth, topk=args.topk,
                                    on_frame=draw if writer is not None else None)
        for ev in events:
            if args.json:
                print(json.dumps(ev.to_json()), flush=True)
            else:
                print(f"{ev.time:8.2f}s  " + "  ".join(f"{lab} {s:.3f}" for lab, s in ev.topk), flush=True)
    except BaseException as e:
        if writer is not None:
            writer.close(e)
        raise
    if writer is not None:
        writer.close()
        print(f"wrote {args.out}", file=sys.stderr)
    return 0


def _demo(args: argparse.Namespace) -> int:
    from actionrec.engine.demo import run_demo

    r = run_demo(args.out, fast=args.fast, threads=args.threads)
    print(
        f"demo finished in {r.seconds / 60:.1f} min: video-level top-1 {r.video_top1:.3f} (clip-level {r.clip_top1:.3f}) on the synthetic validation set\n"
        f"  model:      {r.output_dir / 'run' / 'best.safetensors'}\n"
        f"  curves:     {r.output_dir / 'run' / 'curves.png'}\n"
        f"  evaluation: {r.output_dir / 'eval'} (confusion.png, per_class.csv, predictions.npz)\n"
        f"  prediction: {r.prediction_gif} (predicted {r.predicted!r}, true {r.true_label!r})"
    )
    return 0
