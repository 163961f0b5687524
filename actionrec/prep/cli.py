"""``actionrec prep frames|flow|lists|synthetic``: prepare datasets (resumable, atomic, shardable)."""

from __future__ import annotations

import argparse

from actionrec.data.formats import list_kinds
from actionrec.options import add_engine_args, add_runtime_args, engine_from_args


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--workers", type=int, default=None,
                   help="worker processes, one thread each (default: one per available core)")
    p.add_argument("--shard", default=None, metavar="i/N|auto", help="do only shard i of N (0-based), to split work across machines; auto: from torchrun (RANK/WORLD_SIZE) or SLURM")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def add_parsers(sub) -> None:  # noqa: ANN001
    prep = sub.add_parser("prep", help="prepare data: frames, optical flow, annotation lists, a synthetic dataset",
                          description="Prepare datasets. Every step skips finished videos and writes each one atomically.")
    ps = prep.add_subparsers(dest="prep_command", metavar="STEP")
    ps.required = True

    p = ps.add_parser("frames", help="decode videos to JPEG frame folders (img_00001.jpg, n_frames, fps)")
    p.add_argument("src", help="folder of videos (class subfolders are kept)")
    p.add_argument("dst", help="output folder")
    p.add_argument("--short-side", type=int, default=256, help="resize the short side to this (0: keep) [256]")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality [95]")
    _common(p)
    add_engine_args(p)
    p.set_defaults(func=_frames)

    from actionrec.data.flow import FLOW_ALGORITHMS  # torch-free: the registry's names and summaries only

    p = ps.add_parser("flow", help="optical flow of frame folders or videos (flow_x_/flow_y_ JPEGs, ±20 px → 0..255)",
                      description="Optical flow of every frame folder under FRAMES (ours, with n_frames, or consecutive "
                      "img_00001.jpg ... from ffmpeg or mmaction2's build_rawframes, numbered from 0 or 1) or, if it has "
                      "none, of every video under it. Threads: --workers single-threaded processes compute (OpenCV's "
                      "algorithms, and tvl1-torch on the CPU); tvl1-torch on a GPU computes in this process "
                      "(--threads torch threads) while --workers threads read and write the images.")
    p.add_argument("frames", help="folder of frame folders (from `actionrec prep frames` or another tool) or, "
                   "if it has none, of videos")
    p.add_argument("dst", help="output folder")
    p.add_argument("--algo", choices=FLOW_ALGORITHMS.names(), default="tvl1",
                   help="; ".join(f"{k}: {v.summary}" for k, v in FLOW_ALGORITHMS.items()) + " [tvl1]")
    add_runtime_args(p, precision=False, device_help="tvl1-torch: cpu, cuda (= cuda:LOCAL_RANK under torchrun) or cuda:N "
                     "[cuda if available, else cpu]; the others run on the CPU")
    p.add_argument("--batch-size", type=int, default=16, help="tvl1-torch: frame pairs per batch (on the CPU, shared among the worker processes) [16]")
    p.add_argument("--short-side", type=int, default=None, help="resize frames before flow (default: as stored)")
    p.add_argument("--bound", type=float, default=20.0, help="clip flow to ±bound pixels before 8-bit storage [20]")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality [95]")
    p.add_argument("--tvl1-scales", type=int, default=None, help="TV-L1 pyramid levels (OpenCV default 5)")
    p.add_argument("--tvl1-warps", type=int, default=None, help="TV-L1 warpings per level (OpenCV default 5)")
    p.add_argument("--dis-preset", choices=("ultrafast", "fast", "medium"), default="medium")
    p.add_argument("--chunk", type=int, default=8, help="frame pairs per task of a frame folder [8]")
    _common(p)
    add_engine_args(p)
    p.set_defaults(func=_flow)

    p = ps.add_parser("lists", help="annotation lists (mmaction2 lists, classes.txt, optional 3D-ResNets JSON)",
                      description="Write mmaction2 lists as its build_file_list.py does (and 3D-ResNets JSON with --json). "
                                  "Listed videos that are missing, empty or without frames are left out, named and "
                                  "counted (all in OUT/left_out.txt); the exit status is then 1.")
    p.add_argument("kind", choices=list_kinds())
    p.add_argument("root", help="folder of videos (class subfolders)")
    p.add_argument("out", help="folder for the list files")
    p.add_argument("--annotations", help="split-file folder (ucf101, hmdb51) or CSV (kinetics)")
    p.add_argument("--splits", type=int, nargs="+", default=[1], help="split numbers [1]")
    p.add_argument("--frames", help="frame folders root: list frame folders with n_frames instead of videos")
    p.add_argument("--json", action="store_true", help="also write 3D-ResNets (Kensho Hara) JSON; needs --frames")
    p.add_argument("--val-fraction", type=float, default=0.2, help="folder kind: validation share per class [0.2]")
    p.add_argument("--seed", type=int, default=0, help="folder kind: split seed [0]")
    p.set_defaults(func=_lists)

    p = ps.add_parser("synthetic", help="generate a small synthetic action dataset (class folders of videos)")
    p.add_argument("dst")
    p.add_argument("--classes", type=int, default=6, help="number of classes, 2..8 [6]")
    p.add_argument("--per-class", type=int, default=30, help="videos per class [30]")
    p.add_argument("--val-per-class", type=int, default=None,
                   help="of those, validation videos per class, listed in val.txt [per-class // 5]")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--size", type=int, default=64, help="frame size in pixels [64]")
    p.add_argument("--frames", type=int, default=24, help="frames per video [24]")
    p.add_argument("--workers", type=int, default=1)
    p.set_defaults(func=_synthetic)


