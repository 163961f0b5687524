"""What the routes share: JSON errors, readiness, upload slots, admission to inference.

A request that sends a video goes through two separate limits:

1. an **upload slot** (:class:`~actionrec.serve.uploads.UploadGate`, per client address and in total)
   while its body streams into a private directory; a stalled client holds only this;
2. once the file is complete, an **inference slot** (``max_queue`` requests from then to the answer).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

from fastapi.responses import JSONResponse

from actionrec.serve.uploads import Limits, Upload, UploadError, client_key, receive_upload

__all__ = ["Busy", "error", "ready_adapter", "spooled", "admitted"]

log = logging.getLogger(__name__)


class Busy(UploadError):
    """503: the queue is full or the request ran out of time; the client should retry later."""

    def __init__(self, message: str) -> None:
        super().__init__(503, message)


def error(status: int, message: str, *, headers: dict[str, str] | None = None) -> JSONResponse:
    """The JSON error answer; 429 and 503 carry ``Retry-After``."""
    headers = dict(headers or {})
    if status in (429, 503):
        headers.setdefault("Retry-After", "1")
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def ready_adapter(state: Any) -> Any:
    """The loaded model, or 503 (loading, or failed to load)."""
    if state.adapter is None:
        if state.load_error:
            raise UploadError(503, f"the model failed to load: {state.load_error}")
        raise Busy("the model is loading")
    return state.adapter


@asynccontextmanager
async def spooled(state: Any, request: Any, limits: Limits, *, keep: bool = False, directory: Path | None = None,
                  prefix: str = "tmp") -> AsyncIterator[tuple[Upload, Path]]:
    """Receive the body into a new private directory (under ``directory``, default the app's temporary root)
    while holding an upload slot (429/503 over a cap). The slot is released when the body has arrived;
    the directory is deleted on exit, or only on error with ``keep``."""
    client = client_key(request.client.host if request.client else None)
    try:
        state.gate.acquire(client)
    except UploadError as e:
        state.metrics.rejected.labels("uploads_per_client" if e.status == 429 else "uploads_total").inc()
        raise
    state.metrics.uploads.set(state.gate.active)
    try:
        work = Path(tempfile.mkdtemp(dir=directory or state.tmp_root, prefix=prefix))
        try:
            upload = await receive_upload(request, work, limits)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    finally:
        state.gate.release(client)
        state.metrics.uploads.set(state.gate.active)
    try:
        yield upload, work
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    else:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)


@contextmanager
def admitted(state: Any) -> Iterator[None]:
    """One inference slot for a received upload (503 when ``max_pending`` requests are between upload and answer)."""
    if state.pending >= state.max_pending:
        state.metrics.rejected.labels("queue_full").inc()
        raise Busy(f"server busy: {state.pending} requests in progress (the limit)")
    state.pending += 1
    state.metrics.in_progress.set(state.pending)
    try:
        yield
    finally:
        state.pending -= 1
        state.metrics.in_progress.set(state.pending)
