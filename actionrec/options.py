"""Command-line options shared by several commands, declared once so bounds, defaults and help cannot drift.

Each ``add_*`` function attaches one group to a subcommand's parser; the matching ``*_from_args``
turns the parsed values into the objects the code takes (a :class:`~actionrec.runtime.Runtime`, a
dict of preprocessing overrides). Nothing here imports torch: ``actionrec CMD --help`` stays fast.

=================  ==================================================================  ====================
group              options                                                             used by
=================  ==================================================================  ====================
runtime            ``--device --threads --precision``                                  every command that runs a model, prep flow, demo
backend            ``--backend --no-optimize --calib``                                 predict, eval, stream, serve, bench
preprocessing      ``--clip-len --stride --resize-short --crop``                       predict, stream, eval, bench
engine             ``--engine --ray-address --ray-workers --cpus/gpus-per-worker``     predict, prep frames|flow
=================  ==================================================================  ====================
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from typing import Any

from actionrec.runtime import MAX_THREADS, PRECISIONS

__all__ = [
    "int_arg", "float_arg", "span_arg", "add_runtime_args", "add_threads_arg", "runtime_from_args", "add_backend_args", "backend_kwargs",
    "add_preprocess_args", "preprocess_overrides", "PREPROCESS_OPTIONS", "add_engine_args", "engine_from_args",
]


def int_arg(lo: int, hi: int | None = None) -> Callable[[str], int]:
    """An argparse ``type``: an integer in ``lo..hi`` (``hi`` None: no upper bound), else a usage error naming it."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            raise argparse.ArgumentTypeError(f"must be {lo}..{hi}, got {value}" if hi is not None else f"must be >= {lo}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in its messages
    return parse


