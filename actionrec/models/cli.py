"""``actionrec info MODEL|CKPT`` and ``actionrec models``: architectures, known weights, one model's facts."""

from __future__ import annotations

import argparse
import json
from typing import Any

from actionrec.errors import UsageError
from actionrec.options import int_arg


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameters, GFLOPs, input, classes and preprocessing of a model or checkpoint")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="architecture name, weight-set name (see `actionrec models`), checkpoint, .onnx or .pt2 file")
    p.add_argument("--list", action="store_true", help="list model names and known weights, then exit")
    p.add_argument("--num-classes", type=int_arg(1, 100_000), help="head size for an architecture name (default: the builder's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
    p2 = sub.add_parser("models", help="list the architectures and the known pretrained weights")
    p2.set_defaults(func=_models)


def _models(args: argparse.Namespace) -> int:
    from actionrec.models.registry import get_pretrained, list_models, list_pretrained

    print("architectures:")
    for name in list_models():
        print(f"  {name}")
    print("known weights (any MODEL argument, actionrec.load_model(NAME); fetched, verified and converted on first use; "
          "`actionrec weights list` shows sources, accuracy and the cache):")
    for name in list_pretrained():
        print(f"  {name:40s} {get_pretrained(name).description}")
    from actionrec.convert import get_converter, list_converters

    print("weight sources (actionrec convert FILE --from SOURCE; default auto):")
    for name in list_converters():
        print(f"  {name:24s} {get_converter(name).description}")
    return 0


def model_info(model: Any) -> dict[str, Any]:
    """Parameters, GFLOPs at the model's standard input (``model.meta``), classes and preprocessing."""
    from actionrec.models.flops import count_flops

    info = meta_info(model.meta)
    flops = count_flops(model, tuple(info["input_shape"]))
    return {**info, "params": sum(p.numel() for p in model.parameters()), "gmacs": flops / 2e9, "gflops": flops / 1e9}


def meta_info(meta: Any) -> dict[str, Any]:
    """What the metadata alone says (an exported .onnx/.pt2 file has no PyTorch model to count)."""
    return {
        "arch": meta.arch,
        "num_classes": meta.num_classes,
        "class_names": meta.class_names,
        "modality": meta.modality,
        "input_shape": list(meta.input_shape(1)),
        "preprocess": meta.to_dict()["preprocess"],
        "arch_kwargs": meta.arch_kwargs,
        "source": meta.source,
    }


def _describe(args: argparse.Namespace) -> dict[str, Any]:
    from actionrec.deploy.source import resolve_model

    src = resolve_model(args.model, allow_arch=True, num_classes=args.num_classes)
    if args.num_classes is not None and src.kind != "arch":
        raise UsageError("--num-classes applies to an architecture name, not to a checkpoint or weight set")
    if src.kind in ("onnx", "pt2"):
        return {**meta_info(src.meta), "file": f"{src.kind} export"}
    return model_info(src.torch_model())


def _info(args: argparse.Namespace) -> int:
    if args.list:
        return _models(args)
    if not args.model:
        raise UsageError("info needs a MODEL (name, known weights or checkpoint), or --list")
    info = _describe(args)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    n, c, t, h, w = info["input_shape"]
    pre = info["preprocess"]
    names = info["class_names"]
    print(f"model       {info['arch']} ({info['modality']}, {info['num_classes']} classes)")
    if info["arch_kwargs"]:
        print(f"options     {', '.join(f'{k}={v}' for k, v in info['arch_kwargs'].items())}")
    if "params" in info:
        print(f"parameters  {info['params']:,}")
    else:
        print(f"file        an {info['file']} (parameters and GFLOPs: run info on the checkpoint it came from)")
    print(f"input       {c}×{t}×{h}×{w} (C×T×H×W)")
    if "gmacs" in info:
        print(f"GFLOPs      {info['gmacs']:.2f} (multiply-adds per clip, as torchvision counts; {info['gflops']:.1f} counting 2 per MAC)")
    print(
        f"preprocess  {pre['clip_len']} frames every {pre['frame_stride']}, short side {pre['resize_short']}, "
        f"crop {pre['crop_size']}, mean {_fmt(pre['mean'])}, std {_fmt(pre['std'])} (on 0–1 pixels)"
    )
    if names:
        more = f", … ({len(names)} in all)" if len(names) > 5 else ""
        print(f"classes     {', '.join(names[:5])}{more}")
    else:
        print("classes     (no names: indices only)")
    if info["source"]:
        print(f"weights     {info['source']}")
    return 0


def _fmt(values: Any) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in values) + ")"
