"""Campaign rows for corrupt and hostile videos: every mutant of ``tests/robustness/mutants.py``
through the reader (``open_video`` + ``get_frames``), the dataset and ``actionrec predict``."""

from __future__ import annotations

from pathlib import Path

from tests.robustness.checks import make_tiny_checkpoint, run_checks, summarize
from tests.robustness.mutants import build_mutants, sample_mutants

MODES = {"reader": "open_video + get_frames", "dataset": "VideoClipDataset item", "predict": "actionrec predict --json"}


def run(workdir: Path, *, full: bool) -> list[dict]:
    mutants = build_mutants(workdir / "mutants", seed=0)
    if not full:
        mutants = sample_mutants(mutants, 60, seed=1)
    ckpt = make_tiny_checkpoint(workdir / "tiny.safetensors")
    rows = []
    for mode, what in MODES.items():
        for row in summarize(run_checks(mutants, mode, ckpt=ckpt, timeout=60), prefix=f"video {mode}: "):
            row["notes"] = (row["notes"] or what).strip("; ")
            rows.append(row)
    return rows
