"""Corrupt and hostile "videos" built at run time from the real clips in ``tests/data``.

Every mutant is one :class:`Mutant`: a path plus its class (``truncation``, ``byte_flip``,
``zeroed_range``, ``swapped_chunks``, ``absurd_size``, ``unknown_codec``, ``empty``,
``text_renamed``, ``html_renamed``, ``directory``, ``dangling_link``) and what a reader may do with
it: ``must_fail`` mutants are not videos at all (accepting one is a silent wrong result); the
others may decode, but only to frames of the source's size. Nothing here is committed: the tests
build a bounded sample, ``benchmarks/robustness_campaign.py`` the full set.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[1] / "data"
SOURCES = ("short.mp4", "xvid.avi", "rot0.mov")


@dataclass(frozen=True)
class Mutant:
    path: Path
    cls: str
    source: str
    detail: str
    must_fail: bool = False


def _box(data: bytes, fourcc: bytes, after: bytes | None = None) -> int:
    """Offset of ``fourcc`` (the box/chunk type), searching after ``after`` if given; -1 if absent."""
    start = data.find(after) if after else 0
    return -1 if start < 0 else data.find(fourcc, start)


def _patch(data: bytes, at: int, fmt: str, value: int) -> bytes | None:
    if at < 0 or at + struct.calcsize(fmt) > len(data):
        return None
    return data[:at] + struct.pack(fmt, value) + data[at + struct.calcsize(fmt):]


# (name, fourcc, search after, offset from the fourcc, struct format, value)
_ISO_FIELDS = [
    ("tkhd width 65535", b"tkhd", None, 80, ">I", 0xFFFF0000),
    ("tkhd height 0", b"tkhd", None, 84, ">I", 0),
    ("sample entry width 65535", b"avc1", b"stsd", 28, ">H", 0xFFFF),
    ("sample entry height 65535", b"avc1", b"stsd", 30, ">H", 0xFFFF),
    ("sample entry 0x0", b"avc1", b"stsd", 28, ">I", 0),
    ("stsz count 2^31-1", b"stsz", None, 12, ">I", 0x7FFFFFFF),
    ("stsz count 2^32-1", b"stsz", None, 12, ">I", 0xFFFFFFFF),
    ("stts entries 2^32-1", b"stts", None, 8, ">I", 0xFFFFFFFF),
    ("stts first count 2^31", b"stts", None, 12, ">I", 0x80000000),
    ("mdhd timescale 0", b"mdhd", None, 16, ">I", 0),
    ("mdhd duration 2^32-1", b"mdhd", None, 20, ">I", 0xFFFFFFFF),
    ("moov size 2^32-1", b"moov", None, -4, ">I", 0xFFFFFFFF),
    ("mdat size 2^32-16", b"mdat", None, -4, ">I", 0xFFFFFFF0),
    ("moov size 1 (64-bit size follows)", b"moov", None, -4, ">I", 1),
    ("stsc entries 2^32-1", b"stsc", None, 8, ">I", 0xFFFFFFFF),
]
_AVI_FIELDS = [
    ("avih total frames 2^32-1", b"avih", None, 24, "<I", 0xFFFFFFFF),
    ("avih width 2^31-1", b"avih", None, 40, "<I", 0x7FFFFFFF),
    ("avih height 2^31-1", b"avih", None, 44, "<I", 0x7FFFFFFF),
    ("strh scale 0", b"strh", None, 28, "<I", 0),
    ("strh rate 0", b"strh", None, 32, "<I", 0),
    ("strh length 2^32-1", b"strh", None, 40, "<I", 0xFFFFFFFF),
    ("strf width 2^31-1", b"strf", None, 12, "<i", 0x7FFFFFFF),
    ("strf height -2^31", b"strf", None, 16, "<i", -0x80000000),
    ("strf width 65536, height 65536", b"strf", None, 12, "<Q", (65536 << 32) | 65536),
    ("RIFF size 2^32-1", b"RIFF", None, 4, "<I", 0xFFFFFFFF),
    ("movi list size 2^32-1", b"movi", None, -4, "<I", 0xFFFFFFFF),
    ("idx1 size 2^32-1", b"idx1", None, 4, "<I", 0xFFFFFFFF),
    ("strf size 2^32-1", b"strf", None, 4, "<I", 0xFFFFFFFF),
]
_UNKNOWN_CODEC = {  # fourcc → replacement, in the sample description / stream header
    ".mp4": [(b"avc1", b"stsd", b"zzzz")],
    ".mov": [(b"avc1", b"stsd", b"zzzz")],
    ".avi": [(b"xvid", b"strh", b"zzzz"), (b"XVID", b"strf", b"ZZZZ")],
}


def _absurd(data: bytes, suffix: str) -> list[tuple[str, bytes]]:
    out = []
    for name, fourcc, after, off, fmt, value in _AVI_FIELDS if suffix == ".avi" else _ISO_FIELDS:
        at = _box(data, fourcc, after)
        patched = _patch(data, at + off, fmt, value) if at >= 0 else None
        if patched is not None:
            out.append((name, patched))
    return out


def _unknown_codec(data: bytes, suffix: str) -> bytes:
    for fourcc, after, new in _UNKNOWN_CODEC[suffix]:
        at = _box(data, fourcc, after)
        if at >= 0:
            data = data[:at] + new + data[at + 4:]
    return data


def _random_mutations(data: bytes, rng: np.random.Generator, counts: dict[str, int]) -> list[tuple[str, str, bytes]]:
    n = len(data)
    out: list[tuple[str, str, bytes]] = []
    for i in range(counts["truncation"]):
        keep = int(n * (i + 0.5) / counts["truncation"]) if i % 2 else int(rng.integers(1, n))
        out.append(("truncation", f"first {keep} of {n} bytes", data[:keep]))
    for _ in range(counts["byte_flip"]):
        b = bytearray(data)
        k = int(rng.integers(1, 33))
        pos = rng.integers(0, n, size=k)
        for p in pos:
            b[p] ^= int(rng.integers(1, 256))
        out.append(("byte_flip", f"{k} bytes at {sorted(int(p) for p in pos)[:4]}...", bytes(b)))
    for _ in range(counts["zeroed_range"]):
        start = int(rng.integers(0, n))
        length = int(rng.integers(1, max(2, n // 8)))
        b = bytearray(data)
        b[start:start + length] = bytes(len(b[start:start + length]))
        out.append(("zeroed_range", f"{length} bytes at {start}", bytes(b)))
    for _ in range(counts["swapped_chunks"]):
        length = int(rng.integers(16, max(17, n // 10)))
        a, c = sorted(int(x) for x in rng.integers(0, n - length, size=2))
        if c - a < length:
            c = min(n - length, a + length)
        b = bytearray(data)
        b[a:a + length], b[c:c + length] = data[c:c + length], data[a:a + length]
        out.append(("swapped_chunks", f"{length} bytes at {a} <-> {c}", bytes(b)))
    return out


FULL_COUNTS = {"truncation": 14, "byte_flip": 24, "zeroed_range": 14, "swapped_chunks": 14}
CLASSES = ("truncation", "byte_flip", "zeroed_range", "swapped_chunks", "absurd_size", "unknown_codec", "empty",
           "text_renamed", "html_renamed", "directory", "dangling_link")


def build_mutants(out: Path, *, seed: int = 0, counts: dict[str, int] | None = None,
                  sources: tuple[str, ...] = SOURCES) -> list[Mutant]:
    """Write every mutant into ``out`` (an empty folder) and return them in a fixed order."""
    rng = np.random.default_rng(seed)
    counts = counts or FULL_COUNTS
    out.mkdir(parents=True, exist_ok=True)
    mutants: list[Mutant] = []

    def add(cls: str, src: str, detail: str, write: Callable[[Path], None], *, suffix: str, must_fail: bool = False) -> None:
        path = out / f"{len(mutants):04d}_{cls}_{Path(src).stem}{suffix}"
        write(path)
        mutants.append(Mutant(path, cls, src, detail, must_fail))

    for src in sources:
        data = (DATA / src).read_bytes()
        suffix = Path(src).suffix
        for cls, detail, payload in _random_mutations(data, rng, counts):
            add(cls, src, detail, lambda p, b=payload: p.write_bytes(b), suffix=suffix)
        for detail, payload in _absurd(data, suffix):
            add("absurd_size", src, detail, lambda p, b=payload: p.write_bytes(b), suffix=suffix)
        add("unknown_codec", src, "codec fourcc replaced", lambda p, b=_unknown_codec(data, suffix): p.write_bytes(b),
            suffix=suffix)
    for suffix in (".mp4", ".avi"):
        add("empty", "-", "0 bytes", lambda p: p.write_bytes(b""), suffix=suffix, must_fail=True)
        add("text_renamed", "-", "a text file", lambda p: p.write_text("not a video\n" * 50), suffix=suffix,
            must_fail=True)
        add("html_renamed", "-", "an HTML error page",
            lambda p: p.write_text("<!DOCTYPE html><html><head><title>404 Not Found</title></head>"
                                   "<body><h1>Not Found</h1></body></html>\n"), suffix=suffix, must_fail=True)
        add("directory", "-", "an empty directory", lambda p: p.mkdir(), suffix=suffix, must_fail=True)
        add("directory", "-", "a directory with a file", lambda p: (p.mkdir(), (p / "notes.txt").write_text("x")),
            suffix=suffix, must_fail=True)
        add("dangling_link", "-", "symlink to a missing file",
            lambda p: os.symlink(out / "missing-target.mp4", p), suffix=suffix, must_fail=True)
    return mutants


def sample_mutants(mutants: list[Mutant], n: int, *, seed: int = 0) -> list[Mutant]:
    """``n`` mutants with every class (and every must-fail kind) present at least once."""
    rng = np.random.default_rng(seed)
    first: dict[str, Mutant] = {}
    for m in mutants:
        first.setdefault(m.cls, m)
    chosen = set(first.values())
    rest = [m for m in mutants if m not in chosen]
    extra = rng.choice(len(rest), size=min(len(rest), max(0, n - len(chosen))), replace=False)
    chosen |= {rest[int(i)] for i in extra}
    return [m for m in mutants if m in chosen]
