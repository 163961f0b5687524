"""Annotation files: UCF101, HMDB51, Kinetics, class folders, mmaction2 lists and KH-style JSON.

Every loader returns ``(samples, class_names)``. Labels are 0-based indices into ``class_names``.
Paths in the returned samples are joined with ``root``. Videos that are listed but missing or
empty are reported once (count and first names) and left out.
"""

from __future__ import annotations

import csv
import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actionrec.io import atomic_path
from actionrec.errors import ActionrecError

log = logging.getLogger(__name__)

KINDS = ("list", "folder", "ucf101", "hmdb51", "kinetics")
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


def _subset(subset: str) -> str:
    try:
        return SUBSETS[subset.lower()]
    except KeyError:
        raise AnnotationError(f"subset must be one of train/val/test/all, got {subset!r}") from None


def _lines(path: Path) -> list[str]:
    """Non-empty lines without CR/LF and surrounding spaces."""
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    text = path.read_text(encoding="utf-8-sig", errors="strict")
    return [ln.strip() for ln in text.splitlines() if ln.strip()]


# --- UCF101 -----------------------------------------------------------------------------------
def read_ucf101_classes(split_dir: str | os.PathLike) -> list[str]:
    """Class names from ``classInd.txt`` (``1 ApplyEyeMakeup``; 1-based ids)."""
    path = Path(split_dir) / "classInd.txt"
    pairs = []
    for n, ln in enumerate(_lines(path), 1):
        parts = ln.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise AnnotationError(f"{path}:{n}: expected '<id> <class>', got {ln!r}")
        pairs.append((int(parts[0]), parts[1]))
    ids = sorted(i for i, _ in pairs)
    if ids != list(range(1, len(pairs) + 1)):
        raise AnnotationError(f"{path}: class ids are not 1..{len(pairs)}")
    return [c for _, c in sorted(pairs)]


def parse_ucf101(split_dir: str | os.PathLike, *, split: int = 1, subset: str = "train") -> tuple[list[tuple[str, int]], list[str]]:
    """(relative path, label) pairs of a UCF101 split; the test lists carry no labels (taken from the folder)."""
    split_dir = Path(split_dir)
    classes = read_ucf101_classes(split_dir)
    index = {c: i for i, c in enumerate(classes)}
    sub = _subset(subset)
    if sub not in ("train", "test", "val"):
        raise AnnotationError(f"UCF101 has train and test lists, not {subset!r}")
    path = split_dir / f"{'train' if sub == 'train' else 'test'}list{split:02d}.txt"
    out = []
    for n, ln in enumerate(_lines(path), 1):
        parts = ln.split()
        rel = parts[0]
        cls = rel.split("/")[0]
        if cls not in index:
            raise AnnotationError(f"{path}:{n}: unknown class folder {cls!r}")
        label = index[cls]
        if len(parts) > 1 and int(parts[1]) - 1 != label:
            raise AnnotationError(f"{path}:{n}: label {parts[1]} does not match class {cls!r}")
        out.append((rel, label))
    return out, classes


# --- HMDB51 -----------------------------------------------------------------------------------
def parse_hmdb51(split_dir: str | os.PathLike, *, split: int = 1, subset: str = "train") -> tuple[list[tuple[str, int]], list[str]]:
    """(``class/video.avi``, label) pairs from ``<class>_test_split<N>.txt`` (tags 1 train, 2 test, 0 unused)."""
    split_dir = Path(split_dir)
    suffix = f"_test_split{split}.txt"
    files = sorted(p for p in split_dir.glob(f"*{suffix}"))
    if not files:
        raise AnnotationError(f"no HMDB51 split files '*{suffix}' in {split_dir}")
    classes = [p.name[: -len(suffix)] for p in files]
    sub = _subset(subset)
    want = {"train": "1", "test": "2", "val": "2"}.get(sub)
    if want is None:
        raise AnnotationError(f"HMDB51 has train and test splits, not {subset!r}")
    out = []
    for label, (cls, path) in enumerate(zip(classes, files)):
        for n, ln in enumerate(_lines(path), 1):
            parts = ln.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise AnnotationError(f"{path}:{n}: expected '<video>.avi <0|1|2>', got {ln!r}")
            if parts[1] == want:
                out.append((f"{cls}/{parts[0]}", label))
    return out, classes


# --- Kinetics ---------------------------------------------------------------------------------
def kinetics_clip_name(youtube_id: str, start: float, end: float, ext: str = ".mp4") -> str:
    """``<id>_<start:06d>_<end:06d>.mp4``, the usual name of a downloaded Kinetics clip."""
    return f"{youtube_id}_{int(float(start)):06d}_{int(float(end)):06d}{ext}"


