"""Shared machinery of the preparation steps: discovery, sharding, atomic output folders, worker pools.

Every step works per video: its output folder appears (by one ``rename``) only when complete, so
finished videos are skipped on a rerun and a killed run leaves at most stale temporary folders
(``.<name>.tmp-<host>-<pid>``), which the next run over that video removes.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
from collections.abc import Iterable
from pathlib import Path

from actionrec.shard import parse_shard, take_shard  # noqa: F401 - re-exported for the prep steps

log = logging.getLogger(__name__)


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def tmp_dir_for(final: Path) -> Path:
    return final.parent / f".{final.name}.tmp-{socket.gethostname()}-{os.getpid()}"


def clear_stale(final: Path) -> None:
    """Remove temporary folders left beside ``final`` by killed runs."""
    if final.parent.is_dir():
        for p in final.parent.glob(f".{final.name}.tmp-*"):
            shutil.rmtree(p, ignore_errors=True)


def publish_dir(tmp: Path, final: Path) -> bool:
    """Move a completed temporary folder onto ``final``; False if another run got there first."""
    for f in tmp.iterdir():  # flush file contents before the rename makes them visible
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    try:
        os.rename(tmp, final)
    except OSError:
        if final.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
            return False
        raise
    return True


def is_done(final: Path, marker: str) -> bool:
    return (final / marker).is_file()


def find_files(root: Path, exts: Iterable[str]) -> list[Path]:
    """Files under ``root`` with one of ``exts`` (sorted relative paths; hidden entries ignored)."""
    exts = {e.lower() for e in exts}
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in filenames:
            if not f.startswith(".") and Path(f).suffix.lower() in exts:
                out.append(Path(dirpath, f).relative_to(root))
    return sorted(out)


def find_frame_dirs(root: Path, marker: str = "n_frames") -> list[Path]:
    """Complete frame folders under ``root`` (those holding ``marker``), as sorted relative paths."""
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if marker in filenames:
            out.append(Path(dirpath).relative_to(root))
    return sorted(out)
