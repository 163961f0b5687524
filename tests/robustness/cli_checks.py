"""Run :class:`~tests.robustness.crafted.Case` command lines through the real ``actionrec`` CLI and classify them.

A long-lived worker (``python -m tests.robustness.cli_checks``) runs each case's ``actionrec.cli.main(argv)``
in-process and answers with the exit code, the stderr lines and its peak RSS; the parent gives each case at
most ``timeout`` seconds, so a hang or a crash (segfault, out-of-memory kill) is recorded and the worker
restarted. Outcomes: ``ok`` (exit 0 where success is expected), ``clean`` (exit 2, one error line naming the
case's token), ``traceback`` (exit 1, or an error line that does not name the file/field, or several lines),
``hang``, ``crash``, ``silent_wrong`` (exit 0 for a must-fail case, or a pickle payload that ran).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.robustness.crafted import Case
from tests.robustness.worker import HANG, JsonLineWorker, peak_rss_mb, say

ROW_KEYS = ("tried", "clean_errors", "accepted_ok", "tracebacks", "hangs", "crashes", "silent_wrong")
_KEY = {"ok": "accepted_ok", "clean": "clean_errors", "traceback": "tracebacks", "hang": "hangs", "crash": "crashes",
        "silent_wrong": "silent_wrong"}


@dataclass
class Outcome:
    case: Case
    outcome: str
    detail: str
    rss_mb: float


def _worker() -> None:
    import logging

    from actionrec.cli import main

    say({"ready": True})
    for line in sys.stdin:
        argv = json.loads(line)
        logging.disable(logging.CRITICAL)  # main() configures logging; only the CLI's own error line is judged
        err, out = io.StringIO(), io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            try:
                rc = main(["-q", *argv])
            except SystemExit as e:  # argparse
                rc = e.code if isinstance(e.code, int) else 2
            except BaseException as e:  # noqa: BLE001 - main() must not raise; record that it did
                rc, err = 99, io.StringIO(f"raised {type(e).__name__}: {e}")
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip() and "%|" not in ln]
        rss = peak_rss_mb()
        say({"rc": rc, "stderr": lines[-5:], "n_lines": len(lines), "rss_mb": rss})


def classify(case: Case, ans: dict) -> tuple[str, str]:
    if case.marker and Path(case.marker).exists():
        return "silent_wrong", "the pickle payload ran"
    rc, lines = ans["rc"], ans["stderr"]
    last = lines[-1] if lines else ""
    if rc == 0:
        return ("ok", "") if not case.must_fail else ("silent_wrong", "accepted (exit 0)")
    if not case.must_fail:
        return "traceback", f"exit {rc}: {last}"[:300]
    if rc == 2 and ans["n_lines"] == 1 and case.token in last:
        if "data.root: no such directory" in last and "data.root" not in case.token:
            return "silent_wrong", f"recipe accepted: {last}"[:300]
        return "clean", last[:300]
    return "traceback", f"exit {rc}, {ans['n_lines']} line(s): {last}"[:300]


def run_cases(cases: list[Case], *, timeout: float = 60.0, worker_per_class: bool = True) -> list[Outcome]:
    """Every case through the CLI; a fresh worker per class of case (so that peak RSS is per class)."""
    out: list[Outcome] = []
    by_class: dict[str, list[Case]] = {}
    for c in cases:
        by_class.setdefault(c.cls if worker_per_class else "", []).append(c)
    for group in by_class.values():
        worker = JsonLineWorker("tests.robustness.cli_checks")
        try:
            for c in group:
                ans = worker.ask(c.argv, timeout)
                if ans is None or ans is HANG:
                    rc = worker.close()
                    outcome = ("hang", f"no answer in {timeout:.0f} s") if ans else ("crash", f"worker died (exit {rc})")
                    out.append(Outcome(c, *outcome, 0.0))
                    worker = JsonLineWorker("tests.robustness.cli_checks")
                    continue
                out.append(Outcome(c, *classify(c, ans), ans["rss_mb"]))
        finally:
            worker.close()
    return out


def sample(cases: list[Case], n: int) -> list[Case]:
    """About ``n`` cases, deterministic: every class once, then evenly spread over the rest."""
    first = {c.cls: c for c in reversed(cases)}
    picked = list(first.values())
    rest = [c for c in cases if c not in picked]
    step = max(1, len(rest) // max(1, n - len(picked)))
    return picked + rest[::step][: max(0, n - len(picked))]


def summarize(outcomes: list[Outcome]) -> list[dict]:
    """One campaign row per class (the ``benchmarks/robustness`` row format)."""
    rows: dict[str, dict] = {}
    for o in outcomes:
        r = rows.setdefault(o.case.cls, {"class": o.case.cls, **{k: 0 for k in ROW_KEYS}, "peak_rss_mb": 0.0, "notes": ""})
        r["tried"] += 1
        r[_KEY[o.outcome]] += 1
        r["peak_rss_mb"] = max(r["peak_rss_mb"], round(o.rss_mb, 1))
        if o.outcome not in ("ok", "clean") and len(r["notes"]) < 300:
            r["notes"] += f"{o.case.name}: {o.detail}; "
    return list(rows.values())


if __name__ == "__main__":
    _worker()
