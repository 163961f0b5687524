"""A job survives SIGKILL: the service restarted on the same state directory finishes it from its last window."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from tests.serve.conftest import Server
from tests.serve.longvideo import concat_clips
from tests.serve.test_jobs import wait_for

PARAMS = {"stride_s": 0.25}


def test_a_job_killed_mid_way_resumes_and_gives_the_segments_of_an_uninterrupted_run(two_action_ckpt: Path, tmp_path: Path) -> None:
    import actionrec

    video = tmp_path / "long.mp4"
    concat_clips(video, ["xvid.avi", "h264.mp4", "xvid.avi"], width=160, height=120)  # 6.56 + 12.0 + 6.56 s
    state, args = tmp_path / "state", ("--max-batch", "2", "--threads", "1")
    first = Server(two_action_ckpt, *args, log=tmp_path / "server.log", state_dir=state)
    try:
        with first.client() as c:
            r = c.post("/v1/jobs", params=PARAMS, files={"file": ("long.mp4", video.read_bytes())})
            assert r.status_code == 202, r.text
            job_id = r.json()["id"]
            deadline = time.monotonic() + 120
            while (job := c.get(f"/v1/jobs/{job_id}").json())["windows_done"] < 5:
                assert job["state"] in ("queued", "running") and time.monotonic() < deadline, job
                time.sleep(0.02)
        first.kill()  # SIGKILL: no shutdown code runs
    finally:
        first.stop()
    assert job["state"] == "running" and 5 <= job["windows_done"] < job["windows_total"] == 99
    assert (state / "uploads" / job_id / "upload").is_file()

    second = Server(two_action_ckpt, *args, log=tmp_path / "server.log", state_dir=state)
    try:
        with second.client() as c:
            back = c.get(f"/v1/jobs/{job_id}").json()
            assert back["windows_done"] >= job["windows_done"]  # nothing committed was lost
            done = wait_for(c, job_id)
            assert done["state"] == "done", done
            result = c.get(f"/v1/jobs/{job_id}/result").json()
    finally:
        second.stop()
    log = (tmp_path / "server.log").read_text()
    resumed_at = int(log.split(f"job {job_id} resumes at window ")[1].split()[0])
    assert resumed_at >= job["windows_done"]
    assert [w["index"] for w in result["windows"]] == list(range(99))
    want = actionrec.Predictor(two_action_ckpt, threads=1).segments(video, **PARAMS)
    assert [s["label"] for s in result["segments"]] == ["eye makeup", "cleaning pool", "eye makeup"]
    assert [(s["label"], s["start"], s["end"]) for s in result["segments"]] == \
        [(s.label, round(s.start_s, 3), round(s.end_s, 3)) for s in want.segments]
    np.testing.assert_allclose([s["score"] for s in result["segments"]], [s.score for s in want.segments], atol=1e-4)
    assert list((state / "uploads").iterdir()) == []  # nothing left in the upload area
