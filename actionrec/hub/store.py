"""The weights cache under ``$ACTIONREC_HOME``: where each file lives, checking files, locks, atomic publishing.

No torch and no network here. Layout (``cache_dir()``, default ``~/.cache/actionrec``)::

    sources/<name>/<file_name>          upstream's file, verified (kept: re-conversion needs no network)
    sources/<name>/<file_name>.part     a download in progress (resumed by the next fetch)
    weights/<name>.safetensors          our converted checkpoint: what load_model(name) reads
    weights/<name>.json                 its record: URL, hashes, sizes, when and by which version
    locks/<name>.lock                   held while one process fetches or converts <name>
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from actionrec.errors import ActionrecError
from actionrec.models.registry import PretrainedCfg

__all__ = ["FetchError", "cache_dir", "source_path", "weights_path", "record_path", "locked", "hash_file",
           "check_file", "read_record", "write_json_atomic", "cached_state"]

log = logging.getLogger(__name__)


class FetchError(ActionrecError):
    """Known weights could not be downloaded, were not what the catalogue says, or could not be converted."""


def cache_dir() -> Path:
    """``$ACTIONREC_HOME``, default ``~/.cache/actionrec``."""
    return Path(os.environ.get("ACTIONREC_HOME") or Path.home() / ".cache" / "actionrec").expanduser()


def source_path(ws: PretrainedCfg) -> Path:
    return cache_dir() / "sources" / ws.name / (ws.file_name or f"{ws.name}.bin")


def weights_path(ws: PretrainedCfg) -> Path:
    return cache_dir() / "weights" / f"{ws.name}.safetensors"


def record_path(ws: PretrainedCfg) -> Path:
    return cache_dir() / "weights" / f"{ws.name}.json"


@contextmanager
def locked(ws: PretrainedCfg, timeout: float = 3600) -> Iterator[None]:
    """Hold ``ws``'s lock (across processes and threads) while fetching or converting it."""
    from filelock import FileLock, Timeout

    path = cache_dir() / "locks" / f"{ws.name}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.info("%s: another process is fetching it; waiting for it to finish", ws.name)
        try:
            lock.acquire(timeout=timeout)
        except Timeout:
            raise FetchError(f"{ws.name}: another process has held {path} for {timeout:.0f} s; remove it if none runs") from None
    try:
        yield
    finally:
        lock.release()


def hash_file(path: Path) -> dict[str, Any]:
    """Size, SHA-256, SHA-1 and Git blob id of ``path``, in one read."""
    size = path.stat().st_size
    sha256, sha1, git = hashlib.sha256(), hashlib.sha1(), hashlib.sha1(f"blob {size}\0".encode())  # noqa: S324 - upstream's ids
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            sha256.update(chunk)
            sha1.update(chunk)
            git.update(chunk)
    return {"size": size, "sha256": sha256.hexdigest(), "sha1": sha1.hexdigest(), "git-sha1": git.hexdigest()}


def check_file(ws: PretrainedCfg, path: Path, origin: str) -> dict[str, Any]:
    """Hash ``path`` and check it against ``ws.digest``; the hashes, or :class:`FetchError` naming ``origin``."""
    hashes = hash_file(path)
    if not ws.digest:
        return hashes
    algo, want = ws.digest_algo, ws.digest_value
    got = hashes["sha256" if algo == "sha256-prefix" else algo]
    if got == want or (algo == "sha256-prefix" and got.startswith(want)):
        return hashes
    size = hashes["size"]
    what = f"{size} bytes"
    if ws.size_mb and size < 0.9 * ws.size_mb * 1e6:
        what = f"truncated: {size / 1e6:.1f} MB of about {ws.size_mb:.0f} MB"
    elif _looks_like_html(path):
        what = "an HTML page, not weights"
    short = min(len(want), 16)
    raise FetchError(f"{ws.name}: {origin} is not the published file ({what}): its {_LABELS[algo]} is {got[:short]}…, "
                     f"expected {want[:short]}…; nothing was kept")


_LABELS = {"sha256": "SHA-256", "sha256-prefix": "SHA-256", "sha1": "SHA-1", "git-sha1": "Git blob id"}


def _looks_like_html(path: Path) -> bool:
    with open(path, "rb") as f:
        head = f.read(512).lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head"))


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder (readers never see half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_record(ws: PretrainedCfg) -> dict[str, Any] | None:
    """The cache record of ``ws`` (``None`` when not cached or unreadable)."""
    try:
        return json.loads(record_path(ws).read_text())
    except (OSError, ValueError):
        return None


def cached_state(ws: PretrainedCfg) -> str:
    """``"yes"`` (converted), ``"source"`` (downloaded, not converted), ``"partial"`` (a download to resume) or ``"no"``."""
    if weights_path(ws).is_file():
        return "yes"
    src = source_path(ws)
    if src.is_file():
        return "source"
    return "partial" if src.with_name(src.name + ".part").is_file() else "no"
