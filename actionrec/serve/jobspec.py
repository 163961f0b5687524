"""What a client sends and sees of a job: parameters, a path under the media root, the job's JSON view.

Pure helpers (no threads, no database) for :mod:`actionrec.serve.jobs`; every refusal is an
:class:`~actionrec.serve.uploads.UploadError` with a 4xx status and a message naming the problem.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path, PurePosixPath
from typing import Any

from actionrec.errors import UsageError
from actionrec.serve.uploads import UploadError

__all__ = ["PARAMS", "parse_params", "resolve_under", "job_view"]

# the job parameters a client may give (query string or JSON body): SegmentParams' fields and topk
PARAMS: dict[str, type] = {"window_s": float, "window_frames": int, "stride_s": float, "stride_frames": int,
                           "smooth": int, "threshold": float, "min_segment_s": float, "topk": int}
MAX_TOPK = 100
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(//)?")


def parse_params(values: dict[str, Any], adapter: Any) -> dict[str, Any]:
    """``values`` (strings from a query, or JSON values) checked into segment parameters + ``topk``; 422 otherwise."""
    given: dict[str, Any] = {}
    for key, raw in values.items():
        kind = PARAMS.get(key)
        if kind is None:
            raise UploadError(422, f"unknown job parameter {key[:40]!r}; choose from {', '.join(PARAMS)}")
        given[key] = _convert(key, raw, kind)
    topk = given.pop("topk", 5)
    if isinstance(topk, bool) or not isinstance(topk, int) or not 1 <= topk <= MAX_TOPK:
        raise UploadError(422, f"topk must be an integer in [1, {MAX_TOPK}], got {topk!r}")
    try:
        params = adapter.segment_params(given)
    except UsageError as e:
        raise UploadError(422, str(e)) from None
    return {**params, "topk": topk}


def _convert(key: str, raw: Any, kind: type) -> Any:
    if not isinstance(raw, str):
        return raw  # JSON numbers: SegmentParams checks them
    try:
        return kind(raw)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise UploadError(422, f"{key} must be {what}, got {raw[:40]!r}") from None


def resolve_under(root: Path, text: Any) -> Path:
    """The regular file ``text`` names inside ``root`` (relative to it, or absolute), after resolving symlinks.

    400: a URL, ``..``, not a regular file; 403: outside ``root`` (also through a symlink) or unreadable;
    404: no such file; 422: not a usable string. Messages show the client's own text, never ``root``.
    """
    if not isinstance(text, str) or not text.strip():
        raise UploadError(422, "'path' must be a non-empty string: a file under the server's media root")
    shown = text[:200]
    if len(text) > 4096 or any(ord(c) < 32 for c in text):
        raise UploadError(422, "'path' is not a usable file name (too long, or control characters)")
    if _URL.match(text) or text.startswith("//"):
        raise UploadError(400, f"{shown!r}: this server fetches no URLs; upload the file or name a path under its media root")
    pure = PurePosixPath(text)
    if ".." in pure.parts:
        raise UploadError(400, f"{shown!r}: '..' is not allowed in a path")
    real = Path(os.path.realpath(Path(text) if pure.is_absolute() else root / pure))
    if real != root and root not in real.parents:
        raise UploadError(403, f"{shown!r} is outside the media root")
    if not real.exists():
        raise UploadError(404, f"no file {shown!r} under the media root")
    if not real.is_file():
        raise UploadError(400, f"{shown!r} is not a regular file")
    if not os.access(real, os.R_OK):
        raise UploadError(403, f"{shown!r} cannot be read by the server")
    return real


def job_view(job: dict[str, Any], run: Any, retention: float) -> dict[str, Any]:
    """The JSON a client sees of a job row (``run``: the live figures of a running job, or ``None``)."""
    plan = json.loads(job["plan"]) if job["plan"] else None
    probe = json.loads(job["probe"]) if job["probe"] else {}
    params = json.loads(job["params"])
    if plan:
        params = {**plan["params"], "topk": params.get("topk", 5)}
    total = (run.total if run is not None else None) or job["windows_total"]
    done = run.done if run is not None else job["windows_done"]
    if job["state"] == "done":
        progress = 100.0
    else:
        progress = 100.0 * done / total if total else 0.0
    eta = None
    if run is not None and total and run.done > run.first:
        per_window = (time.monotonic() - run.started) / (run.done - run.first)
        eta = round(per_window * (total - run.done), 1)
    finished = job["finished"]
    return {
        "id": job["id"], "state": job["state"], "video": job["name"], "source": job["source"],
        "progress": round(min(progress, 100.0), 1), "windows_done": done, "windows_total": total, "eta_s": eta,
        "duration": plan["duration"] if plan else probe.get("duration"), "params": params, "error": job["error"],
        "created": _t(job["created"]), "started": _t(job["started"]), "finished": _t(finished),
        "expires": _t(finished + retention) if finished else None,
    }


def _t(t: float | None) -> float | None:
    return None if t is None else round(t, 3)
