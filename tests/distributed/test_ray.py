"""``--engine ray`` and ``actionrec.distributed`` on a real two-node Ray cluster (tests/distributed/conftest.py):
the same rows as the local engine, resumable, and complete and duplicate-free when a worker is killed."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from actionrec.cli import main
from tests.distributed.conftest import skip_without_ray

skip_without_ray()
pytestmark = pytest.mark.ray

ROOT = Path(__file__).parents[2]


def cli(*args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_DEDUP_LOGS": "0"}
    return subprocess.run([sys.executable, "-m", "actionrec.cli", *args], capture_output=True, text=True, timeout=timeout,
                          env=env, cwd=ROOT)


def jsonl_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def local_rows(model: Path, videos: list[str], out: Path, *extra: str) -> list[dict]:
    assert main(["predict", str(model), *videos, "--output", str(out), "--workers", "0", *extra]) == 0
    return jsonl_rows(out) if out.suffix == ".jsonl" else list(csv.reader(out.open()))


def test_predict_on_ray_gives_the_local_rows_and_resumes(ray_cluster: str, ray_model: Path, ray_videos: list[str],
                                                        tmp_path: Path) -> None:
    local = {r["video"]: r for r in local_rows(ray_model, ray_videos, tmp_path / "local.jsonl")}
    # a job the local engine began (7 rows written) is finished on Ray: those 7 are skipped
    out = tmp_path / "ray.jsonl"
    local_rows(ray_model, ray_videos[:7], out)
    proc = cli("predict", str(ray_model), *ray_videos, "--output", str(out), "--engine", "ray", "--ray-address", ray_cluster,
               "--ray-workers", "1,2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "7 videos already done" in proc.stderr and f"{len(ray_videos) - 7} videos predicted on Ray" in proc.stderr
    rows = jsonl_rows(out)
    assert sorted(r["video"] for r in rows) == sorted(ray_videos)  # each once
    assert {r["video"]: r for r in rows} == local  # rows identical to the local engine's, errors included
    assert [Path(r["video"]).name for r in rows if "error" in r] == ["missing.mp4"]  # the empty file: an error row...
    assert "missing.mp4" in proc.stderr and "1 unreadable" in proc.stderr  # ...named and counted
    assert sum(r["truncated"] for r in rows) == 3  # the corrupt copies: scored on the frames that decode, as locally
    # nothing left: said, and Ray is not even started
    proc = cli("predict", str(ray_model), *ray_videos, "--output", str(out), "--engine", "ray", "--ray-address", "127.0.0.1:1")
    assert proc.returncode == 0 and f"nothing to do: all {len(ray_videos)} videos are already in" in proc.stderr


def test_segments_on_ray_give_the_local_rows(ray_cluster: str, ray_model: Path, ray_videos: list[str], tmp_path: Path) -> None:
    videos = ray_videos[:6] + ray_videos[-1:]
    window = ["--segments", "--window", "16f", "--window-stride", "8f"]
    local = tmp_path / "local.jsonl"
    assert main(["predict", str(ray_model), *videos, "--output", str(local), *window]) == 0
    ray_out = tmp_path / "ray.jsonl"
    proc = cli("predict", str(ray_model), *videos, "--output", str(ray_out), "--engine", "ray", "--ray-address", ray_cluster,
               "--ray-workers", "2", *window)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = sorted(jsonl_rows(ray_out), key=lambda r: r["video"])
    assert rows == sorted(jsonl_rows(local), key=lambda r: r["video"])
    assert sum("segments" in r for r in rows) == 6 and "7 videos segmented on Ray (1 unreadable)" in proc.stderr


def test_prep_frames_and_flow_on_ray_write_the_local_folders(ray_cluster: str, ray_videos: list[str], tmp_path: Path) -> None:
    src = Path(ray_videos[0]).parent  # c0: five real clips and a corrupt one
    results = {}
    for engine in ("local", "ray"):
        frames, flow = tmp_path / f"frames_{engine}", tmp_path / f"flow_{engine}"
        ray = ["--engine", "ray", "--ray-address", ray_cluster, "--ray-workers", "2"] if engine == "ray" else ["--workers", "1"]
        p1 = cli("prep", "frames", str(src), str(frames), "--short-side", "48", "--no-progress", *ray)
        p2 = cli("prep", "flow", str(frames), str(flow), "--algo", "farneback", "--chunk", "4", "--no-progress", *ray)
        assert p2.returncode == 0, p2.stderr[-3000:]
        results[engine] = {str(f.relative_to(d)): f.read_bytes() for d in (frames, flow) for f in sorted(d.rglob("*"))
                           if f.is_file() and f.name != ".actionrec.lock"}
        assert p1.returncode == 1 and "1 failed" in p1.stdout and "corrupt_0.mp4" in p1.stdout  # as locally
    assert results["ray"].keys() == results["local"].keys() and len(results["ray"]) > 40
    assert results["ray"] == results["local"]


WORKER_TITLE = b"ray::MapWorker"


def _ray_actor_pids() -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if (d / "cmdline").read_bytes().startswith(WORKER_TITLE):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids


def test_a_killed_worker_loses_no_row_and_duplicates_none(ray_cluster: str, ray_model: Path, ray_videos: list[str],
                                                          tmp_path: Path) -> None:
    videos = [v for v in ray_videos if "corrupt" not in v and "missing" not in v]
    local = local_rows(ray_model, videos, tmp_path / "local.csv", "--clips", "10")
    out = tmp_path / "ray.csv"  # CSV this time: the writer is the same, the rows are checked cell by cell
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "actionrec.cli", "predict", str(ray_model), *videos, "--output", str(out),
                             "--clips", "10", "--engine", "ray", "--ray-address", ray_cluster, "--ray-workers", "2"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
    killed = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            written = len(out.read_text().splitlines()) - 1 if out.exists() else 0
            pids = _ray_actor_pids()
            if written >= 1 and pids:
                killed = pids[0]
                os.kill(killed, signal.SIGKILL)  # a worker process dies mid-run
                break
            time.sleep(0.05)
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert killed is not None, "the run ended before a worker could be killed"
    assert proc.returncode == 0, stderr[-3000:]
    rows = list(csv.reader(out.open()))
    assert rows[0] == local[0] and len(rows) - 1 < 2 * len(videos)
    assert sorted(r[0] for r in rows[1:]) == sorted(videos)  # complete, each once
    assert sorted(rows[1:]) == sorted(local[1:])


API = """
import json, sys, ray
import actionrec.distributed as ad
from actionrec.inference.segments import SegmentParams
address, model, videos = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
ray.init(address=address, logging_level="ERROR")
assert len([n for n in ray.nodes() if n["Alive"]]) == 2
ds = ray.data.from_items([{"video": v, "shot": i} for i, v in enumerate(videos)])
rows = ad.predict_dataset(ds, model, topk=3, options=ad.RayOptions(workers=(2, 2))).take_all()
segs = ad.segment_dataset(ds, model, SegmentParams(window_frames=16), options=ad.RayOptions(workers=(1, 2))).take_all()
print(json.dumps({"rows": rows, "segs": segs}))
"""


def test_predict_dataset_takes_and_returns_a_ray_dataset(ray_cluster: str, ray_model: Path, ray_videos: list[str]) -> None:
    from actionrec.inference import Predictor

    videos = ray_videos[:6]
    proc = subprocess.run([sys.executable, "-c", API, ray_cluster, str(ray_model), json.dumps(videos)], capture_output=True,
                          text=True, timeout=300, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.splitlines()[-1])
    p = Predictor(ray_model, threads=1)
    want = {v: p.predict(v, topk=3) for v in videos}
    assert sorted(r["video"] for r in got["rows"]) == sorted(videos)
    for r in got["rows"]:
        assert set(r) == {"video", "error", "result", "label", "score"}
        assert r["label"] == want[r["video"]].topk[0][0] and r["score"] == pytest.approx(want[r["video"]].topk[0][1], abs=1e-6)
        assert json.loads(r["result"])["predictions"][0]["label"] == r["label"]
    assert sorted(r["video"] for r in got["segs"]) == sorted(videos)
    assert all("segments" in json.loads(r["result"]) for r in got["segs"])
