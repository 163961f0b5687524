"""Annotation list files of other toolkits, read the way their own code reads them.

- mmaction2 lists (``path label`` for videos, ``dir n_frames label`` for frame folders), with
  mmaction2's switches for multi-label lines and frame offsets;
- 3D-ResNets (Kensho Hara) JSON: ``root/<label>/<key>``, ``segment`` = [1, n_frames + 1].

Also the records every annotation reader returns (:class:`Sample`) and its error type.
"""

from __future__ import annotations

import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from actionrec.data.video import VIDEO_EXTENSIONS
from actionrec.errors import ActionrecError, UsageError
from actionrec.io import atomic_path

log = logging.getLogger(__name__)

SUBSETS = {"train": "train", "training": "train", "val": "val", "validate": "val", "validation": "val",
           "test": "test", "testing": "test", "all": "all"}


class AnnotationError(ActionrecError, ValueError):
    """A malformed or missing annotation file, or one that yields no samples."""


@dataclass
class Sample:
    """One labelled video (file or frame folder); ``n_frames`` if known."""

    path: str
    label: int
    n_frames: int | None = None


def subset_name(subset: str) -> str:
    try:
        return SUBSETS[subset.lower()]
    except KeyError:
        raise AnnotationError(f"subset must be one of train/val/test/all, got {subset!r}") from None


def read_lines(path: Path) -> list[str]:
    """Non-empty lines without CR/LF and surrounding spaces."""
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8-sig", errors="strict")
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{path}: not a UTF-8 text file ({e})") from None
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


# --- mmaction2 lists ---------------------------------------------------------------------------
MEDIA = ("auto", "videos", "rawframes")
_INT = re.compile(r"[+-]?[0-9]+")


@dataclass(frozen=True)
class ListEntry:
    """One line of an mmaction2 list.

    ``labels``: none on a label-less (inference) line, several on a multi-label line.
    ``n_frames`` and ``offset``: frame folders only (frames ``offset + 1 .. offset + n_frames``).
    """

    path: str
    labels: tuple[int, ...]
    n_frames: int | None = None
    offset: int | None = None
    where: str = field(default="", compare=False)  # "file:line", for messages


def is_video_path(path: str | os.PathLike) -> bool:
    """Whether ``path`` names a video file by its extension (else: a frame folder)."""
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def read_list(path: str | os.PathLike, *, media: str = "auto", multi_label: bool = False,
              with_offset: bool = False) -> list[ListEntry]:
    """The lines of an mmaction2 list, read as mmaction2's ``VideoDataset``/``RawframeDataset`` read them.

    Video lines are ``path [label ...]``, frame-folder lines ``dir [offset] n_frames [label ...]``.
    media: ``videos``, ``rawframes``, or ``auto`` (a path with a video extension is a video, any
    other path a frame folder). multi_label (mmaction2's ``multi_class``): any number of labels,
    the path is the first field. with_offset (mmaction2's ``with_offset``): frame lines give the
    offset of their first frame before ``n_frames``. Otherwise a line carries one label or none
    (an inference list), and its path may contain spaces. Which of these a line means is never
    guessed: a line that does not fit raises :class:`AnnotationError` naming ``file:line`` and the
    switch that would read it.
    """
    if media not in MEDIA:
        raise UsageError(f"media must be one of {', '.join(MEDIA)}, got {media!r}")
    path = Path(path)
    if path.suffix.lower() == ".json":
        raise AnnotationError(f"{path}: a JSON file is not an mmaction2 text list (3D-ResNets JSON: read_kh_json)")
    return [_list_entry(ln, f"{path}:{n}", media=media, multi_label=multi_label, with_offset=with_offset)
            for n, ln in enumerate(read_lines(path), 1)]


def _list_entry(ln: str, where: str, *, media: str, multi_label: bool, with_offset: bool) -> ListEntry:
    tokens = ln.split()
    if multi_label:  # as mmaction2: the first field is the path, every other field a number
        name, numbers = tokens[0], tokens[1:]
        bad = [t for t in numbers if not _INT.fullmatch(t)]
        if bad:
            raise AnnotationError(f"{where}: {bad[0]!r} is not an integer; multi-label lines are "
                                  f"'path [offset] [n_frames] label label ...' with a path without spaces, got {ln!r}")
    else:  # trailing integers are fields, the rest is the path (which may contain spaces)
        m = 0
        while m < len(tokens) - 1 and _INT.fullmatch(tokens[-1 - m]):
            m += 1
        name, numbers = (ln.rsplit(None, m)[0] if m else ln), tokens[len(tokens) - m:]
    frames = media == "rawframes" or (media == "auto" and not is_video_path(name))
    fixed = (["offset"] if frames and with_offset else []) + (["n_frames"] if frames else [])
    layout = " ".join(["dir" if frames else "path", *fixed, "label"])
    what = f"frame folder {name!r}" if frames else f"video {name!r}"
    if len(numbers) < len(fixed):
        hint = " (a video? give it its file extension or read with media='videos')" if media == "auto" else ""
        raise AnnotationError(f"{where}: expected '{layout}', got {ln!r}: {what} lacks {' and '.join(fixed)}{hint}")
    if not multi_label and len(numbers) > len(fixed) + 1:
        kinds = ["multi-label"] + (["with frame offsets"] if frames and not with_offset else [])
        switches = ["multi_label=True"] + (["with_offset=True"] if frames and not with_offset else [])
        raise AnnotationError(f"{where}: expected '{layout}', got {ln!r}: {len(numbers)} numbers after the {what}; "
                              f"if this is a list {' or '.join(kinds)}, read it with {' or '.join(switches)}")
    values = [int(t) for t in numbers]
    if any(v < 0 for v in values[: len(fixed)]):
        raise AnnotationError(f"{where}: negative {'/'.join(fixed)} in {ln!r}")
    fields = dict(zip(fixed, values))
    return ListEntry(name, tuple(values[len(fixed):]), fields.get("n_frames"), fields.get("offset"), where)