def parse_kinetics(csv_path: str | os.PathLike, *, subset: str = "all", classes: list[str] | None = None) -> tuple[list[tuple[str, int]], list[str]]:
    """(``label/clip.mp4``, label) pairs from a Kinetics CSV (``label,youtube_id,time_start,time_end,split``).

    Classes: ``classes`` if given, else a ``classes.txt`` beside the CSV, else the sorted labels
    of the CSV (the official order of Kinetics-400/600 is alphabetical).
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise AnnotationError(f"annotation file not found: {csv_path}")
    with open(csv_path, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    need = {"label", "youtube_id", "time_start", "time_end"}
    if not rows or not need <= set(rows[0]):
        raise AnnotationError(f"{csv_path}: expected CSV columns {sorted(need)} (+ split), got {sorted(rows[0]) if rows else 'no rows'}")
    sub = _subset(subset)
    if classes is None:  # from every row, so that train and val agree on label numbers
        side = csv_path.parent / "classes.txt"
        classes = _lines(side) if side.is_file() else sorted({r["label"].strip() for r in rows})
    if sub != "all" and "split" in rows[0]:
        rows = [r for r in rows if SUBSETS.get(r["split"].strip().lower(), r["split"]) == sub]
    index = {c: i for i, c in enumerate(classes)}
    out = []
    for n, r in enumerate(rows, 2):
        lab = r["label"].strip()
        if lab not in index:
            raise AnnotationError(f"{csv_path}:{n}: label {lab!r} is not a known class")
        out.append((f"{lab}/{kinetics_clip_name(r['youtube_id'].strip(), r['time_start'], r['time_end'])}", index[lab]))
    return out, classes


# --- class folders ----------------------------------------------------------------------------
def _is_media(p: Path) -> bool:
    from actionrec.data.video import VIDEO_EXTENSIONS

    return (p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS) or p.is_dir()


def scan_folder(root: str | os.PathLike) -> tuple[list[tuple[str, int]], list[str]]:
    """``root/<class>/<video or frame folder>`` → (relative path, label), classes sorted by name."""
    root = Path(root)
    if not root.is_dir():
        raise AnnotationError(f"dataset folder not found: {root}")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    out = []
    for label, cls in enumerate(classes):
        for p in sorted((root / cls).iterdir()):
            if not p.name.startswith(".") and _is_media(p):
                out.append((f"{cls}/{p.name}", label))
    return out, classes


def stratified_split(items: list[tuple[str, int]], *, val_fraction: float, seed: int) -> tuple[list, list]:
    """Seeded per-class split into (train, val); each class with ≥2 items gets ≥1 val item."""
    if not 0.0 <= val_fraction < 1.0:
        raise AnnotationError(f"val_fraction must be in [0, 1), got {val_fraction}")
    by_class: dict[int, list] = defaultdict(list)
    for it in items:
        by_class[it[1]].append(it)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for label in sorted(by_class):
        group = sorted(by_class[label])
        order = rng.permutation(len(group))
        n_val = int(round(len(group) * val_fraction))
        if val_fraction > 0 and n_val == 0 and len(group) >= 2:
            n_val = 1
        val_ids = set(order[:n_val].tolist())
        for i, it in enumerate(group):
            (val if i in val_ids else train).append(it)
    return train, val


# --- mmaction2 lists and KH JSON -------------------------------------------------------------
def read_list(path: str | os.PathLike) -> list[Sample]:
    """An mmaction2 list: ``path label`` (videos) or ``dir n_frames label`` (frame folders)."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return read_kh_json(path)[0]
    out = []
    for n, ln in enumerate(_lines(path), 1):
        parts = ln.rsplit(None, 2)
        try:
            if len(parts) == 3 and parts[1].isdigit():
                out.append(Sample(parts[0], int(parts[2]), int(parts[1])))
            else:
                p, lab = ln.rsplit(None, 1)
                out.append(Sample(p, int(lab)))
        except ValueError:
            raise AnnotationError(f"{path}:{n}: expected 'path label' or 'dir n_frames label', got {ln!r}") from None
    return out


def write_list(path: str | os.PathLike, samples: list[Sample], *, with_n_frames: bool = False) -> None:
    """Write an mmaction2 list atomically (``with_n_frames``: ``dir n_frames label``)."""
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


def write_kh_json(path: str | os.PathLike, *, classes: list[str], subsets: dict[str, list[Sample]]) -> None:
    """KH-style JSON: ``{"labels": [...], "database": {name: {"subset", "annotations": {"label", "segment"}}}}``.

    ``subsets`` maps ``training``/``validation``/``testing`` to samples; ``segment`` is
    ``[1, n_frames + 1]`` when ``n_frames`` is known. Keys are the paths without extension.
    """
    db = {}
    for subset, samples in subsets.items():
        for s in samples:
            key = str(Path(s.path).with_suffix("")) if Path(s.path).suffix else s.path
            ann: dict = {"label": classes[s.label]}
            if s.n_frames is not None:
                ann["segment"] = [1, s.n_frames + 1]
            db[key] = {"subset": subset, "annotations": ann}
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"labels": classes, "database": db}, indent=1))


