"""``actionrec prep lists``: annotation files for a dataset and its splits.

Writes mmaction2 lists (``path label`` for videos; ``dir n_frames label`` with ``--frames``), a
``classes.txt`` beside them (one name per line, index order) and optionally KH-style JSON.
File names follow mmaction2: ``<kind>_<subset>_split_<N>_{videos,rawframes}.txt``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from actionrec.data.annotations import Sample, load_samples, write_kh_json, write_list
from actionrec.io import write_text_atomic

log = logging.getLogger(__name__)


def _subsets(kind: str) -> tuple[str, ...]:
    return ("train", "test") if kind in ("ucf101", "hmdb51") else ("train", "val")


def build_lists(kind: str, root: str | Path, out: str | Path, *, annotations: str | None = None,
                splits: tuple[int, ...] = (1,), frames: str | Path | None = None, json_out: bool = False,
                val_fraction: float = 0.2, seed: int = 0) -> list[Path]:
    """Write the lists of ``kind`` for each split; return the files written.

    ``root`` holds the videos; ``frames`` (optional) the extracted frame folders, in which case
    the lists name frame folders relative to ``frames`` with their ``n_frames``.
    """
    from actionrec.data.frames import read_n_frames

    root, out = Path(os.path.abspath(root)), Path(out)
    frames_root = Path(os.path.abspath(frames)) if frames else None
    written: list[Path] = []
    if kind in ("folder", "kinetics"):
        splits = (1,)
    for split in splits:
        per_subset: dict[str, list[Sample]] = {}
        classes: list[str] = []
        for subset in _subsets(kind):
            base = frames_root if frames_root is not None else root
            try:
                samples, classes = load_samples(kind, root=str(base), annotations=annotations, split=split,
                                                subset=subset, val_fraction=val_fraction, seed=seed)
            except ValueError as e:
                if kind == "kinetics" and subset == "val":
                    log.info("no %s subset: %s", subset, e)
                    continue
                raise
            rel = []
            for s in samples:
                path = Path(s.path)
                r = path.relative_to(base) if path.is_relative_to(base) else path
                if frames_root is not None:
                    rel.append(Sample(str(r.with_suffix("") if path.is_file() else r), s.label, read_n_frames(path)))
                else:
                    rel.append(Sample(str(r), s.label))
            per_subset[subset] = rel
            suffix = "rawframes" if frames_root is not None else "videos"
            name = f"{kind}_{subset}_split_{split}_{suffix}.txt" if kind in ("ucf101", "hmdb51") else f"{kind}_{subset}_{suffix}.txt"
            write_list(out / name, rel, with_n_frames=frames_root is not None)
            written.append(out / name)
            log.info("%s: %d samples", out / name, len(rel))
        write_text_atomic(out / "classes.txt", "".join(c + "\n" for c in classes))
        if out / "classes.txt" not in written:
            written.append(out / "classes.txt")
        if json_out:
            names = {"train": "training", "val": "validation", "test": "validation"}
            jpath = out / (f"{kind}_{split:02d}.json" if kind in ("ucf101", "hmdb51") else f"{kind}.json")
            write_kh_json(jpath, classes=classes, subsets={names[k]: v for k, v in per_subset.items()})
            written.append(jpath)
    return written
