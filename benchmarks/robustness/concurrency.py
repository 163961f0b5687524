"""Campaign rows: two `prep frames`, two `prep flow`, two `train` started at once on one output.

Per trial: both runs start together; the one that takes the output lock works, the other stops at
once with a one-line "in use by ..." (``clean_errors``), or, if it came after the first had ended,
finds the work done. Then the output must be exactly what an undisturbed run gives (prep: every
file byte for byte; train: metrics of every epoch, loadable best/last/epoch checkpoints), with no
temporary file left. A corrupt or lost output counts as ``silent_wrong``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from benchmarks.robustness._jobs import Inputs, check_output, new_row, record_output
from tests.robustness import prep_trials as pt

TRIALS = 10


def run(workdir: Path, *, full: bool) -> list[dict]:
    inputs = Inputs(workdir)
    trials = TRIALS if full else 2
    rows = []
    for job in ("prep frames", "prep flow", "train"):
        row = new_row(f"concurrent {job} x2")
        for t in range(trials):
            out = workdir / "concurrency" / f"{job.replace(' ', '_')}_{t}"
            shutil.rmtree(out, ignore_errors=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            cmd = inputs.train_cmd(out) if job == "train" else inputs.prep_cmd(job.split()[1], out)
            pair = pt.run_pair(cmd, out, stagger=False)
            row["tried"] += 1
            row["peak_rss_mb"] = max(row["peak_rss_mb"], round(pair.rss_mb, 1))
            rcs = list(pair.rcs)
            if None in rcs:
                row["hangs"] += 1
                continue
            if any(rc < 0 for rc in rcs):
                row["crashes"] += 1
                continue
            worked = [rc for rc, e in zip(rcs, pair.errs) if not (rc == 2 and "in use by" in e)]
            if any(rc != 0 for rc in worked):
                row["tracebacks"] += 1
                row["notes"] += f"trial {t}: exit {rcs}: {pair.errs[rcs.index(max(rcs))][-150:]}; "
                continue
            # not refused: the second run came after the first and found the work done
            record_output(row, check_output(inputs, job, out), t, clean=bool(pair.refused))
        row["notes"] = (row["notes"] or "second run refused (clean) or ran after the first (ok); "
                        "output checked against an undisturbed run").strip("; ")
        rows.append(row)
    return rows
