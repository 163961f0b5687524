"""CLI subcommands: ``train``, ``eval``, ``fuse``, ``predict``, ``stream``, ``demo``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from actionrec.errors import UsageError


def add_parsers(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("train", help="train a model from a YAML recipe (also under torchrun for several processes)")
    p.add_argument("config", help="recipe YAML (see configs/)")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="override fields, e.g. optimizer.lr=0.01 data.clip_len=8")
    p.add_argument("--output-dir", help="shorthand for --set output_dir=DIR")
    p.add_argument("--resume", nargs="?", const="auto", default=None, metavar="CKPT", help="continue a run (newest checkpoint of output_dir, or CKPT)")
    p.add_argument("--stop-after-epoch", type=int, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=_train)

    p = sub.add_parser("eval", help="evaluate one or more checkpoints (clip- and video-level accuracy)")
    p.add_argument("checkpoints", nargs="+", help="model checkpoints (.safetensors) or ONNX files")
    _data_args(p)
    p.add_argument("--subset", default="val", choices=["train", "val", "test"])
    p.add_argument("--clips", type=int, default=10, help="clips per video (default 10)")
    p.add_argument("--crops", type=int, default=3, choices=[1, 3], help="spatial crops per clip (default 3)")
    p.add_argument("--batch-size", type=int, default=4, help="videos per batch")
    p.add_argument("--out", default="eval", help="output directory (one subfolder per checkpoint when several)")
    _backend_args(p)
    p.set_defaults(func=_eval)

    p = sub.add_parser("fuse", help="combine saved predictions (e.g. RGB + flow) with weights")
    p.add_argument("predictions", nargs="+", help="predictions.npz files written by `actionrec eval`")
    p.add_argument("--weights", type=float, nargs="+", help="one weight per file (default: equal)")
    p.add_argument("--on", choices=["probs", "logits"], default="probs", help="sum softmax probabilities or logits")
    p.add_argument("--out", default="eval_fused", help="output directory")
    p.set_defaults(func=_fuse)

    p = sub.add_parser("predict", help="top-k actions of a video, optionally drawn on it")
    p.add_argument("checkpoint")
    p.add_argument("video")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--clips", type=int, default=0, help="clips to average (0: whole short video, else up to 10)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--out", help="write the video with the prediction drawn on it (.gif or .mp4)")
    _backend_args(p)
    p.set_defaults(func=_predict)

    p = sub.add_parser("stream", help="predictions over time on a long video or a camera (index, e.g. 0)")
    p.add_argument("checkpoint")
    p.add_argument("source", help="video file or camera index")
    p.add_argument("--step", type=int, default=None, help="frames between predictions (default: half a window)")
    p.add_argument("--smooth", type=int, default=3, help="windows averaged (default 3)")
    p.add_argument("--topk", type=int, default=3)
    p.add_argument("--max-frames", type=int, default=None)
    p.add_argument("--json", action="store_true", help="print one JSON object per prediction")
    p.add_argument("--out", help="also write the annotated video (.gif or .mp4)")
    _backend_args(p)
    p.set_defaults(func=_stream)

    p = sub.add_parser("demo", help="synthetic data -> train a small model on the CPU -> evaluate -> annotated prediction")
    p.add_argument("--out", default="actionrec-demo", help="output directory (default ./actionrec-demo)")
    p.add_argument("--fast", action="store_true", help="a one-minute smoke version (low accuracy)")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    p.set_defaults(func=_demo)


def _data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (a recipe's data section, or the options below)")
    g.add_argument("--config", help="recipe YAML whose data section to use")
    g.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="overrides for --config (e.g. data.root=...)")
    g.add_argument("--root", help="videos directory (data.root)")
    g.add_argument("--list", help="list file '<path> <label>' (data.val_list, format 'list')")
    g.add_argument("--format", choices=["list", "folder", "ucf101", "hmdb51", "kinetics"], help="data.format")
    g.add_argument("--annotations", help="data.annotations (ucf101/hmdb51 split folder, kinetics csv)")
    g.add_argument("--split", type=int, help="data.split")
    g.add_argument("--workers", type=int, help="data.num_workers")


def _backend_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--backend", choices=["auto", "torch", "onnxruntime", "pt2"], default="auto")
    p.add_argument("--no-optimize", action="store_true", help="run the plain model (no BN folding / graph optimisation)")
    p.add_argument("--device", default="cpu")


def _train(args: argparse.Namespace) -> int:
    from actionrec.config import load_config
    from actionrec.engine.train import train

    overrides = list(args.set) + ([f"output_dir={args.output_dir}"] if args.output_dir else [])
    cfg = load_config(args.config, overrides)
    result = train(cfg, resume=args.resume or False, stop_after_epoch=args.stop_after_epoch)
    if result.history and int(__import__("os").environ.get("RANK", "0")) == 0:
        best = f"{result.best_top1:.4f} (epoch {result.best_epoch})" if result.best_top1 is not None else "n/a"
        print(f"trained {result.epochs_done} epochs -> {result.output_dir}; best val video top-1 {best}")
    return 0


def _data_config(args: argparse.Namespace):  # noqa: ANN202
    from actionrec.config import load_config

    overrides = list(args.set)
    if args.root:
        overrides.append(f"data.root={args.root}")
    if args.list:
        overrides += [f"data.val_list={args.list}", f"data.train_list={args.list}"]
        if not args.format:
            overrides.append("data.format=list")
    for key, value in (("format", args.format), ("annotations", args.annotations), ("split", args.split), ("num_workers", args.workers)):
        if value is not None:
            overrides.append(f"data.{key}={value}")
    if not args.config and not args.root:
        raise UsageError("give the data with --config RECIPE or --root DIR [--list FILE]")
    return load_config(args.config, overrides).data


def _eval(args: argparse.Namespace) -> int:
    from actionrec.engine.evaluate import evaluate_checkpoint, write_report, write_summary

    data = _data_config(args)
    out = Path(args.out)
    rows = []
    for ckpt in args.checkpoints:
        if not Path(ckpt).is_file():
            raise FileNotFoundError(f"checkpoint not found: {ckpt}")
        preds, m = evaluate_checkpoint(
            ckpt, data, subset=args.subset, num_clips=args.clips, num_crops=args.crops, batch_size=args.batch_size,
            backend=args.backend, optimize=False if args.no_optimize else None, device=args.device,
        )
        dst = out if len(args.checkpoints) == 1 else out / Path(ckpt).stem
        rows.append(write_report(dst, preds, m, name=str(ckpt)))
        print(
            f"{ckpt}: {m.num_videos} videos x {m.num_views} views | clip-level top-1 {m.clip_top1:.4f} top-5 {m.clip_top5:.4f} | "
            f"video-level top-1 {m.video_top1:.4f} top-5 {m.video_top5:.4f} | mean class acc {m.mean_class_accuracy:.4f} -> {dst}"
        )
    if len(rows) > 1:
        csv_path, md_path = write_summary(rows, out)
        print(md_path.read_text())
    return 0


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
    from actionrec.engine.predict import load_for_inference, predict_video, write_annotated

    if not Path(args.video).exists():
        raise FileNotFoundError(f"video not found: {args.video}")
    predictor, meta = load_for_inference(args.checkpoint, backend=args.backend, optimize=False if args.no_optimize else None, device=args.device)
    result = predict_video(predictor, meta, args.video, num_clips=args.clips, topk=args.topk)
    if args.json:
        print(json.dumps(result.to_json()))
    else:
        print(f"{args.video} ({result.num_clips} clip(s) of {result.clip_len} frames):")
        for label, score in result.topk:
            print(f"  {score:7.4f}  {label}")
    if args.out:
        write_annotated(args.video, result, args.out)
        print(f"wrote {args.out}", file=sys.stderr if args.json else sys.stdout)
    return 0


def _stream(args: argparse.Namespace) -> int:
    from actionrec.engine.predict import load_for_inference
    from actionrec.engine.stream import iter_frames, stream_predictions

    predictor, meta = load_for_inference(args.checkpoint, backend=args.backend, optimize=False if args.no_optimize else None, device=args.device)
    frames, fps = iter_frames(args.source, max_frames=args.max_frames)
    drawn: list = []
    on_frame = None
    if args.out:
        from actionrec.engine.visualize import draw_label

        def on_frame(frame, topk):  # noqa: ANN001, ANN202
            drawn.append(draw_label(frame, [f"{lab}: {100 * s:.1f}%" for lab, s in topk] or ["..."]))

    for ev in stream_predictions(predictor, meta, frames, fps=fps, step=args.step, smooth=args.smooth, topk=args.topk, on_frame=on_frame):
        if args.json:
            print(json.dumps(ev.to_json()), flush=True)
        else:
            print(f"{ev.time:8.2f}s  " + "  ".join(f"{lab} {s:.3f}" for lab, s in ev.topk), flush=True)
    if args.out:
        from actionrec.engine.visualize import write_video

        write_video(drawn, args.out, fps=fps)
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
