"""Annotation files: UCF101, HMDB51, Kinetics, class folders, mmaction2 lists, 3D-ResNets JSON and label-name CSVs.

Every loader returns ``(samples, class_names)``. Labels are 0-based indices into ``class_names``.
Paths in the returned samples are joined with ``root``. Videos that are listed but missing or
empty, and (``csv``) rows whose label names no class, are reported and left out (:class:`LeftOut`).

mmaction2 lists and 3D-ResNets JSON are read and written by :mod:`actionrec.data.listfiles`. The format
names and what each is are :mod:`actionrec.data.formats` (torch-free); its indexers (``_index_*``) are here.
"""

from __future__ import annotations

import csv
import difflib
import logging
import os
import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from actionrec.data.listfiles import (SUBSETS, AnnotationError, ListEntry, Sample, find_list, is_video_path,
                                      read_kh_json, read_lines, read_list, subset_name, write_kh_json, write_list)
from actionrec.data.formats import FORMATS
from actionrec.data.video import VIDEO_EXTENSIONS

log = logging.getLogger(__name__)

__all__ = ["FORMATS", "SUBSETS", "AnnotationError", "LeftOut", "ListEntry", "Sample", "check_media", "find_list",
           "index_dataset", "is_video_path", "label_matcher", "load_samples", "locate", "normalize_label", "parse_hmdb51",
           "parse_kinetics", "parse_ucf101", "read_kh_json", "read_label_csv", "read_list", "read_ucf101_classes",
           "scan_folder", "stratified_split", "write_kh_json", "write_list"]


@dataclass
class LeftOut:
    """Listed videos an index left out, by reason (filled by :func:`load_samples` when given one)."""

    unknown_labels: dict[str, int] = field(default_factory=dict)  # label as written -> rows (format csv)
    missing: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # filled by the caller that decodes (evaluation)

    def as_dict(self) -> dict[str, dict[str, int] | list[str]]:
        """The non-empty reasons (for a report's ``left_out``)."""
        return {k: v for k, v in vars(self).items() if v}

# --- UCF101 -----------------------------------------------------------------------------------
def read_ucf101_classes(split_dir: str | os.PathLike) -> list[str]:
    """Class names from ``classInd.txt`` (``1 ApplyEyeMakeup``; 1-based ids)."""
    path = Path(split_dir) / "classInd.txt"
    pairs = []
    for n, ln in enumerate(read_lines(path), 1):
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
    sub = subset_name(subset)
    if sub not in ("train", "test", "val"):
        raise AnnotationError(f"UCF101 has train and test lists, not {subset!r}")
    path = split_dir / f"{'train' if sub == 'train' else 'test'}list{split:02d}.txt"
    out = []
    for n, ln in enumerate(read_lines(path), 1):
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
    """(``class/video.avi``, label) pairs from ``<class>_test_split<N>.txt`` (tags 1 train, 2 test, 0 unused).

    Classes are in class-name order (``climb`` before ``climb_stairs``), as mmaction2
    (``sorted(os.listdir(videos))``), 3D-ResNets (``sorted(labels)``) and ``resources/hmdb51.txt``
    number them; sorting the *file* names would swap climb/climb_stairs, kick/kick_ball and
    sword/sword_exercise. Samples come class by class, in file order (mmaction2's order).
    """
    split_dir = Path(split_dir)
    suffix = f"_test_split{split}.txt"
    files = {p.name[: -len(suffix)]: p for p in split_dir.glob(f"*{suffix}")}
    if not files:
        raise AnnotationError(f"no HMDB51 split files '*{suffix}' in {split_dir}")
    classes = sorted(files)
    sub = subset_name(subset)
    want = {"train": "1", "test": "2", "val": "2"}.get(sub)
    if want is None:
        raise AnnotationError(f"HMDB51 has train and test splits, not {subset!r}")
    out = []
    for label, cls in enumerate(classes):
        path = files[cls]
        for n, ln in enumerate(read_lines(path), 1):
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
    sub = subset_name(subset)
    if classes is None:  # from every row, so that train and val agree on label numbers
        side = csv_path.parent / "classes.txt"
        classes = read_lines(side) if side.is_file() else sorted({r["label"].strip() for r in rows})
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


