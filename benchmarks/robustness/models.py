"""Campaign rows for hostile model files: crafted safetensors checkpoints (``actionrec info``), crafted ONNX
files (``actionrec predict``) and pickle payloads (``actionrec convert``), from ``tests/robustness/crafted.py``."""

from __future__ import annotations

from pathlib import Path

from tests.robustness.cli_checks import run_cases, sample, summarize
from tests.robustness.crafted import all_model_cases

WHAT = {"st": "actionrec info FILE.safetensors", "onnx": "actionrec predict FILE.onnx short.mp4", "pickle": "actionrec convert / info / predict"}


def run(workdir: Path, *, full: bool) -> list[dict]:
    cases = all_model_cases(workdir)
    if not full:
        cases = sample(cases, 40)
    rows = summarize(run_cases(cases, timeout=60))
    for row in rows:
        row["notes"] = (row["notes"] or WHAT[row["class"].split("_")[0]]).strip("; ")
    return rows
