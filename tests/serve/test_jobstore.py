"""The job manager's state directory without a model: retention, one process per directory, recovery after a crash."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from actionrec.errors import UsageError
from actionrec.serve.jobs import JobManager, JobSettings


def add_job(m: JobManager, job_id: str, state: str, *, finished: float | None = None) -> Path:
    """A job row with an upload in the upload area (and a result when done)."""
    home = m.uploads / job_id
    home.mkdir()
    (home / "upload").write_bytes(b"video")
    m.store.insert({"id": job_id, "state": state, "created": time.time(), "finished": finished, "source": "upload",
                    "path": str(home / "upload"), "name": "v.mp4", "params": json.dumps({"topk": 5}), "model": "m"})
    if state == "done":
        m.store.update(job_id, state="running")
        m.store.finish(job_id, {"segments": []})
        m.store.update(job_id, finished=finished)
    return home


def test_retention_deletes_finished_jobs_with_their_results_and_uploads(tmp_path: Path) -> None:
    m = JobManager(JobSettings(state_dir=tmp_path, retention=60))
    try:
        now = time.time()
        old = add_job(m, "old-done-job-1", "done", finished=now - 120)
        old_failed = add_job(m, "old-failed-job", "failed", finished=now - 61)
        recent = add_job(m, "recent-done-job", "done", finished=now - 10)
        queued = add_job(m, "queued-job-0001", "queued")
        assert sorted(m.sweep(now)) == ["old-done-job-1", "old-failed-job"]
        assert m.store.get("old-done-job-1") is None and m.store.result("old-done-job-1") is None
        assert not old.exists() and not old_failed.exists()
        assert recent.exists() and queued.exists() and m.store.result("recent-done-job") is not None
    finally:
        m.stop()


def test_one_process_per_state_directory(tmp_path: Path) -> None:
    m = JobManager(JobSettings(state_dir=tmp_path))
    try:
        with pytest.raises(UsageError, match="in use by another actionrec serve process"):
            JobManager(JobSettings(state_dir=tmp_path))
    finally:
        m.stop()
    JobManager(JobSettings(state_dir=tmp_path)).stop()  # free again


def test_a_restart_queues_active_jobs_again_and_deletes_uploads_no_job_owns(tmp_path: Path) -> None:
    m = JobManager(JobSettings(state_dir=tmp_path))
    running = add_job(m, "running-job-001", "running")
    add_job(m, "queued-job-0001", "queued")
    (m.uploads / ".incoming-x1y2").mkdir()  # an upload that was arriving when the process died
    (m.uploads / "no-such-job-000").mkdir()
    m.stop()
    again = JobManager(JobSettings(state_dir=tmp_path))
    try:
        assert sorted(p.name for p in again.uploads.iterdir()) == ["queued-job-0001", "running-job-001"]
        assert running.exists() and again._queue.qsize() == 2
        assert (tmp_path.stat().st_mode & 0o777) == 0o700
    finally:
        again.stop()
