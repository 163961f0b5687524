"""``actionrec prep lists``: annotation lists for a dataset and its splits.

Writes mmaction2 lists byte for byte as mmaction2's ``tools/data/build_file_list.py`` writes them
(without ``--shuffle``): ``path label`` for videos, ``dir n_frames label`` for frame folders
(``--frames``), named ``<kind>_{train,val}_split_<N>_{videos,rawframes}.txt`` for UCF101 and HMDB51
(``val`` is the official test list, as mmaction2 names it) and ``<kind>_{train,val}_list_<...>.txt``
for the others. A ``classes.txt`` (index order) goes beside them. ``--json`` adds 3D-ResNets JSON
under the names their scripts use (``ucf101_0N.json``, ``hmdb51_N.json``, else ``<kind>.json``).

A listed video that is missing or empty, or (with ``--frames``) has no frames, is left out of the
lists, but never silently: it is reported by name and counted, all of them go to ``left_out.txt``,
and the command exits with status 1 (as ``prep frames`` does for videos that fail).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from actionrec.data.annotations import AnnotationError, Sample, check_media, index_dataset, write_kh_json, write_list
from actionrec.data.formats import FORMATS, list_kinds
from actionrec.data.frames import read_n_frames
from actionrec.errors import ActionrecError, UsageError
from actionrec.io import write_text_atomic

log = logging.getLogger(__name__)

LEFT_OUT = "left_out.txt"
_REASONS = {False: {"missing": "missing", "empty": "empty file"},
            True: {"missing": "no frame folder", "empty": "empty frame folder", "no frames": "no frames"}}


@dataclass
class ListsReport:
    """What ``build_lists`` wrote: files, lines per list, and per list the videos left out by reason."""

    files: list[Path] = field(default_factory=list)
    lines: dict[Path, int] = field(default_factory=dict)
    left_out: dict[Path, dict[str, list[str]]] = field(default_factory=dict)

    @property
    def n_left_out(self) -> int:
        return sum(len(names) for by_reason in self.left_out.values() for names in by_reason.values())

    def summary(self, *, show: int = 10) -> str:
        out = []
        for f in self.files:
            out.append(f"{f}" + (f" ({self.lines[f]} videos)" if f in self.lines else ""))
            for reason, names in self.left_out.get(f, {}).items():
                more = f", ... (all in {f.parent / LEFT_OUT})" if len(names) > show else ""
                out.append(f"  left out {len(names)} ({reason}): {', '.join(names[:show])}{more}")
        if self.n_left_out:
            out.append(f"{self.n_left_out} listed videos left out of the lists (see above)")
        return "\n".join(out)


def list_name(kind: str, subset: str, split: int, *, frames: bool) -> str:
    """mmaction2's name for a list file (``ucf101_val_split_1_rawframes.txt``)."""
    media = "rawframes" if frames else "videos"
    return (f"{kind}_{subset}_split_{split}_{media}.txt" if FORMATS.get(kind).official_splits
            else f"{kind}_{subset}_list_{media}.txt")


def json_name(kind: str, split: int) -> str:
    """The file name 3D-ResNets' ``util_scripts`` give their JSON (``ucf101_01.json``, ``hmdb51_1.json``)."""
    return FORMATS.get(kind).json_file(split)


def _with_frame_counts(samples: list[Sample], base: Path) -> tuple[list[Sample], list[str]]:
    """Frame-folder samples with ``n_frames`` (paths relative to ``base``), and those without frames."""
    out, none = [], []
    for s in samples:
        path, rel = Path(s.path), str(Path(s.path).relative_to(base))
        try:
            n = read_n_frames(path) if path.is_dir() else 0
        except ActionrecError as e:
            log.warning("%s: %s", path, e)
            n = 0
        if n > 0:
            out.append(Sample(rel, s.label, n))
        else:
            none.append(rel)
    return out, none


def build_lists(kind: str, root: str | Path, out: str | Path, *, annotations: str | None = None,
                splits: tuple[int, ...] = (1,), frames: str | Path | None = None, json_out: bool = False,
                val_fraction: float = 0.2, seed: int = 0) -> ListsReport:
    """Write the lists of ``kind`` for each split; return what was written and what was left out.

    ``root`` holds the videos; ``frames`` (optional) the extracted frame folders, in which case
    the lists name frame folders relative to ``frames`` with their ``n_frames``.
    """
    fmt = FORMATS.get(kind)  # an unknown kind: close matches
    if not fmt.lists:
        raise UsageError(f"prep lists: format {kind!r} is already a list (nothing to write); choose from {', '.join(list_kinds())}")
    if json_out and frames is None:
        raise UsageError("--json needs --frames: 3D-ResNets JSON gives each video's frame count (segment)")
    out = Path(out)
    base = Path(os.path.abspath(frames if frames is not None else root))
    report = ListsReport()
    if not fmt.official_splits:
        splits = (1,)
    for split in splits:
        per_subset: dict[str, list[Sample]] = {}
        classes: list[str] = []
        for subset in ("train", "val"):
            samples, classes, sub_root = index_dataset(kind, root=base, annotations=annotations, split=split,
                                                       subset=subset, val_fraction=val_fraction, seed=seed)
            if not samples:
                if subset == "train":
                    raise AnnotationError(f"{kind} dataset at {base}: no train samples")
                log.info("%s: no %s subset", kind, subset)
                continue
            kept, left = check_media(sub_root, samples)
            if frames is not None:
                kept, left["no frames"] = _with_frame_counts(kept, sub_root)
            else:
                kept = [Sample(str(Path(s.path).relative_to(sub_root)), s.label) for s in kept]
            name = out / list_name(kind, subset, split, frames=frames is not None)
            if not kept:
                raise AnnotationError(f"{name.name}: none of the {len(samples)} listed videos were found under {sub_root}")
            write_list(name, kept, with_n_frames=frames is not None)
            per_subset[subset] = kept
            report.files.append(name)
            report.lines[name] = len(kept)
            reasons = _REASONS[frames is not None]
            report.left_out[name] = {reasons[r]: names for r, names in left.items() if names}
        classes_file = out / "classes.txt"
        write_text_atomic(classes_file, "".join(c + "\n" for c in classes))
        if classes_file not in report.files:
            report.files.append(classes_file)
        if json_out:
            path = out / json_name(kind, split)
            write_kh_json(path, classes=classes,
                          subsets={"training" if k == "train" else "validation": v for k, v in per_subset.items()})
            report.files.append(path)
    _write_left_out(out / LEFT_OUT, report)
    return report


def _write_left_out(path: Path, report: ListsReport) -> None:
    rows = [f"{f.name}\t{reason}\t{name}\n" for f, by_reason in report.left_out.items()
            for reason, names in by_reason.items() for name in names]
    if rows:
        write_text_atomic(path, "".join(rows))
        for names in report.left_out.values():
            for reason, listed in names.items():
                log.warning("%d listed videos left out (%s), e.g. %s", len(listed), reason, ", ".join(listed[:5]))
    elif path.exists():
        path.unlink()  # from an earlier run that missed videos