# --- CSV of label names ----------------------------------------------------------------------
_FILE_HEADS = {"file", "filename", "file name", "files", "path", "video", "videos", "video path", "clip", "name"}
_LABEL_HEADS = {"label", "labels", "class", "class name", "action", "category"}
_QUOTES = "\"'\u2018\u2019\u201c\u201d`"


def normalize_label(name: str) -> str:
    """A class name compared loosely: no surrounding spaces or quotes, lower case, each run of spaces, ``_`` and ``-``
    one space (``"Playing_Cricket"`` → ``playing cricket``)."""
    return re.sub(r"[\s_\-]+", " ", name.strip().strip(_QUOTES).lower()).strip()


def _is_header(cells: list[str]) -> bool:
    head = [normalize_label(c) for c in cells[:2]]
    return head[0] in _FILE_HEADS or head[1] in _LABEL_HEADS or head[1].endswith((" label", " class"))


def read_label_csv(path: str | os.PathLike) -> list[tuple[str, str, str]]:
    """Rows ``(file, label, "path:line")`` of a CSV ``file,label[,more columns]``; a header row is skipped.

    The first row is a header when its first cell is a column name such as ``file``/``path``/``video`` or its
    second ``label``/``class``/``*_label``. Blank lines are skipped; a row without a file and a label is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise AnnotationError(f"annotation file not found: {path}")
    rows: list[tuple[str, str, str]] = []
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.reader(f)
            for cells in reader:
                where = f"{path}:{reader.line_num}"
                if not any(c.strip() for c in cells):
                    continue
                if len(cells) < 2 or not cells[0].strip() or not cells[1].strip():
                    raise AnnotationError(f"{where}: expected 'file,label', got {','.join(cells)!r}")
                if reader.line_num == 1 and _is_header(cells):
                    continue
                rows.append((cells[0].strip(), cells[1].strip(), where))
    except UnicodeDecodeError as e:
        raise AnnotationError(f"{path}: not a UTF-8 text file ({e})") from None
    except csv.Error as e:
        raise AnnotationError(f"{path}: not a readable CSV ({e})") from None
    return rows


def label_matcher(classes: Sequence[str]) -> Callable[[str], int | None]:
    """``name -> class index`` (or ``None``): the exact name first, then its :func:`normalize_label` form.

    A normalised form shared by several classes matches none of them (only their exact names do).
    """
    exact = {c: i for i, c in enumerate(classes)}
    loose: dict[str, int | None] = {}
    for i, c in enumerate(classes):
        key = normalize_label(c)
        loose[key] = None if key in loose else i
    return lambda name: exact[name] if name in exact else loose.get(normalize_label(name))


def _unknown_text(unknown: Counter, classes: Sequence[str], limit: int) -> str:
    """``'criket' ×2 (did you mean 'playing cricket'?), ...`` for the ``limit`` most frequent unknown names."""
    norm = {normalize_label(c): c for c in classes}
    parts = []
    for name, n in unknown.most_common(limit):
        close = difflib.get_close_matches(normalize_label(name), list(norm), n=1, cutoff=0.6)
        parts.append(f"{name!r} \u00d7{n}" + (f" (did you mean {norm[close[0]]!r}?)" if close else ""))
    more = len(unknown) - limit
    return ", ".join(parts) + (f" and {more} more" if more > 0 else "")


def _csv_path(rel: str, root: Path, folder: Path) -> str:
    """``rel`` as listed if it is found under ``root``, else joined with the CSV's ``folder`` when it is there."""
    if locate(root, rel) is None and locate(folder, rel) is not None:
        return str(folder / rel)
    return rel


