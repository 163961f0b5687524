"""Real-process trials on one output folder: two runs at once, and ``kill -9`` then a rerun.

Shared by ``tests/robustness/test_prep.py`` (one trial each) and the campaign
(``benchmarks/robustness/{concurrency,kill}.py``, ten trials each).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from actionrec.io import LOCK_NAME
from tests.robustness.mutants import DATA

REPO = Path(__file__).resolve().parents[2]


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
                OMP_NUM_THREADS="1")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "actionrec.cli", *args]


def make_videos(root: Path, *, long: bool = False) -> Path:
    """root/vids/{a,b}/: short.mp4 (32 frames), xvid.avi (164), and h264.mp4 (300) if ``long``."""
    v = root / "vids"
    (v / "a").mkdir(parents=True, exist_ok=True)
    (v / "b").mkdir(exist_ok=True)
    shutil.copy(DATA / "short.mp4", v / "a" / "short.mp4")
    shutil.copy(DATA / "xvid.avi", v / "b" / "xvid.avi")
    if long:
        shutil.copy(DATA / "h264.mp4", v / "b" / "h264.mp4")
    return v


FRAMES_ARGS = ["--short-side", "32", "--workers", "2", "--no-progress"]
FLOW_ARGS = ["--tvl1-scales", "1", "--tvl1-warps", "1", "--chunk", "16", "--workers", "2", "--no-progress"]
# (TV-L1: byte-reproducible; a reused OpenCV DIS object is not, its output depends on the pairs before)


def frames_cmd(src: Path, dst: Path) -> list[str]:
    return cli("prep", "frames", str(src), str(dst), *FRAMES_ARGS)


def flow_cmd(src: Path, dst: Path) -> list[str]:
    return cli("prep", "flow", str(src), str(dst), *FLOW_ARGS)


def tree(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file under ``root`` (hidden ones included, the lock file not)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != LOCK_NAME}


def temp_entries(root: Path) -> list[str]:
    """Hidden files and folders under ``root`` other than the lock file: leftovers of a run."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*") if p.name != LOCK_NAME
                  and ".actionrec-shards" not in p.parts)


def _lock_holder(dst: Path) -> int | None:
    try:
        return json.loads((dst / LOCK_NAME).read_text() or "{}").get("pid")
    except (OSError, ValueError):
        return None


def running(p: subprocess.Popen) -> bool:
    """Whether ``p`` has not exited (without reaping it, so that :func:`wait_rss` still can)."""
    return os.waitid(os.P_PID, p.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None


def wait_rss(p: subprocess.Popen, *, timeout: float) -> tuple[int | None, float]:
    """Exit status (None: killed after ``timeout``, a hang) and peak RSS in MB of ``p`` and its children."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        pid, status, usage = os.wait4(p.pid, os.WNOHANG)
        if pid:
            p.returncode = os.waitstatus_to_exitcode(status)
            return p.returncode, usage.ru_maxrss / 1024
        time.sleep(0.02)
    p.kill()
    _, _, usage = os.wait4(p.pid, 0)
    p.returncode = -9
    return None, usage.ru_maxrss / 1024


@dataclass
class Pair:
    rcs: tuple[int | None, int | None]  # None: hung (killed after the timeout)
    errs: tuple[str, str]
    overlapped: bool  # the second run ended while the first was still running
    rss_mb: float

    @property
    def refused(self) -> int:
        """How many runs stopped at once with the one-line "in use by" error."""
        return sum(rc == 2 and "in use by" in e and len(e.splitlines()) == 1 for rc, e in zip(self.rcs, self.errs))


def run_pair(cmd: list[str], lock_dir: Path, *, stagger: bool = True, timeout: float = 300) -> Pair:
    """Run ``cmd`` twice on one output: the second starts as soon as the first holds the lock of
    ``lock_dir`` (``stagger``) or at the same moment as the first."""
    deadline = time.time() + timeout
    with tempfile.TemporaryFile("w+") as ea, tempfile.TemporaryFile("w+") as eb:  # files: a long log cannot block
        a = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=ea)
        while stagger and _lock_holder(lock_dir) != a.pid and running(a) and time.time() < deadline:
            time.sleep(0.01)
        b = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=eb)
        b_rc, b_rss = wait_rss(b, timeout=max(1.0, deadline - time.time()))
        overlapped = running(a)
        a_rc, a_rss = wait_rss(a, timeout=max(1.0, deadline - time.time()))
        ea.seek(0)
        eb.seek(0)
        return Pair((a_rc, b_rc), (ea.read().strip(), eb.read().strip()), overlapped, max(a_rss, b_rss))


def kill_during(cmd: list[str], dst: Path, *, after_files: int = 3, delay: float = 0.0,
                timeout: float = 120) -> tuple[list[str], float]:
    """Start ``cmd``; ``kill -9`` it ``delay`` s after it has written ``after_files`` temporary files.

    Returns the hidden leftovers under ``dst`` and the peak RSS (MB) of the killed run.
    """
    p = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while running(p) and time.time() < deadline:
        tmp = [d for d in dst.rglob(".*tmp*")] if dst.exists() else []
        if tmp and sum(1 for d in tmp if d.is_dir() for _ in d.iterdir()) >= after_files:
            break
        time.sleep(0.01)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    _, rss = wait_rss(p, timeout=timeout)
    return (temp_entries(dst) if dst.exists() else []), rss