def read_kh_json(path: str | os.PathLike, *, subset: str = "all") -> tuple[list[Sample], list[str]]:
    """Samples and classes of a KH-style JSON (``subset``: train/val/test/all)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
        classes = list(data["labels"])
        db = data["database"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise AnnotationError(f"{path}: not a KH-style annotation JSON ({e})") from None
    index = {c: i for i, c in enumerate(classes)}
    sub = _subset(subset)
    out = []
    for key, v in db.items():
        if sub != "all" and SUBSETS.get(str(v.get("subset", "")).lower()) != sub:
            continue
        lab = v.get("annotations", {}).get("label")
        if lab not in index:
            continue  # unlabelled (test) entries
        seg = v["annotations"].get("segment")
        n = int(seg[1] - seg[0]) if seg and len(seg) == 2 else None
        out.append(Sample(key, index[lab], n))
    return out, classes


# --- one entry point --------------------------------------------------------------------------
def _check_media(root: Path, items: list[tuple], what: str) -> list[Sample]:
    """Join (relative path, label[, n_frames]) with root; drop (and report) missing or empty entries."""
    out, missing, empty = [], [], []
    for rel, label, *rest in items:
        p = root / rel
        if not p.exists() and p.suffix and p.with_suffix("").is_dir():
            p = p.with_suffix("")  # frames extracted to a folder named like the video
        if not p.exists():
            missing.append(rel)
        elif (p.is_file() and p.stat().st_size == 0) or (p.is_dir() and not any(p.iterdir())):
            empty.append(rel)
        else:
            out.append(Sample(str(p), label, rest[0] if rest else None))
    for kind, names in (("missing", missing), ("empty", empty)):
        if names:
            log.warning("%s: %d of %d listed videos are %s and skipped, e.g. %s", what, len(names), len(items), kind,
                        ", ".join(names[:5]))
    if not out:
        raise AnnotationError(f"{what}: none of the {len(items)} listed videos exist under {root}")
    return out


def load_samples(kind: str, *, root: str, annotations: str | None = None, split: int = 1, subset: str = "train",
                 val_fraction: float = 0.2, seed: int = 0, check: bool = True) -> tuple[list[Sample], list[str]]:
    """Samples and class names of a dataset.

    kind: ``list`` (mmaction2 list or KH JSON in ``annotations``), ``folder`` (``root/class/video``,
    or ``root/{train,val}/class/video``; otherwise a seeded stratified split), ``ucf101`` and
    ``hmdb51`` (``annotations`` = the split-file folder), ``kinetics`` (``annotations`` = CSV).
    ``check``: drop missing/empty videos (reported); ``False`` trusts the annotations.
    """
    if kind not in KINDS:
        raise AnnotationError(f"unknown dataset kind {kind!r}; choose from {', '.join(KINDS)}")
    rootp = Path(os.path.abspath(root))
    sub = _subset(subset)
    if kind != "folder" and annotations is None:
        raise AnnotationError(f"dataset kind {kind!r} needs annotations (a list, split folder or CSV)")
    if kind == "ucf101":
        items, classes = parse_ucf101(annotations, split=split, subset=sub)
    elif kind == "hmdb51":
        items, classes = parse_hmdb51(annotations, split=split, subset=sub)
    elif kind == "kinetics":
        items, classes = parse_kinetics(annotations, subset=sub)
        if check:  # clips may sit in class folders or all in one folder
            items = [(rel if (rootp / rel).exists() or not (rootp / Path(rel).name).exists() else Path(rel).name, lab)
                     for rel, lab in items]
    elif kind == "folder":
        if sub in ("train", "val", "test") and (rootp / sub).is_dir():
            items, classes = scan_folder(rootp / sub)
            rootp = rootp / sub
        else:
            items, classes = scan_folder(rootp)
            if sub != "all":
                train, val = stratified_split(items, val_fraction=val_fraction, seed=seed)
                items = train if sub == "train" else val
    else:  # list
        ann = Path(annotations)
        if ann.suffix.lower() == ".json":
            samples, classes = read_kh_json(ann, subset=sub)
        else:
            samples = read_list(ann)
            side = ann.parent / "classes.txt"
            classes = _lines(side) if side.is_file() else [str(i) for i in range(max(s.label for s in samples) + 1)] if samples else []
        bad = [s for s in samples if not 0 <= s.label < len(classes)]
        if bad:
            raise AnnotationError(f"{ann}: label {bad[0].label} of {bad[0].path} is outside 0..{len(classes) - 1}")
        if not samples:
            raise AnnotationError(f"{ann}: no samples")
        if not check:
            return [Sample(str(rootp / s.path), s.label, s.n_frames) for s in samples], classes
        return _check_media(rootp, [(s.path, s.label, s.n_frames) for s in samples], str(ann)), classes
    if not items:
        raise AnnotationError(f"{kind} dataset at {root}: no samples in subset {subset!r}")
    if not check:
        return [Sample(str(rootp / rel), lab) for rel, lab in items], classes
    return _check_media(rootp, items, f"{kind} {sub} split {split}" if kind in ("ucf101", "hmdb51") else f"{kind} {root}"), classes
