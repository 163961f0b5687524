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
import time
from dataclasses import dataclass
from pathlib import Path

from tests.robustness.mutants import DATA

REPO = Path(__file__).resolve().parents[2]
LOCK_NAME = ".actionrec.lock"


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


@dataclass
class Pair:
    a_rc: int
    b_rc: int
    b_err: str
    overlapped: bool  # B ended while A was still running


def run_pair(cmd_a: list[str], cmd_b: list[str], lock_dir: Path, *, timeout: float = 300) -> Pair:
    """Start A; as soon as A holds the output lock, start B (the same job); wait for both."""
    a = subprocess.Popen(cmd_a, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while _lock_holder(lock_dir) != a.pid and a.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    b = subprocess.run(cmd_b, env=env(), capture_output=True, text=True, timeout=timeout)
    overlapped = a.poll() is None
    a_rc = a.wait(timeout=max(1.0, deadline - time.time()))
    return Pair(a_rc, b.returncode, b.stderr.strip(), overlapped)


def kill_during(cmd: list[str], dst: Path, *, after_files: int = 3, timeout: float = 120) -> list[str]:
    """Start ``cmd``, ``kill -9`` it once it has written some temporary files; return the leftovers."""
    p = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    while p.poll() is None and time.time() < deadline:
        tmp = [d for d in dst.rglob(".*tmp*")] if dst.exists() else []
        if tmp and sum(1 for d in tmp if d.is_dir() for _ in d.iterdir()) >= after_files:
            break
        time.sleep(0.01)
    p.send_signal(signal.SIGKILL)
    p.wait()
    return temp_entries(dst) if dst.exists() else []