def float_arg(*, positive: bool = False, high: float | None = None) -> Callable[[str], float]:
    """An argparse ``type``: a finite number (``positive``: > 0, else >= 0; at most ``high`` if given)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not math.isfinite(value) or value < 0 or (positive and value == 0) or (high is not None and value > high):
            bound = f" and <= {high:g}" if high is not None else ""
            raise argparse.ArgumentTypeError(f"must be a finite number {'> 0' if positive else '>= 0'}{bound}, got {text}")
        return value

    parse.__name__ = "number"
    return parse


def span_arg(*, max_seconds: float = 86_400.0, max_frames: int = 10**7) -> Callable[[str], tuple[float, str]]:
    """An argparse ``type``: a length in seconds (``2.5``) or in frames (``32f``) → ``(value, "s" | "f")``."""

    def parse(text: str) -> tuple[float, str]:
        t = text.strip().lower()
        if t.endswith("f"):
            try:
                frames = int(t[:-1])
            except ValueError:
                raise argparse.ArgumentTypeError(f"expected seconds (e.g. 2.5) or frames (e.g. 32f), got {text!r}") from None
            if not 1 <= frames <= max_frames:
                raise argparse.ArgumentTypeError(f"frames must be 1..{max_frames}, got {text}")
            return frames, "f"
        try:
            seconds = float(t[:-1] if t.endswith("s") else t)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected seconds (e.g. 2.5) or frames (e.g. 32f), got {text!r}") from None
        if not (math.isfinite(seconds) and 0 < seconds <= max_seconds):
            raise argparse.ArgumentTypeError(f"seconds must be > 0 and <= {max_seconds:g}, got {text}")
        return seconds, "s"

    parse.__name__ = "length"
    return parse


# --- runtime ---------------------------------------------------------------------------------
def add_runtime_args(p: argparse.ArgumentParser, *, device_help: str = "", precision: bool = True) -> None:
    """``--device``, ``--threads`` (and ``--precision``): how and where the model runs."""
    g = p.add_argument_group("runtime")
    g.add_argument("--device", default=None,
                   help=device_help or "cpu (default), cuda, cuda:N or auto (a GPU if there is one)")
    add_threads_arg(g)
    if precision:
        g.add_argument("--precision", choices=PRECISIONS, default="fp32",
                       help="autocast precision on the device (fp16 needs a GPU; default fp32)")


def add_threads_arg(p: Any, *, default_help: str = "the cores it may use") -> None:
    """``--threads`` alone (commands whose device is fixed, e.g. ``demo``)."""
    p.add_argument("--threads", type=int_arg(1, MAX_THREADS), default=None,
                   help=f"intra-op threads of this process (default: {default_help}; worker processes get 1 each)")


def runtime_from_args(args: argparse.Namespace, *, threads: int | None = None, deterministic: bool = False) -> Any:
    """The :class:`~actionrec.runtime.Runtime` the options ask for (``threads``: default when ``--threads`` is absent)."""
    from actionrec.runtime import resolve_runtime

    return resolve_runtime(device=getattr(args, "device", None), threads=args.threads or threads,
                           precision=getattr(args, "precision", "fp32"), deterministic=deterministic)


# --- backend ---------------------------------------------------------------------------------
def add_backend_args(p: argparse.ArgumentParser, *, several: bool = False, calib: bool = True) -> None:
    """``--backend`` (or, ``several``, ``--backends``: the backend registry's names), ``--no-optimize``, ``--calib``."""
    from actionrec.deploy.backends import BACKENDS, describe_backends

    g = p.add_argument_group("backend")
    if several:
        g.add_argument("--backends", type=_names(["torch --no-optimize", *BACKENDS.names()]), default=None, metavar="A,B,...",
                       help="comma-separated backends (default: every one that runs the model here, except the slow to "
                       "compile torch-compile, pt2 and pt2-int8; plus 'torch --no-optimize', the plain model): "
                       + describe_backends())
    else:
        g.add_argument("--backend", default="auto", choices=["auto", *BACKENDS.names()], metavar="NAME",
                       help="auto (.onnx → onnxruntime, .pt2 → pt2, a checkpoint → its cached pt2 package if any, "
                       "else torch) or one of: " + describe_backends())
    g.add_argument("--no-optimize", action="store_true",
                   help="the plain model: no BN folding / channels-last (torch), basic graph optimisation (onnxruntime)")
    if calib:
        g.add_argument("--calib", nargs="+", metavar="VIDEO",
                       help="int8 backends on a float model: real videos (or folders) to calibrate on"
                       + (" (default in bench: random input, speed only)" if several else ""))


def _names(choices: list[str]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        names = [t.strip() for t in text.split(",") if t.strip()]
        bad = [n for n in names if n not in choices]
        if bad or not names:
            raise argparse.ArgumentTypeError(f"unknown backend {bad[0] if bad else text!r}; choose from: {', '.join(choices)}")
        return names

    parse.__name__ = "backend list"
    return parse


def backend_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``backend``, ``optimize`` and ``calib`` for :func:`~actionrec.deploy.backends.load_backend` / ``Predictor``."""
    return {"backend": getattr(args, "backend", "auto"), "optimize": False if args.no_optimize else None,
            "calib": getattr(args, "calib", None)}


# --- preprocessing ---------------------------------------------------------------------------
#: option → :class:`~actionrec.meta.Preprocess` field
PREPROCESS_OPTIONS = {"clip_len": "clip_len", "stride": "frame_stride", "resize_short": "resize_short", "crop": "crop_size"}


def add_preprocess_args(p: argparse.ArgumentParser) -> None:
    """``--clip-len --stride --resize-short --crop``: the model's preprocessing, overridden (a warning names each change)."""
    g = p.add_argument_group("preprocessing (default: the model's; a warning names each change)")
    g.add_argument("--clip-len", type=int_arg(1, 1024), default=None, help="frames per clip")
    g.add_argument("--stride", type=int_arg(1, 1024), default=None, help="frame stride inside a clip")
    g.add_argument("--resize-short", type=int_arg(1, 4096), default=None, help="short side before cropping")
    g.add_argument("--crop", type=int_arg(1, 4096), default=None, help="square crop size")


def preprocess_overrides(args: argparse.Namespace) -> dict[str, int]:
    """The preprocessing fields the options set (for :meth:`~actionrec.meta.Preprocess.override`)."""
    return {field: getattr(args, opt) for opt, field in PREPROCESS_OPTIONS.items() if getattr(args, opt, None) is not None}


# --- engine ----------------------------------------------------------------------------------
ENGINE_OPTIONS = ("ray_address", "ray_workers", "cpus_per_worker", "gpus_per_worker")
#: local-engine options and what to use instead under --engine ray
LOCAL_ONLY = {"workers": "--ray-workers", "device": "--gpus-per-worker", "threads": "--cpus-per-worker",
              "out": "the local engine (one video)", "subtitles": "the local engine (one video)"}


def add_engine_args(p: argparse.ArgumentParser) -> None:
    """``--engine local|ray`` and the Ray run's address and width (``pip install 'actionrec[ray]'``)."""
    g = p.add_argument_group("engine (--engine ray: a Ray cluster, see docs/scale.md; pip install 'actionrec[ray]')")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: this machine's processes (default); ray: tasks and actors on a Ray cluster")
    g.add_argument("--ray-address", metavar="ADDRESS", default=None,
                   help="auto (the cluster started on this machine with `ray start`), HOST:PORT or ray://HOST:PORT "
                   "(default: $RAY_ADDRESS, else a local Ray for this run)")
    g.add_argument("--ray-workers", metavar="N|MIN,MAX", default=None,
                   help="model workers (actors), growing from MIN to MAX as work waits; prep: tasks in flight [1,2]")
    g.add_argument("--cpus-per-worker", type=float_arg(positive=True), default=None, metavar="N",
                   help="CPUs each worker reserves; a model worker runs that many threads [1]")
    g.add_argument("--gpus-per-worker", type=float_arg(), default=None, metavar="N",
                   help="GPUs each worker reserves (fractions share a GPU) [0]")


def engine_from_args(args: argparse.Namespace, *, local_only: tuple[str, ...] = ()) -> Any:
    """``None`` for the local engine (a usage error if a Ray option was given), else the
    :class:`~actionrec.distributed.RayOptions` of the options; ``local_only``: the command's options (keys of
    :data:`LOCAL_ONLY`) that are a usage error with ``--engine ray``."""
    from actionrec.distributed import cluster
    from actionrec.errors import UsageError

    given = [o for o in ENGINE_OPTIONS if getattr(args, o, None) is not None]
    if getattr(args, "engine", "local") != "ray":
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} needs --engine ray")
        return None
    for opt in local_only:
        if getattr(args, opt, None) is not None:
            raise UsageError(f"--{opt} is the local engine's; with --engine ray use {LOCAL_ONLY[opt]}")
    cluster.check_installed()
    if getattr(args, "shard", None):
        raise UsageError("--shard splits work statically over launcher processes; --engine ray schedules the whole "
                         "collection on the cluster: use one or the other")
    fields = {"address": args.ray_address, "cpus_per_worker": args.cpus_per_worker, "gpus_per_worker": args.gpus_per_worker,
              "workers": cluster.parse_workers(args.ray_workers) if args.ray_workers is not None else None}
    return cluster.RayOptions(**{k: v for k, v in fields.items() if v is not None})  # the rest: RayOptions' defaults