def _index_csv(root: Path, annotations: str, *, classes: Sequence[str] | None = None, left_out: LeftOut | None = None,
               **_: object) -> Index:
    """Rows of a label-name CSV matched to ``classes`` (the model's; else ``classes.txt`` beside it, else the sorted
    names it uses). Rows whose label matches no class are reported (one warning line) and left out."""
    path = Path(annotations)
    rows = read_label_csv(path)
    if not rows:
        raise AnnotationError(f"{path}: no rows ('file,label' per line)")
    if classes is None:
        side = path.parent / "classes.txt"
        classes = read_lines(side) if side.is_file() else sorted({label for _, label, _ in rows})
    match = label_matcher(classes)
    samples, unknown = [], Counter()
    for rel, label, _where in rows:
        index = match(label)
        if index is None:
            unknown[label] += 1
        else:
            samples.append(Sample(_csv_path(rel, root, Path(os.path.abspath(path.parent))), index))
    if not samples:
        raise AnnotationError(f"{path}: no label is one of the {len(classes)} class names: {_unknown_text(unknown, classes, 3)}")
    if unknown:
        log.warning("%s: %d of %d rows left out, their label is not a class name: %s", path, sum(unknown.values()),
                    len(rows), _unknown_text(unknown, classes, len(unknown)))
        if left_out is not None:
            left_out.unknown_labels.update(unknown)
    return samples, list(classes), root


# --- one entry point --------------------------------------------------------------------------
def locate(root: Path, rel: str) -> Path | None:
    """Where listed ``rel`` is under ``root``: itself, the frame folder named like it without the
    extension, or either of these directly in ``root`` (a flat folder); ``None`` if nowhere."""
    for p in (root / rel, root / Path(rel).name):
        if p.exists():
            return p
        if p.suffix and p.with_suffix("").is_dir():
            return p.with_suffix("")
    return None


def check_media(root: Path, samples: list[Sample]) -> tuple[list[Sample], dict[str, list[str]]]:
    """Samples (paths relative to ``root``) that exist, with absolute paths; and the others by reason.

    Reasons: ``missing``; ``empty`` (a 0-byte file, a folder without files, or ``n_frames`` 0).
    """
    kept: list[Sample] = []
    left: dict[str, list[str]] = {"missing": [], "empty": []}
    for s in samples:
        p = locate(root, s.path)
        if p is None:
            left["missing"].append(s.path)
        elif s.n_frames == 0 or (p.is_file() and p.stat().st_size == 0) or (p.is_dir() and not any(p.iterdir())):
            left["empty"].append(s.path)
        else:
            kept.append(Sample(str(p), s.label, s.n_frames))
    return kept, {k: v for k, v in left.items() if v}


def _list_samples(ann: Path, *, subset: str, split: int) -> tuple[list[Sample], list[str]]:
    if ann.is_dir():
        ann = find_list(ann, subset=subset, split=split)
    if ann.suffix.lower() == ".json":
        return read_kh_json(ann, subset=subset)
    samples = []
    for e in read_list(ann):
        if len(e.labels) != 1:
            raise AnnotationError(f"{e.where}: {e.path!r} has no label (an inference list); training and evaluation "
                                  "need one label per line")
        samples.append(Sample(e.path, e.labels[0], e.n_frames))
    side = ann.parent / "classes.txt"
    classes = read_lines(side) if side.is_file() else [str(i) for i in range(max(s.label for s in samples) + 1)] if samples else []
    bad = [s for s in samples if not 0 <= s.label < len(classes)]
    if bad:
        raise AnnotationError(f"{ann}: label {bad[0].label} of {bad[0].path} is outside 0..{len(classes) - 1}")
    return samples, classes


Index = tuple[list[Sample], list[str], Path]  # samples (paths relative to the root), class names, root


def _index_list(root: Path, annotations: str, *, split: int, subset: str, **_: object) -> Index:
    return *_list_samples(Path(annotations), subset=subset, split=split), root


def _index_ucf101(root: Path, annotations: str, *, split: int, subset: str, **_: object) -> Index:
    items, classes = parse_ucf101(annotations, split=split, subset=subset)
    return [Sample(rel, label) for rel, label in items], classes, root


def _index_hmdb51(root: Path, annotations: str, *, split: int, subset: str, **_: object) -> Index:
    items, classes = parse_hmdb51(annotations, split=split, subset=subset)
    return [Sample(rel, label) for rel, label in items], classes, root


