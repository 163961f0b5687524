"""Long-video jobs: a bounded queue, worker threads, SQLite persistence, resumption, retention.

A job reads one video (an upload kept in the state directory's upload area, or a file under
``--media-root``), slides the model's window over it (:meth:`ModelAdapter.iter_windows`) with each
forward pass going through the app's :class:`~actionrec.serve.batcher.DynamicBatcher` as background
work (requests' clips go first), commits every completed window to :class:`~actionrec.serve.jobstore.JobStore`,
and stores the segments when the last window is in. After a restart, queued and running jobs are
queued again; a running one continues from its last committed window. Finished jobs, their results
and uploads are deleted ``retention`` seconds after they finish.

State directory layout: ``jobs.sqlite3`` (+ WAL files), ``uploads/<job id>/upload`` (a job's video
while it is queued or running), ``uploads/.incoming-*`` (uploads still arriving), ``lock`` (one
process per state directory).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import queue
import re
import secrets
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from actionrec.errors import UsageError
from actionrec.serve.adapter import BadVideo, ModelAdapter
from actionrec.serve.batcher import BatcherClosed
from actionrec.serve.jobstore import ACTIVE, JobStore
from actionrec.serve.jobspec import job_view, parse_params, resolve_under
from actionrec.serve.uploads import MB, Limits, UploadError

__all__ = ["JobSettings", "JobManager", "JobsBusy", "JOB_ID"]

log = logging.getLogger(__name__)

JOB_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")
JOB_NICE = 10  # job threads (and the decoding threads they start) yield the CPU to requests


@dataclass(frozen=True)
class JobSettings:
    """Where jobs live and what one may ask (the ``--state-dir``, ``--media-root`` and ``--job-*`` flags)."""

    state_dir: Path
    media_root: Path | None = None
    max_jobs: int = 16  # queued + running; the next submission gets 503
    workers: int = 1  # jobs running at once
    retention: float = 86_400.0  # seconds a finished job, its result and upload are kept
    batch: int | None = None  # windows per forward pass a job submits (default: the predictor's, 2 on a CPU)
    max_windows: int = 100_000
    limits: Limits = field(default_factory=lambda: Limits(max_bytes=1024 * MB, max_duration=4 * 3600.0,
                                                          max_frames=4 * 3600 * 120))


class JobsBusy(UploadError):
    """503: the job queue is full."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message)


@dataclass
class _Run:
    """A running job's live figures (for progress and ETA; not persisted)."""

    started: float
    first: int  # windows already done when this run started
    done: int
    total: int | None = None


