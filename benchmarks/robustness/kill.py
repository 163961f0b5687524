"""Campaign rows: `kill -9` during `prep frames`, `prep flow` and `train`, then the same command again.

Per trial the run is killed at a different moment (prep: after 1..30 temporary files; train: 0..2 s
into training, or the moment a temporary file appears); the next run (``train --resume`` when a checkpoint exists) must exit 0 and leave the
output exactly as an undisturbed run would, with no temporary file. ``notes`` gives how many
temporary entries the killed runs had left for the next run to remove.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.robustness._jobs import Inputs, check_output, new_row, record_output
from tests.robustness import prep_trials as pt

TRIALS = 10


def _kill_train(cmd: list[str], out: Path, delay: float | None) -> tuple[list[str], float]:
    """Kill ``delay`` s after training started, or (``None``) as soon as a temporary file exists."""
    p = subprocess.Popen(cmd, env=pt.env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while pt.running(p) and time.time() < deadline:
        if (out / "metrics.jsonl").exists() if delay is not None else (out.exists() and pt.temp_entries(out)):
            break
        time.sleep(0.001)
    time.sleep(delay or 0.0)
    p.kill()
    _, rss = pt.wait_rss(p, timeout=60)
    return pt.temp_entries(out) if out.exists() else [], rss


def run(workdir: Path, *, full: bool) -> list[dict]:
    inputs = Inputs(workdir)
    rng = np.random.default_rng(0)
    trials = TRIALS if full else 2
    rows = []
    for job in ("prep frames", "prep flow", "train"):
        row = new_row(f"kill -9 during {job}, then rerun")
        left_before = []
        for t in range(trials):
            out = workdir / "kill" / f"{job.replace(' ', '_')}_{t}"
            shutil.rmtree(out, ignore_errors=True)
            out.parent.mkdir(parents=True, exist_ok=True)
            if job == "train":
                cmd = inputs.train_cmd(out)
                # odd trials: at a random moment; even ones: while a checkpoint is being written
                left, rss = _kill_train(cmd, out, delay=float(rng.uniform(0, 2)) if t % 2 else None)
                if any((out / "checkpoints").glob("*.safetensors")):
                    cmd = inputs.train_cmd(out, "--resume")
            else:
                cmd = inputs.prep_cmd(job.split()[1], out)
                left, rss = pt.kill_during(cmd, out, after_files=int(rng.integers(1, 31)),
                                           delay=float(rng.uniform(0, 0.3)))
            left_before.append(len(left))
            with tempfile.TemporaryFile("w+") as err:  # a file, not a pipe: a long log cannot block the run
                rerun = subprocess.Popen(cmd, env=pt.env(), stdout=subprocess.DEVNULL, stderr=err)
                rc, rss2 = pt.wait_rss(rerun, timeout=600)
                err.seek(0)
                last_err = err.read()[-150:]
            row["tried"] += 1
            row["peak_rss_mb"] = max(row["peak_rss_mb"], round(max(rss, rss2), 1))
            if rc is None:
                row["hangs"] += 1
                continue
            if rc != 0:
                row["tracebacks" if rc > 0 else "crashes"] += 1
                row["notes"] += f"trial {t}: rerun exit {rc}: {last_err}; "
                continue
            record_output(row, check_output(inputs, job, out), t)
        row["notes"] = (f"temporary entries left by the killed runs: {left_before}; after the rerun: see "
                        f"silent_wrong. {row['notes']}").strip("; ")
        rows.append(row)
    return rows