def _index_kinetics(root: Path, annotations: str, *, subset: str, **_: object) -> Index:
    items, classes = parse_kinetics(annotations, subset=subset)
    return [Sample(rel, label) for rel, label in items], classes, root


def _index_folder(root: Path, annotations: str | None, *, subset: str, val_fraction: float, seed: int, **_: object) -> Index:
    if subset in ("train", "val", "test") and (root / subset).is_dir():  # split into subfolders
        root = root / subset
        items, classes = scan_folder(root)
    else:
        items, classes = scan_folder(root)
        if subset != "all":
            train, val = stratified_split(items, val_fraction=val_fraction, seed=seed)
            items = train if subset == "train" else val
    return [Sample(rel, label) for rel, label in items], classes, root


def index_dataset(kind: str, *, root: str | os.PathLike, annotations: str | None = None, split: int = 1,
                  subset: str = "train", val_fraction: float = 0.2, seed: int = 0, classes: Sequence[str] | None = None,
                  left_out: LeftOut | None = None) -> Index:
    """The listed samples of a dataset, unchecked: ``(samples, class_names, root)`` with sample
    paths relative to the returned root (``root/<subset>`` for a folder dataset split into subfolders).

    ``classes``: the model's class names, for formats whose labels are names (``csv``); ``left_out``: records
    rows left out (a ``csv`` label that names no class)."""
    if kind not in FORMATS:
        raise AnnotationError(FORMATS.unknown(kind))
    fmt = FORMATS.get(kind)
    if fmt.needs_annotations and annotations is None:
        raise AnnotationError(f"dataset format {kind!r} needs annotations (a list, split folder or CSV)")
    return fmt.index(Path(os.path.abspath(root)), annotations, split=split, subset=subset_name(subset),
                     val_fraction=val_fraction, seed=seed, classes=classes, left_out=left_out)


def load_samples(kind: str, *, root: str, annotations: str | None = None, split: int = 1, subset: str = "train",
                 val_fraction: float = 0.2, seed: int = 0, check: bool = True, classes: Sequence[str] | None = None,
                 left_out: LeftOut | None = None) -> tuple[list[Sample], list[str]]:
    """Samples and class names of a dataset.

    kind: ``list`` (``annotations``: an mmaction2 list, a 3D-ResNets JSON, or a folder of lists
    found by :func:`find_list`), ``csv`` (``annotations``: a CSV ``file,label name``; names matched to ``classes``),
    ``folder`` (``root/class/video``, or ``root/{train,val}/class/video``;
    otherwise a seeded stratified split), ``ucf101`` and ``hmdb51`` (``annotations`` = the
    split-file folder), ``kinetics`` (``annotations`` = CSV).
    ``check``: drop missing/empty videos (reported); ``False`` trusts the annotations.
    ``classes``: the model's class names (format ``csv``); ``left_out``: filled with what was left out and why.
    """
    samples, classes, rootp = index_dataset(kind, root=root, annotations=annotations, split=split, subset=subset,
                                            val_fraction=val_fraction, seed=seed, classes=classes, left_out=left_out)
    what = (str(annotations) if FORMATS.get(kind).list_files else f"{kind} {subset_name(subset)} split {split}"
            if FORMATS.get(kind).official_splits else f"{kind} {root}")
    if not samples:
        raise AnnotationError(f"{what}: no samples in subset {subset!r}")
    if not check:
        return [Sample(str(rootp / s.path), s.label, s.n_frames) for s in samples], classes
    kept, left = check_media(rootp, samples)
    if left_out is not None:
        left_out.missing += left.get("missing", [])
        left_out.empty += left.get("empty", [])
    for reason, names in left.items():
        log.warning("%s: %d of %d listed videos are %s and skipped, e.g. %s", what, len(names), len(samples), reason,
                    ", ".join(names[:5]))
    if not kept:
        raise AnnotationError(f"{what}: none of the {len(samples)} listed videos exist under {rootp}")
    return kept, classes
