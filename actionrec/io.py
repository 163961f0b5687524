"""Atomic file writing: a kill at any moment leaves either the old file or the new one."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(dst: str | os.PathLike, *, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``dst``; rename it onto ``dst`` if the block succeeds.

    The temporary file lives in the same directory, so the final ``os.replace`` is atomic.
    On error the temporary file is removed and ``dst`` is left untouched.
    """
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=suffix or dst.suffix or ".tmp", dir=dst.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as f:
            os.fsync(f.fileno())
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual mode
        os.replace(tmp_path, dst)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


# atomic_path's temporaries: mkstemp's ".<name>.<8 random characters><suffix>"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.[a-z0-9_]{8}(?P<suffix>\.[^.]+)$")


def remove_stale_temporaries(directory: str | os.PathLike) -> list[Path]:
    """Delete the temporaries that :func:`atomic_path` left under ``directory`` (kill -9, power loss).

    Only for the run that owns ``directory`` (holds its :func:`output_lock`): another writer's live
    temporary would be deleted too. Returns the removed paths.
    """
    removed = []
    for root, _dirs, files in os.walk(directory):
        for name in files:
            m = _TEMP_RE.match(name)
            if m and (m["name"].endswith(m["suffix"]) or m["suffix"] == ".tmp"):
                path = Path(root) / name
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
    return removed


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text_atomic(dst: str | os.PathLike, text: str) -> None:
    with atomic_path(dst) as tmp:
        tmp.write_text(text)


LOCK_NAME = ".actionrec.lock"


def _shorten(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 3] + "..."


@contextlib.contextmanager
def output_lock(directory: str | os.PathLike, *, purpose: str, shared: bool = False) -> Iterator[Path]:
    """Hold an advisory lock on an output ``directory`` for the whole block (one writer at a time).

    A second run on the same directory fails at once with :class:`~actionrec.errors.LockedError`
    naming the holder (its pid, host, command and start time). The lock is an ``flock`` on
    ``directory/.actionrec.lock``, so the kernel releases it when the holder exits, even after
    ``kill -9``: a stale lock file never blocks a later run. (NFS without ``flock`` support is
    not covered.) ``shared=True`` takes a shared lock: several such holders (the shards of one job)
    may hold it together, and they exclude every exclusive holder.
    """
    import fcntl
    import json
    import socket
    import sys
    import time

    from actionrec.errors import LockedError

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / LOCK_NAME
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666 & ~_umask())
    try:
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            try:
                holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
                who = (
                    f"{holder.get('purpose', '?')} (pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
                    f"started {holder.get('started', '?')}: {_shorten(str(holder.get('command', '?')), 80)})"
                )
            except (ValueError, OSError):
                who = "another process"
            raise LockedError(f"{directory}: in use by {who}; wait for it to finish or choose another output") from None
        info = {
            "purpose": purpose,
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "command": " ".join(sys.argv)[:500],
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        yield path
    finally:
        os.close(fd)  # releases the flock
