"""``actionrec info MODEL``: parameters, GFLOPs, input shape and modality of a model or checkpoint."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="parameters, GFLOPs and input of a model name or checkpoint")
    p.add_argument("model", help="model name (see `actionrec info --list`) or a .safetensors checkpoint")
    p.add_argument("--num-classes", type=int, help="head size for a model name (default: the builder's)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_info)
    p2 = sub.add_parser("models", help="list the available model names")
    p2.set_defaults(func=lambda a: print("\n".join(__import__("actionrec").list_models())))


def model_info(model: Any) -> dict[str, Any]:
    """Parameters and GFLOPs at the model's standard input (``model.meta``)."""
    from actionrec.models.flops import count_flops

    meta = model.meta
    shape = meta.input_shape(1)
    flops = count_flops(model, shape)
    return {
        "arch": meta.arch,
        "num_classes": meta.num_classes,
        "modality": meta.modality,
        "params": sum(p.numel() for p in model.parameters()),
        "input_shape": list(shape),
        "gmacs": flops / 2e9,
        "gflops": flops / 1e9,
        "preprocess": meta.to_dict()["preprocess"],
        "source": meta.source,
    }


def _info(args: argparse.Namespace) -> int:
    from pathlib import Path

    import actionrec

    if Path(args.model).suffix == ".safetensors" or Path(args.model).is_file():
        model = actionrec.load_model(args.model)
    else:
        model = actionrec.create_model(args.model, num_classes=args.num_classes)
    info = model_info(model)
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    n, c, t, h, w = info["input_shape"]
    print(f"model       {info['arch']} ({info['modality']}, {info['num_classes']} classes)")
    print(f"parameters  {info['params']:,}")
    print(f"input       {c}×{t}×{h}×{w} (C×T×H×W)")
    print(f"GFLOPs      {info['gmacs']:.2f} (multiply-adds per clip, as torchvision counts; {info['gflops']:.1f} counting 2 per MAC)")
    if info["source"]:
        print(f"weights     {info['source']}")
    return 0
