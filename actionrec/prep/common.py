"""Shared machinery of the preparation steps: discovery, sharding, locked and verified output folders.

Every step works per video and writes into a temporary folder ``.<name>.tmp-<host>-<pid>`` beside
the final one. The folder is published (one ``rename``) only after its files are verified against
its :class:`Layout`: the count in its marker file (``n_frames``, ``n_flow``) and exactly the
numbered JPEGs it promises, none empty or cut short. So finished videos are skipped on a rerun,
and a published folder found inconsistent later (files lost or added) is redone.

A run holds :func:`actionrec.io.output_lock` on its output for its whole length (one lock per
``--shard i/N``, so the shards of one job run side by side): a second run on the same output
stops at once with :class:`~actionrec.errors.LockedError` naming the holder. Only the holder
removes temporary folders, at start: those a killed run left behind.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import shutil
import socket
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from actionrec.errors import ActionrecError, UsageError
from actionrec.io import output_lock
from actionrec.shard import parse_shard, take_shard  # noqa: F401 - re-exported for the prep steps
from actionrec.runtime import available_cores as default_workers  # noqa: F401 - one owner; prep's name

log = logging.getLogger(__name__)


TMP_TAG = ".tmp-"


def tmp_dir_for(final: Path) -> Path:
    return final.parent / f".{final.name}{TMP_TAG}{socket.gethostname()}-{os.getpid()}"


def die_with_parent() -> None:
    """Pool initializer: on Linux, a worker is killed when its parent dies (even by ``kill -9``),
    so no orphan keeps writing into an output whose lock is gone."""
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux / glibc
        pass


def pool_init() -> None:
    """Pool initializer of every prep pool: die with the parent, and one thread per process
    (:func:`actionrec.runtime.worker_init`: the pool's processes are its parallelism)."""
    from actionrec.runtime import worker_init

    die_with_parent()
    worker_init()


# --- argument checks -----------------------------------------------------------------------
def check_int(name: str, value: int | None, *, lo: int, hi: int | None = None, none_ok: bool = False) -> None:
    """Raise :class:`UsageError` unless ``lo <= value (<= hi)`` (``None`` allowed with ``none_ok``)."""
    if value is None and none_ok:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        want = f"an integer in {lo}..{hi}" if hi is not None else f"an integer >= {lo}"
        raise UsageError(f"{name} must be {want}, got {value!r}")


def check_positive(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise UsageError(f"{name} must be a finite number > 0, got {value!r}")


def check_workers(workers: int | None) -> int:
    """``--workers``: None means every core; otherwise at least 1."""
    check_int("--workers", workers, lo=1, none_ok=True)
    return workers or default_workers()


# --- locked output folders -----------------------------------------------------------------
@contextlib.contextmanager
def locked_output(dst: Path, *, purpose: str, shard: tuple[int, int]) -> Iterator[None]:
    """Hold the output lock of ``dst`` for the block: alone, or shared by the shards of a sharded job,
    each of which also holds its own ``i/N`` lock (so shards run side by side, and an unsharded run
    never sweeps the temporary folders of a live shard)."""
    i, n = shard
    label = purpose + (f" shard {i}/{n}" if n > 1 else "")
    with output_lock(dst, purpose=label, shared=n > 1):
        if n == 1:
            yield
            return
        with output_lock(dst / ".actionrec-shards" / f"{i}-of-{n}", purpose=label):
            yield


def sweep_temps(dst: Path, finals: Iterable[Path], *, everything: bool) -> int:
    """Remove temporary folders of killed runs beside ``finals`` (all of them with ``everything``).

    Call it only while holding the output lock. Returns the number removed.
    """
    by_parent: dict[Path, set[str]] = {}
    for f in finals:
        by_parent.setdefault(f.parent, set()).add(f.name)
    if everything:
        by_parent.setdefault(dst, set())
    removed = 0
    for parent, names in by_parent.items():
        try:
            entries = os.listdir(parent)
        except FileNotFoundError:
            continue
        for e in entries:
            if not e.startswith(".") or TMP_TAG not in e:
                continue
            if everything or e[1:].split(TMP_TAG, 1)[0] in names:
                shutil.rmtree(parent / e, ignore_errors=True)
                removed += 1
    if removed:
        log.info("removed %d temporary folder(s) left by an interrupted run", removed)
    return removed


@dataclass(frozen=True)
class Layout:
    """What a published folder holds: ``marker`` (a count n) and ``prefix00001.jpg`` … for each prefix."""

    marker: str
    prefixes: tuple[str, ...]
    extra: tuple[str, ...] = ()

    def names(self, n: int) -> set[str]:
        return {f"{p}{k:05d}.jpg" for p in self.prefixes for k in range(1, n + 1)}


FRAMES_LAYOUT = Layout("n_frames", ("img_",), extra=("fps",))
FLOW_LAYOUT = Layout("n_flow", ("flow_x_", "flow_y_"))


class PrepOutputError(ActionrecError):
    """An output folder that does not hold what its marker promises."""


def check_folder(folder: Path, layout: Layout, *, deep: bool) -> str | None:
    """Why ``folder`` is not a complete output of ``layout`` (None if it is).

    Always: the marker holds a count n >= 1 and the numbered files are exactly those n per prefix.
    ``deep``: also every file is non-empty and every JPEG starts and ends with its markers
    (read before publishing; reruns do the cheap listing only).
    """
    try:
        n = int((folder / layout.marker).read_text().strip())
    except (OSError, ValueError) as e:
        return f"no readable {layout.marker} ({type(e).__name__})"
    if n < 1:
        return f"{layout.marker} says {n}"
    present = set(os.listdir(folder))
    numbered = {e for e in present if e.endswith(".jpg") and e.startswith(layout.prefixes)}
    expected = layout.names(n)
    if numbered != expected:
        missing, unexpected = len(expected - numbered), len(numbered - expected)
        return f"{layout.marker} says {n} but {missing} file(s) are missing and {unexpected} unexpected"
    absent = [e for e in layout.extra if e not in present]
    if absent:
        return f"{absent[0]} is missing"
    if deep:
        for name in sorted(expected):
            with open(folder / name, "rb") as f:
                head = f.read(2)
                f.seek(max(0, os.fstat(f.fileno()).st_size - 2))
                tail = f.read(2)
            if head != b"\xff\xd8" or tail != b"\xff\xd9":  # JPEG start and end of image
                return f"{name} is empty or not a complete JPEG"
    return None


def needs_work(final: Path, layout: Layout) -> bool:
    """False if ``final`` is a complete output; True if absent or found inconsistent (then removed).

    A folder without the marker was not published by this tool: it is left alone and reported.
    Call it only while holding the output lock.
    """
    if not final.exists():
        return True
    if not (final / layout.marker).exists():
        raise PrepOutputError(f"{final} exists but holds no {layout.marker}: not written by actionrec prep; "
                              "remove it to redo it")
    reason = check_folder(final, layout, deep=False)
    if reason is None:
        return False
    log.warning("redoing %s: %s", final, reason)
    aside = tmp_dir_for(final).with_name(tmp_dir_for(final).name + "-bad")
    os.rename(final, aside)  # out of sight at once; the files go next
    shutil.rmtree(aside, ignore_errors=True)
    return True


def publish_dir(tmp: Path, final: Path, layout: Layout, n: int) -> None:
    """Write the marker (count ``n``), verify ``tmp`` against ``layout``, flush it and rename it onto ``final``."""
    (tmp / layout.marker).write_text(f"{n}\n")
    reason = check_folder(tmp, layout, deep=True)
    if reason is not None:
        raise PrepOutputError(f"{final}: not published, {reason}")
    for f in tmp.iterdir():  # flush file contents before the rename makes them visible
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    os.rename(tmp, final)


def find_collisions(rels: Iterable[Path]) -> dict[Path, list[Path]]:
    """Inputs that map to the same output folder (``a.avi`` and ``a.mp4`` → ``a``)."""
    by_out: dict[Path, list[Path]] = {}
    for r in rels:
        by_out.setdefault(r.with_suffix(""), []).append(r)
    return {k: v for k, v in by_out.items() if len(v) > 1}


def check_distinct(src: Path, dst: Path, what: str) -> None:
    """Refuse writing the output into the input folder itself (outputs are whole folders)."""
    if src.resolve() == dst.resolve():
        raise UsageError(f"the output folder {dst} must differ from the {what} folder {src}")


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
    """Frame folders under ``root``, as sorted relative paths: those holding ``marker`` (ours, 3D-ResNets'),
    and those made by other tools (ffmpeg, mmaction2's ``build_rawframes``): RGB frames (``img_00001.jpg`` …,
    the names :mod:`actionrec.data.frames` reads) and no ``marker`` and no sub-folders."""
    from actionrec.data.frames import RGB_PATTERN

    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        if marker in filenames or (not dirnames and any(RGB_PATTERN.match(f) for f in filenames)):
            out.append(Path(dirpath).relative_to(root))
    return sorted(out)


def check_consecutive(folder: Path, files: list[Path]) -> str | None:
    """Why the numbered frames of ``folder`` are not consecutive (the first missing number), or None."""
    from actionrec.data.frames import RGB_PATTERN

    numbers = [int(m.group(1)) for f in files if (m := RGB_PATTERN.match(f.name))]
    if not numbers:
        return None
    first = numbers[0]
    for i, n in enumerate(numbers):
        if n != first + i:
            return (f"frame {first + i} is missing (frames numbered {first}..{numbers[-1]}, {len(numbers)} files; "
                    f"after {files[i - 1].name} comes {files[i].name})")
    return None