def _finish(report, what: str) -> int:  # noqa: ANN001
    print(report.summary(what))
    return 1 if report.failed else 0


def _engine(args: argparse.Namespace):  # noqa: ANN202 - RayOptions | None
    """The Ray options of ``--engine ray`` (None: local); ``--workers`` is the local engine's."""
    return engine_from_args(args, local_only=("workers",))


def _frames(args: argparse.Namespace) -> int:
    from actionrec.prep.frames import extract_all

    rep = extract_all(args.src, args.dst, short_side=args.short_side or None, quality=args.quality,
                      workers=args.workers, shard=args.shard, progress=not args.no_progress, ray=_engine(args))
    return _finish(rep, "frames")


def _flow(args: argparse.Namespace) -> int:
    from actionrec.prep.flow import flow_all

    rep = flow_all(args.frames, args.dst, algo=args.algo, short_side=args.short_side, bound=args.bound,
                   quality=args.quality, tvl1_scales=args.tvl1_scales, tvl1_warps=args.tvl1_warps,
                   dis_preset=args.dis_preset, workers=args.workers, shard=args.shard, chunk=args.chunk,
                   device=args.device, threads=args.threads, batch_size=args.batch_size, progress=not args.no_progress,
                   ray=_engine(args))
    return _finish(rep, f"flow ({args.algo})")


def _lists(args: argparse.Namespace) -> int:
    from actionrec.prep.lists import build_lists

    report = build_lists(args.kind, args.root, args.out, annotations=args.annotations, splits=tuple(args.splits),
                         frames=args.frames, json_out=args.json, val_fraction=args.val_fraction, seed=args.seed)
    print(report.summary())
    return 1 if report.n_left_out else 0


def _synthetic(args: argparse.Namespace) -> int:
    from actionrec.data.synthetic import generate
    from actionrec.prep.common import check_int

    check_int("--workers", args.workers, lo=1)
    out = generate(args.dst, classes=args.classes, per_class=args.per_class, seed=args.seed, size=args.size,
                   frames=args.frames, workers=args.workers, val_per_class=args.val_per_class)
    print(out)
    return 0