class JobManager:
    """The job queue of one app: submission, views, cancellation, the workers and the retention sweep."""

    def __init__(self, settings: JobSettings) -> None:
        self.settings = settings
        self.state_dir = Path(settings.state_dir).expanduser().resolve()
        self.uploads = self.state_dir / "uploads"
        try:
            self.uploads.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.state_dir, 0o700)
            os.chmod(self.uploads, 0o700)
        except OSError as e:
            raise UsageError(f"the state directory {self.state_dir} cannot be used: {e.strerror or e}") from None
        self._lock_file = _lock(self.state_dir / "lock")
        try:
            self.store = JobStore(self.state_dir / "jobs.sqlite3")
        except (sqlite3.DatabaseError, RuntimeError) as e:
            self._lock_file.close()
            raise UsageError(f"{self.state_dir / 'jobs.sqlite3'} is not a jobs database this version reads ({e}); "
                             "move it away or give another --state-dir") from None
        self.media_root = Path(settings.media_root).resolve() if settings.media_root else None
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._runs: dict[str, _Run] = {}
        self._cancelled: set[str] = set()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.adapter: ModelAdapter | None = None
        self._submit: Callable[..., Future] | None = None
        self._recover()

    # --- life cycle ---------------------------------------------------------------------------
    def _recover(self) -> None:
        """Queue the jobs a previous process left queued or running; delete uploads no job owns."""
        active = self.store.active()
        for job in active:
            self._queue.put(job["id"])
        owned = {j["id"] for j in active if j["source"] == "upload"}
        for entry in self.uploads.iterdir():
            if entry.name in owned:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry, ignore_errors=True)
            else:
                entry.unlink(missing_ok=True)
        if active:
            log.info("resuming %d job(s) from %s", len(active), self.store.path)

    def start(self, adapter: ModelAdapter, submit: Callable[..., Future]) -> None:
        """Start the workers (once the model is ready); ``submit(clips, background=True)`` is the batcher's."""
        self.adapter, self._submit = adapter, submit
        for i in range(max(1, self.settings.workers)):
            self._spawn(self._work, f"actionrec-job-{i}")
        self._spawn(self._sweep, "actionrec-job-sweep")

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        t = threading.Thread(target=target, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the workers after their current window; running jobs stay 'running' and resume next start."""
        self._stop.set()
        for _ in self._threads:
            self._queue.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self.store.close()
        self._lock_file.close()

    # --- submission and queries (event loop) --------------------------------------------------
    def check_room(self) -> None:
        """503 when ``max_jobs`` are queued or running (checked before an upload, and again at submission)."""
        n = self.store.count_active()
        if n >= self.settings.max_jobs:
            raise JobsBusy(f"job queue full: {n} jobs queued or running (the limit); try again later")

    def count_metrics(self, gauge: Any) -> None:
        """Set the ``actionrec_jobs{state}`` gauge."""
        counts = self.store.counts()
        for state in ("queued", "running", "done", "failed", "cancelled"):
            gauge.labels(state).set(counts.get(state, 0))

    def params(self, values: dict[str, Any], adapter: ModelAdapter) -> dict[str, Any]:
        """The request's job parameters, checked (422 naming a bad one)."""
        return parse_params(values, adapter)

    def check_windows(self, params: dict[str, Any], probe: dict[str, Any], name: str) -> None:
        """422 when the parameters would make more than ``max_windows`` windows of this video."""
        duration, frames = probe.get("duration") or 0.0, probe.get("frames") or 0
        if params.get("stride_frames"):
            count = frames / params["stride_frames"]
        elif params.get("stride_s"):
            count = duration / params["stride_s"]
        else:
            return
        if count > self.settings.max_windows:
            raise UploadError(422, f"{name}: this stride makes about {int(count)} windows, over the limit of "
                                   f"{self.settings.max_windows}; use a longer stride")

    def incoming(self) -> Path:
        """Where an upload for a job arrives (renamed to the job's directory when it is accepted)."""
        return self.uploads

    def submit(self, *, source: str, path: Path, name: str, params: dict[str, Any], probe: dict[str, Any]) -> dict[str, Any]:
        """Record and queue a job; an upload's directory (``path.parent``) moves into the upload area under the job's id."""
        self.check_room()
        job_id = secrets.token_urlsafe(12)
        if source == "upload":
            home = self.uploads / job_id
            os.rename(path.parent, home)
            path = home / path.name
        self.store.insert({"id": job_id, "state": "queued", "created": time.time(), "source": source, "path": str(path),
                           "name": name, "params": json.dumps(params), "model": self.adapter.fingerprint if self.adapter else "",
                           "probe": json.dumps(probe)})
        self._queue.put(job_id)
        log.info("job %s queued: %s (%s)", job_id, name, source)
        return self.view(job_id)

    def get(self, job_id: str) -> dict[str, Any]:
        """The job's row, or 404."""
        job = self.store.get(job_id) if JOB_ID.fullmatch(job_id or "") else None
        if job is None:
            raise UploadError(404, f"no job {job_id[:64]!r} (unknown, or deleted after the retention period)")
        return job

    def view(self, job_id: str) -> dict[str, Any]:
        return job_view(self.get(job_id), self._runs.get(job_id), self.settings.retention)

    def list(self, *, state: str | None, limit: int) -> list[dict[str, Any]]:
        return [job_view(j, self._runs.get(j["id"]), self.settings.retention) for j in self.store.list(state=state, limit=limit)]

    def result(self, job_id: str) -> str:
        """The stored result JSON; 409 while the job is not done."""
        job = self.get(job_id)
        if job["state"] != "done":
            why = f": {job['error']}" if job["error"] else ""
            raise UploadError(409, f"job {job_id} is {job['state']}{why}; no result")
        body = self.store.result(job_id)
        if body is None:
            raise UploadError(410, f"the result of job {job_id} was deleted")
        return body

    def cancel(self, job_id: str) -> dict[str, Any]:
        """Cancel a queued or running job (and delete its upload); a finished job is deleted with its result."""
        job = self.get(job_id)
        if job["state"] in ACTIVE:
            self._cancelled.add(job_id)
            if self.store.update(job_id, expect=ACTIVE, state="cancelled", finished=time.time()):
                if job_id not in self._runs:  # a running job's worker deletes its upload when it stops
                    self._drop_upload(job)
                log.info("job %s cancelled", job_id)
            return self.view(job_id)
        self.store.delete(job_id)
        self._drop_upload(job)
        return {"id": job_id, "deleted": True}

    # --- workers ------------------------------------------------------------------------------
    def _work(self) -> None:
        _lower_priority()
        while not self._stop.is_set():
            job_id = self._queue.get()
            if job_id is None or self._stop.is_set():
                return
            job = self.store.get(job_id)
            if job is None or job["state"] not in ACTIVE:
                continue
            try:
                self._run(job)
            except Exception:  # noqa: BLE001 - a job never takes its worker down
                log.exception("job %s failed", job_id)
                self.store.update(job_id, expect=("running",), state="failed", finished=time.time(),
                                  error="internal error (see the server log)")
            finally:
                self._runs.pop(job_id, None)
                self._cancelled.discard(job_id)
                latest = self.store.get(job_id)
                if latest is not None and latest["state"] not in ACTIVE:
                    self._drop_upload(latest)
                    self.store.clear_windows(job_id)

    def _run(self, job: dict[str, Any]) -> None:
        """Score the job's windows from its last committed one, then store its segments."""
        job_id, adapter = job["id"], self.adapter
        if not self.store.update(job_id, expect=ACTIVE, state="running", started=job["started"] or time.time()):
            return  # cancelled meanwhile
        start = self.store.window_count(job_id)
        if start and job["model"] != adapter.fingerprint:
            log.warning("job %s: the model changed since its windows were scored; starting again", job_id)
            self.store.clear_windows(job_id)
            start = 0
        self.store.update(job_id, model=adapter.fingerprint)
        if start:
            log.info("job %s resumes at window %d of %s", job_id, start, job["windows_total"])
        run = self._runs[job_id] = _Run(time.monotonic(), start, start, job["windows_total"])
        params, state = json.loads(job["params"]), {}
        topk = params.pop("topk", 5)
        plan = json.loads(job["plan"]) if job["plan"] else None
        windows = adapter.iter_windows(job["path"], params, name=job["name"], start_window=start, forward=self._forward,
                                       batch_size=self.settings.batch, state=state)
        try:
            for w in windows:
                if plan is None:
                    plan = self._save_plan(job_id, state, run)
                self.store.add_window(job_id, w.index, w.start_s, w.end_s, w.scores)
                run.done = w.index + 1
                if self._stop.is_set() or job_id in self._cancelled:
                    return
        except BatcherClosed:
            return  # shutting down: resumes at the next start
        except BadVideo as e:
            self.store.update(job_id, expect=("running",), state="failed", finished=time.time(), error=e.reason)
            return
        finally:
            windows.close()
        if plan is None:
            plan = self._save_plan(job_id, state, run)
        result = adapter.segment_result(job["name"], self.store.windows(job_id), plan, truncated=bool(state.get("truncated")),
                                        topk=topk)
        if self.store.finish(job_id, result):
            log.info("job %s done: %d windows, %d segments", job_id, plan["windows"], len(result["segments"]))

    def _save_plan(self, job_id: str, state: dict[str, Any], run: _Run) -> dict[str, Any]:
        plan = self.adapter.plan_summary(state)
        run.total = plan["windows"]
        self.store.update(job_id, plan=json.dumps(plan), windows_total=plan["windows"])
        return plan

    def _forward(self, clips: Any) -> Any:
        """A job's forward pass: background work for the batcher (requests' clips go first)."""
        future = self._submit(clips, background=True)
        while True:
            try:
                return future.result(timeout=1.0)
            except TimeoutError:
                if self._stop.is_set():
                    future.cancel()
                    raise BatcherClosed("the server is stopping") from None

    def _drop_upload(self, job: dict[str, Any]) -> None:
        if job["source"] == "upload" and JOB_ID.fullmatch(job["id"]):
            shutil.rmtree(self.uploads / job["id"], ignore_errors=True)

    def _sweep(self) -> None:
        """:meth:`sweep` every quarter of the retention period (at most every 5 minutes) until stopped."""
        every = max(0.5, min(self.settings.retention / 4, 300.0))
        while not self._stop.wait(every):
            try:
                self.sweep()
            except Exception:  # noqa: BLE001 - try again next time
                log.exception("retention sweep failed")

    def sweep(self, now: float | None = None) -> list[str]:
        """Delete the finished jobs (rows, results, uploads) older than the retention period; their ids."""
        gone = self.store.expired((now or time.time()) - self.settings.retention)
        for job_id in gone:
            job = self.store.get(job_id)
            self.store.delete(job_id)
            if job:
                self._drop_upload(job)
            log.info("job %s deleted (retention)", job_id)
        return gone

    # --- media root ---------------------------------------------------------------------------
    def resolve_media(self, text: Any) -> Path:
        """The file a JSON ``path`` names under ``--media-root``; 4xx for anything else (see docs/serving.md)."""
        if self.media_root is None:
            raise UploadError(403, "this server reads no paths (it was started without --media-root): upload the video")
        return resolve_under(self.media_root, text)


def _lock(path: Path) -> Any:
    """Hold an exclusive lock on ``path`` for this process's life: one server per state directory."""
    f = open(path, "a+")  # noqa: SIM115 - held open while the app lives
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        raise UsageError(f"the state directory {path.parent} is in use by another actionrec serve process; "
                         "give each process its own --state-dir") from None
    return f


def _lower_priority() -> None:
    """Raise this thread's nice value (Linux: per thread; threads it starts inherit it)."""
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), JOB_NICE)
    except (OSError, AttributeError) as e:
        log.debug("job thread keeps its priority (%s)", e)
