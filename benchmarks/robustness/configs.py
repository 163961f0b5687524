"""Campaign rows for bad recipes (YAML files, ``--set`` values) and bad train/eval/fuse/demo arguments,
from ``tests/robustness/recipes.py``, each run through the real ``actionrec`` command line."""

from __future__ import annotations

from pathlib import Path

from tests.robustness.cli_checks import run_cases, sample, summarize
from tests.robustness.recipes import all_config_cases

WHAT = {"config_yaml": "actionrec train BAD.yaml", "config_value": "actionrec train recipe.yaml --set BAD",
        "cli_args": "actionrec eval/fuse/demo/train BAD-ARGUMENT"}


def run(workdir: Path, *, full: bool) -> list[dict]:
    cases = all_config_cases(workdir)
    if not full:
        cases = sample(cases, 30)
    rows = summarize(run_cases(cases, timeout=60))
    for row in rows:
        row["notes"] = (row["notes"] or WHAT[row["class"]]).strip("; ")
    return rows