def write_list(path: str | os.PathLike, samples: list[Sample], *, with_n_frames: bool = False) -> None:
    """Write an mmaction2 list atomically: ``path label`` or (``with_n_frames``) ``dir n_frames label``."""
    lines = []
    for s in samples:
        if any(c in s.path for c in "\n\r"):
            raise AnnotationError(f"path contains a line break: {s.path!r}")
        if with_n_frames:
            if s.n_frames is None:
                raise AnnotationError(f"{s.path}: n_frames unknown (extract frames first)")
            lines.append(f"{s.path} {s.n_frames} {s.label}")
        else:
            lines.append(f"{s.path} {s.label}")
    with atomic_path(path) as tmp:
        tmp.write_text("".join(ln + "\n" for ln in lines))


def find_list(folder: str | os.PathLike, *, subset: str, split: int = 1) -> Path:
    """The list of ``subset`` in a folder written by ``actionrec prep lists`` or mmaction2's ``build_file_list.py``.

    Names: ``<dataset>_<subset>_split_<N>_<videos|rawframes>.txt`` or ``<dataset>_<subset>_list_<...>.txt``.
    mmaction2 calls the test list of a split ``val``; ``val`` and ``test`` each find either name.
    """
    folder = Path(folder)
    sub = subset_name(subset)
    names = ("train",) if sub == "train" else ("val", "test") if sub in ("val", "test") else ()
    found = sorted({p for name in names for pattern in (f"*_{name}_split_{split}_*.txt", f"*_{name}_list_*.txt")
                    for p in folder.glob(pattern)})
    if len(found) != 1:
        raise AnnotationError(f"{folder}: {'no' if not found else 'more than one'} {sub} list for split {split}"
                              f"{' (' + ', '.join(p.name for p in found) + ')' if found else ''}; name the list file")
    return found[0]


# --- 3D-ResNets (Kensho Hara) JSON -----------------------------------------------------------
def read_kh_json(path: str | os.PathLike, *, subset: str = "all") -> tuple[list[Sample], list[str]]:
    """Samples and classes of a 3D-ResNets JSON, read as its ``VideoDataset`` reads it.

    ``{"labels": [...], "database": {key: {"subset": "training"|"validation"|"testing",
    "annotations": {"label": name, "segment": [1, n_frames + 1]}}}}``. The video is
    ``<label>/<key>`` under the root (their loader's ``root/label/key``), or the entry's
    ``video_path``. Entries without a label (test entries) are counted and left out; a label that is
    not in ``labels`` or a segment that does not start at frame 1 is an error.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        classes = [str(c) for c in data["labels"]]
        db = dict(data["database"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise AnnotationError(f"{path}: not a 3D-ResNets annotation JSON ({type(e).__name__}: {e})") from None
    index = {c: i for i, c in enumerate(classes)}
    sub = subset_name(subset)
    out, unlabelled = [], 0
    for key, v in db.items():
        if not isinstance(v, dict) or not isinstance(v.get("annotations", {}), dict):
            raise AnnotationError(f"{path}: entry {key!r} is not an object with 'subset' and 'annotations'")
        if sub != "all" and SUBSETS.get(str(v.get("subset", "")).lower()) != sub:
            continue
        ann = v.get("annotations") or {}
        if "label" not in ann:
            unlabelled += 1
            continue
        if ann["label"] not in index:
            raise AnnotationError(f"{path}: entry {key!r} has label {ann['label']!r}, which is not in 'labels'")
        n_frames = None
        if "segment" in ann:
            seg = ann["segment"]
            if not (isinstance(seg, list) and len(seg) == 2 and all(type(x) is int for x in seg) and seg[0] == 1 <= seg[1]):
                raise AnnotationError(f"{path}: entry {key!r}: segment must be [1, n_frames + 1], got {seg!r}")
            n_frames = seg[1] - 1
        out.append(Sample(str(v["video_path"]) if "video_path" in v else f"{ann['label']}/{key}", index[ann["label"]], n_frames))
    if unlabelled:
        log.warning("%s: %d %s entries have no label and are left out", path, unlabelled, subset)
    return out, classes


def write_kh_json(path: str | os.PathLike, *, classes: list[str], subsets: dict[str, list[Sample]]) -> None:
    """Write a 3D-ResNets JSON atomically, as their ``VideoDataset`` reads it.

    ``subsets`` maps ``training``/``validation``/``testing`` to samples whose paths are
    ``<class>/<video or frame folder>``; keys are the bare video names (their loader finds
    ``root/<label>/<key>``), ``segment`` is ``[1, n_frames + 1]`` when ``n_frames`` is known.
    """
    db: dict[str, dict] = {}
    for subset, samples in subsets.items():
        for s in samples:
            rel, label = Path(s.path), classes[s.label]
            if rel.parent != Path(label):
                raise AnnotationError(f"{s.path}: 3D-ResNets JSON can only name videos at <label>/<video>; "
                                      f"this one is not directly in a folder named {label!r}")
            key = rel.stem if is_video_path(rel) else rel.name
            if key in db:
                raise AnnotationError(f"{s.path}: its name {key!r} is used twice (3D-ResNets JSON keys are bare video names)")
            ann: dict = {"label": label}
            if s.n_frames is not None:
                ann["segment"] = [1, s.n_frames + 1]
            db[key] = {"subset": subset, "annotations": ann}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"labels": classes, "database": db}), encoding="utf-8")
