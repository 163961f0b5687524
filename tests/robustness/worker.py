"""The parent side of the robustness checks: a long-lived worker process spoken to in JSON lines.

``python -m MODULE ARGS`` prints ``{"ready": true}`` once its imports are done, then answers each JSON
line on stdin with one JSON line on stdout. The parent waits at most ``timeout`` seconds per question,
so a hang or a crash of the code under test (segfault, abort, out-of-memory kill) is recorded as
such instead of stalling the run; the caller then restarts the worker.
"""

from __future__ import annotations

import json
import os
import resource
import select
import subprocess
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
HANG = {"hang": True}


def peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM`` (``ru_maxrss`` would carry over the parent's peak across fork + exec)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def say(obj: dict[str, Any]) -> None:
    """Worker side: one answer line on the real stdout (the code under test may have redirected sys.stdout)."""
    sys.__stdout__.write(json.dumps(obj) + "\n")
    sys.__stdout__.flush()


class JsonLineWorker:
    """``python -m module *args`` in the repository, one thread per library, ready when it says so."""

    def __init__(self, module: str, *args: str, startup_timeout: float = 600.0) -> None:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                   OMP_NUM_THREADS="1")
        self.proc = subprocess.Popen([sys.executable, "-m", module, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, cwd=REPO, env=env, text=True, bufsize=1)
        # the per-question timeout starts after the worker's imports, which a loaded machine slows down
        ready, _, _ = select.select([self.proc.stdout], [], [], startup_timeout)
        if not ready or not self.proc.stdout.readline():
            self.close()
            raise RuntimeError(f"robustness worker {module} {' '.join(args)} did not start")

    def ask(self, msg: Any, timeout: float) -> dict[str, Any] | None:
        """The worker's answer; :data:`HANG` after ``timeout`` seconds; None if the worker died (a crash)."""
        try:
            self.proc.stdin.write(json.dumps(msg) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            return None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            return HANG
        line = self.proc.stdout.readline()
        return json.loads(line) if line else None

    def close(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        return self.proc.returncode
