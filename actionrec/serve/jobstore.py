"""The jobs' SQLite file: jobs, every completed window, results (stdlib ``sqlite3``, WAL mode, no server).

One connection shared by the event loop and the job threads behind a lock; every statement is short
(a key lookup or one row). Each window is committed as it completes, so a process killed at any
moment resumes a job from its last completed window. ``synchronous=NORMAL`` in WAL mode survives a
killed process (the OS keeps what was written); a power cut may lose the last windows, never the file.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from array import array
from pathlib import Path
from typing import Any

__all__ = ["JobStore", "ACTIVE", "FINISHED"]

log = logging.getLogger(__name__)

ACTIVE = ("queued", "running")
FINISHED = ("done", "failed", "cancelled")
SCHEMA = 1

_TABLES = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    started REAL,
    finished REAL,
    source TEXT NOT NULL,          -- 'upload' (a file in the upload area) or 'path' (under --media-root)
    path TEXT NOT NULL,            -- the file the job reads (never shown to clients)
    name TEXT NOT NULL,            -- the client's name for it
    params TEXT NOT NULL,          -- JSON: the segment parameters and topk
    model TEXT NOT NULL,           -- fingerprint of the model that scores its windows
    probe TEXT,                    -- JSON: what the upload probe found (format, size, duration)
    plan TEXT,                     -- JSON: windows, duration, fps, resolved parameters (once known)
    windows_total INTEGER,
    windows_done INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS jobs_state ON jobs (state, created);
CREATE TABLE IF NOT EXISTS windows (
    job TEXT NOT NULL,
    idx INTEGER NOT NULL,
    start_s REAL NOT NULL,
    end_s REAL NOT NULL,
    scores BLOB NOT NULL,          -- float64, one per class, native byte order
    PRIMARY KEY (job, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results (job TEXT PRIMARY KEY, body TEXT NOT NULL);
"""


class JobStore:
    """The jobs database at ``path`` (created with its tables on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_TABLES)
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version not in (0, SCHEMA):
                raise RuntimeError(f"{self.path.name} has schema {version}; this version reads {SCHEMA}")
            self._db.execute(f"PRAGMA user_version={SCHEMA}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _exec(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        with self._lock:
            return self._db.execute(sql, args)

    # --- jobs ---------------------------------------------------------------------------------
    def insert(self, job: dict[str, Any]) -> None:
        cols = ", ".join(job)
        self._exec(f"INSERT INTO jobs ({cols}) VALUES ({', '.join('?' * len(job))})", tuple(job.values()))

    def get(self, job_id: str) -> dict[str, Any] | None:
        row = self._exec("SELECT * FROM jobs WHERE id = ?", (job_id,)).fetchone()
        return dict(row) if row else None

    def list(self, *, state: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        if state:
            rows = self._exec("SELECT * FROM jobs WHERE state = ? ORDER BY created DESC LIMIT ?", (state, limit))
        else:
            rows = self._exec("SELECT * FROM jobs ORDER BY created DESC LIMIT ?", (limit,))
        return [dict(r) for r in rows.fetchall()]

    def active(self) -> list[dict[str, Any]]:
        """Queued and running jobs, oldest first."""
        rows = self._exec("SELECT * FROM jobs WHERE state IN (?, ?) ORDER BY created", ACTIVE).fetchall()
        return [dict(r) for r in rows]

    def count_active(self) -> int:
        return self._exec("SELECT COUNT(*) FROM jobs WHERE state IN (?, ?)", ACTIVE).fetchone()[0]

    def counts(self) -> dict[str, int]:
        """Jobs by state."""
        return dict(self._exec("SELECT state, COUNT(*) FROM jobs GROUP BY state").fetchall())

    def update(self, job_id: str, *, expect: tuple[str, ...] | None = None, **fields: Any) -> bool:
        """Set ``fields`` (only while the job's state is one of ``expect``); whether a row changed."""
        sets = ", ".join(f"{k} = ?" for k in fields)
        sql, args = f"UPDATE jobs SET {sets} WHERE id = ?", (*fields.values(), job_id)
        if expect:
            sql += f" AND state IN ({', '.join('?' * len(expect))})"
            args += tuple(expect)
        return self._exec(sql, args).rowcount > 0

    def delete(self, job_id: str) -> None:
        with self._lock:
            with self._db:
                self._db.execute("BEGIN")
                for table, col in (("windows", "job"), ("results", "job"), ("jobs", "id")):
                    self._db.execute(f"DELETE FROM {table} WHERE {col} = ?", (job_id,))

    def expired(self, before: float) -> list[str]:
        """Finished jobs whose ``finished`` time is before ``before``."""
        rows = self._exec("SELECT id FROM jobs WHERE state IN (?, ?, ?) AND finished < ?", (*FINISHED, before))
        return [r[0] for r in rows.fetchall()]

    # --- windows and results ------------------------------------------------------------------
    def add_window(self, job_id: str, index: int, start_s: float, end_s: float, scores: Any) -> None:
        """Persist one completed window (and the job's count) in one transaction."""
        blob = array("d", (float(x) for x in scores)).tobytes()
        with self._lock:
            with self._db:
                self._db.execute("BEGIN")
                self._db.execute("INSERT OR REPLACE INTO windows VALUES (?, ?, ?, ?, ?)", (job_id, index, start_s, end_s, blob))
                self._db.execute("UPDATE jobs SET windows_done = ? WHERE id = ?", (index + 1, job_id))

    def window_count(self, job_id: str) -> int:
        return self._exec("SELECT COUNT(*) FROM windows WHERE job = ?", (job_id,)).fetchone()[0]

    def windows(self, job_id: str) -> list[tuple[int, float, float, list[float]]]:
        rows = self._exec("SELECT idx, start_s, end_s, scores FROM windows WHERE job = ? ORDER BY idx", (job_id,)).fetchall()
        out = []
        for idx, a, b, blob in rows:
            scores = array("d")
            scores.frombytes(blob)
            out.append((idx, a, b, scores.tolist()))
        return out

    def clear_windows(self, job_id: str) -> None:
        self._exec("DELETE FROM windows WHERE job = ?", (job_id,))

    def finish(self, job_id: str, result: dict[str, Any]) -> bool:
        """Store the result and mark the job done (if it is still running); its windows go (the result has them)."""
        with self._lock:
            with self._db:
                self._db.execute("BEGIN")
                cur = self._db.execute("UPDATE jobs SET state = 'done', finished = ?, error = NULL WHERE id = ? AND state = 'running'",
                                       (time.time(), job_id))
                if cur.rowcount == 0:
                    return False
                self._db.execute("INSERT OR REPLACE INTO results VALUES (?, ?)", (job_id, json.dumps(result, separators=(",", ":"))))
                self._db.execute("DELETE FROM windows WHERE job = ?", (job_id,))
        return True

    def result(self, job_id: str) -> str | None:
        row = self._exec("SELECT body FROM results WHERE job = ?", (job_id,)).fetchone()
        return row[0] if row else None
