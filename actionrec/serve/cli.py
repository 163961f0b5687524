"""CLI subcommand ``serve``: one model behind an HTTP API and a web page."""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os

from actionrec.errors import UsageError
from actionrec.options import add_backend_args, add_runtime_args, backend_kwargs, runtime_from_args

log = logging.getLogger(__name__)

TOKEN_ENV = "ACTIONREC_TOKEN"


def add_parsers(sub) -> None:  # noqa: ANN001
    p = sub.add_parser("serve", help="serve a model over HTTP (JSON API, web page, Prometheus metrics)")
    p.add_argument("model", metavar="MODEL", help="checkpoint (.safetensors), .onnx, .pt2 or weight-set name (e.g. i3d_kinetics400)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a token)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--max-batch", type=int, default=8, help="most clips per forward pass (default 8)")
    p.add_argument("--max-wait-ms", type=float, default=20.0, help="how long a batch waits for more clips (default 20)")
    p.add_argument("--max-queue", type=int, default=None, help="requests in progress before new ones get 503 + Retry-After (default 4 x max-batch)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per request after its upload (default 120)")
    p.add_argument("--clips", type=int, default=0, help="clips per video when a request does not say (default 0: from its length)")
    p.add_argument("--decode-workers", type=int, default=2, help="threads decoding uploads (default 2)")
    p.add_argument("--max-upload-mb", type=float, default=100.0, help="upload size limit in MB (default 100)")
    p.add_argument("--max-duration", type=float, default=300.0, help="longest video in seconds (default 300)")
    p.add_argument("--max-frames", type=int, default=18_000, help="most frames per video (default 18000)")
    p.add_argument("--read-timeout", type=float, default=15.0, help="seconds an upload may stall (default 15)")
    p.add_argument("--max-uploads", type=int, default=256, help="request bodies received at once, all clients (default 256; then 503)")
    p.add_argument("--max-uploads-per-client", type=int, default=8,
                   help="request bodies received at once from one address or IPv6 /64 (default 8; then 429)")
    g = p.add_argument_group("long-video jobs (/v1/jobs)")
    g.add_argument("--state-dir", default=None, help="jobs database and uploads (default $ACTIONREC_HOME/serve/port-PORT)")
    g.add_argument("--media-root", default=None, metavar="DIR", help="jobs may name files under DIR by path (default: uploads only)")
    g.add_argument("--max-jobs", type=int, default=16, help="jobs queued or running before new ones get 503 (default 16)")
    g.add_argument("--job-workers", type=int, default=1, help="jobs running at once (default 1)")
    g.add_argument("--job-batch", type=int, default=None,
                   help="windows per forward pass of a job; requests' clips go first (default: 2 on a CPU, 16 on a GPU)")
    g.add_argument("--job-retention", default="24h", help="keep finished jobs, results and uploads this long (default 24h; s, m, h, d)")
    g.add_argument("--job-max-upload-mb", type=float, default=1024.0, help="job upload size limit in MB (default 1024)")
    g.add_argument("--job-max-duration", default="4h", help="longest video a job takes (default 4h; s, m, h)")
    g.add_argument("--no-jobs", action="store_true", help="turn the jobs API off (no state directory)")
    p.add_argument("--token", default=None, help=f"bearer token required on /v1 and /metrics (or ${TOKEN_ENV})")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN", help="allow this web origin (repeatable; default: none)")
    add_backend_args(p)
    add_runtime_args(p)
    p.set_defaults(func=_serve)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def settings_from_args(args: argparse.Namespace):  # noqa: ANN201
    """Validate the flags and build :class:`~actionrec.serve.ServeSettings`."""
    from actionrec.serve import Limits, ServeSettings
    from actionrec.serve.app import MAX_CLIPS

    token = args.token or os.environ.get(TOKEN_ENV) or None
    if not _is_loopback(args.host) and not token:
        raise UsageError(f"--host {args.host} is reachable from other machines: set --token or ${TOKEN_ENV}")
    for name in ("max_batch", "decode_workers", "max_frames", "max_uploads", "max_uploads_per_client", "max_jobs", "job_workers"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if args.job_batch is not None and args.job_batch < 1:
        raise UsageError(f"--job-batch must be at least 1, got {args.job_batch}")
    for name in ("timeout", "max_upload_mb", "max_duration", "read_timeout", "job_max_upload_mb"):
        if not getattr(args, name) > 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if not 0 <= args.clips <= MAX_CLIPS:
        raise UsageError(f"--clips must be 0 (automatic) to {MAX_CLIPS}, got {args.clips}")
    if args.max_wait_ms < 0 or (args.max_queue is not None and args.max_queue < 1):
        raise UsageError("--max-wait-ms must be >= 0 and --max-queue >= 1")
    if not 0 < args.port < 65536:
        raise UsageError(f"--port must be 1..65535, got {args.port}")
    limits = Limits(max_bytes=int(args.max_upload_mb * 1024 * 1024), max_duration=args.max_duration,
                    max_frames=args.max_frames, read_timeout=args.read_timeout)
    return ServeSettings(max_batch=args.max_batch, max_wait_ms=args.max_wait_ms, max_queue=args.max_queue, timeout=args.timeout,
                         decode_workers=args.decode_workers, clips=args.clips, token=token, cors_origins=tuple(args.cors_origin),
                         limits=limits, max_uploads=args.max_uploads, max_uploads_per_client=args.max_uploads_per_client,
                         jobs=None if args.no_jobs else _job_settings(args))


def parse_duration(text: str, flag: str) -> float:
    """``"90"``, ``"90s"``, ``"30m"``, ``"24h"``, ``"7d"`` → seconds (> 0); ``UsageError`` naming ``flag`` otherwise."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    t = str(text).strip().lower()
    scale = units.get(t[-1:], None)
    try:
        value = float(t[:-1] if scale else t) * (scale or 1)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise UsageError(f"{flag} must be a positive duration such as 90s, 30m, 24h or 7d, got {text!r}")
    return value


def _job_settings(args: argparse.Namespace):  # noqa: ANN202
    from pathlib import Path

    from actionrec.serve.jobs import JobSettings
    from actionrec.serve.uploads import Limits

    if args.state_dir:
        state_dir = Path(args.state_dir)
    else:
        from actionrec.hub.store import cache_dir

        state_dir = cache_dir() / "serve" / f"port-{args.port}"
    media = Path(args.media_root).expanduser() if args.media_root else None
    if media is not None and not media.is_dir():
        raise UsageError(f"--media-root {args.media_root}: not a directory")
    duration = parse_duration(args.job_max_duration, "--job-max-duration")
    limits = Limits(max_bytes=int(args.job_max_upload_mb * 1024 * 1024), max_duration=duration,
                    max_frames=int(duration * 120), read_timeout=args.read_timeout)
    return JobSettings(state_dir=state_dir, media_root=media, max_jobs=args.max_jobs, workers=args.job_workers,
                       retention=parse_duration(args.job_retention, "--job-retention"), batch=args.job_batch, limits=limits)


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from actionrec.serve import create_app
    from actionrec.serve.adapter import ModelAdapter

    settings = settings_from_args(args)
    # load here, so a bad model file is a one-line error and exit 2 before the port opens
    adapter = ModelAdapter(args.model, runtime=runtime_from_args(args), **backend_kwargs(args))
    app = create_app(adapter, settings=settings)
    log.info("serving %s on http://%s:%d/ (%s backend)", args.model, args.host, args.port, adapter.backend)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_keep_alive=5, access_log=False)
    return 0
