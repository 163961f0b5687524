"""The routes of long-video jobs: ``/v1/jobs`` (submit, list), ``/v1/jobs/{id}`` (state, cancel),
``/v1/jobs/{id}/result``, and the page of one job, ``/jobs/{id}`` (see docs/serving.md).

A submission is a video upload (raw body or multipart field ``file``, job parameters in the query
string) or JSON ``{"path": "...", ...parameters}`` naming a file under ``--media-root``. Either is
probed against the job limits before the job is queued (415/422/413 as for ``/v1/predict``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from actionrec.serve.common import ready_adapter, spooled
from actionrec.serve.jobs import JOB_ID, JobManager, JobsBusy
from actionrec.serve.jobstore import ACTIVE, FINISHED
from actionrec.serve.uploads import Limits, UploadError, probe_video

__all__ = ["add_job_routes"]

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 64 * 1024
MAX_LIST = 500
PAGE = Path(__file__).parent / "static" / "index.html"


def add_job_routes(app: FastAPI, state: Any) -> None:
    """Add the job routes to ``app`` (``state``: the app's shared state; jobs may be off: 404 then)."""

    def manager() -> JobManager:
        if state.jobs is None:
            raise UploadError(404, "this server runs no jobs (they need a state directory: actionrec serve --state-dir DIR)")
        return state.jobs

    @app.post("/v1/jobs")
    async def submit_job(request: Request) -> Response:
        jobs, adapter = manager(), ready_adapter(state)
        query = dict(request.query_params)
        try:
            if _content_type(request) == "application/json":
                view = await _submit_path(state, jobs, adapter, request, query)
            else:
                view = await _submit_upload(state, jobs, adapter, request, query)
        except JobsBusy:
            state.metrics.rejected.labels("jobs_full").inc()
            raise
        view |= _links(request, view["id"])
        return JSONResponse(view, status_code=202, headers={"Location": view["links"]["self"]})

    @app.get("/v1/jobs")
    async def list_jobs(request: Request, limit: int = 50) -> Response:
        wanted = request.query_params.get("state")
        if wanted is not None and wanted not in ACTIVE + FINISHED:
            raise UploadError(422, f"state must be one of {', '.join(ACTIVE + FINISHED)}, got {wanted[:40]!r}")
        if not 1 <= limit <= MAX_LIST:
            raise UploadError(422, f"limit must be between 1 and {MAX_LIST}, got {limit}")
        views = [v | _links(request, v["id"]) for v in manager().list(state=wanted, limit=limit)]
        return JSONResponse({"jobs": views})

    @app.get("/v1/jobs/{job_id}")
    async def get_job(request: Request, job_id: str) -> Response:
        return JSONResponse(manager().view(job_id) | _links(request, job_id))

    @app.get("/v1/jobs/{job_id}/result")
    async def get_result(job_id: str, windows: bool = True) -> Response:
        body = manager().result(job_id)
        if not windows:
            d = json.loads(body)
            d.pop("windows", None)
            body = json.dumps(d, separators=(",", ":"))
        return Response(body, media_type="application/json")

    @app.delete("/v1/jobs/{job_id}")
    async def cancel_job(request: Request, job_id: str) -> Response:
        view = manager().cancel(job_id)
        return JSONResponse(view if view.get("deleted") else view | _links(request, job_id))

    @app.get("/jobs/{job_id}", include_in_schema=False)
    async def job_page(job_id: str) -> Response:
        if not JOB_ID.fullmatch(job_id):
            raise UploadError(404, "no such job page")
        html = PAGE.read_text(encoding="utf-8").replace("<head>", '<head>\n<base href="../">', 1)  # the page's files and API
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})


def _content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _links(request: Request, job_id: str) -> dict[str, Any]:
    root = request.scope.get("root_path", "")
    return {"links": {"self": f"{root}/v1/jobs/{job_id}", "result": f"{root}/v1/jobs/{job_id}/result",
                      "page": f"{root}/jobs/{job_id}"}}


async def _submit_upload(state: Any, jobs: JobManager, adapter: Any, request: Request, query: dict[str, str]) -> dict[str, Any]:
    """A video in the body: checked, spooled into the upload area, probed, queued."""
    params = jobs.params(query, adapter)
    jobs.check_room()
    limits = jobs.settings.limits
    async with spooled(state, request, limits, keep=True, directory=jobs.incoming(), prefix=".incoming-") as (upload, _):
        probe = await _probe(state, upload.path, limits, name=upload.filename)
        jobs.check_windows(params, probe, upload.filename)
        return jobs.submit(source="upload", path=upload.path, name=upload.filename, params=params, probe=probe)


async def _submit_path(state: Any, jobs: JobManager, adapter: Any, request: Request, query: dict[str, str]) -> dict[str, Any]:
    """JSON ``{"path": ..., parameters}``: a file under the media root, probed, queued."""
    body = await _json_body(state, request)
    if "url" in body:
        raise UploadError(400, "this server fetches no URLs: upload the video, or name a 'path' under its media root")
    text = body.pop("path", None)
    params = jobs.params({**query, **body}, adapter)
    jobs.check_room()
    path = jobs.resolve_media(text)
    name = text[:200]
    probe = await _probe(state, path, jobs.settings.limits, name=name)
    jobs.check_windows(params, probe, name)
    return jobs.submit(source="path", path=path, name=name, params=params, probe=probe)


async def _json_body(state: Any, request: Request) -> dict[str, Any]:
    """A JSON object of at most 64 kB, received under an upload slot like any body."""
    limits = Limits(max_bytes=MAX_JSON_BYTES, read_timeout=state.settings.limits.read_timeout)
    async with spooled(state, request, limits) as (upload, _):
        try:
            body = json.loads(upload.path.read_bytes())
        except (ValueError, UnicodeDecodeError) as e:
            raise UploadError(400, f"the body is not valid JSON ({e})") from None
    if not isinstance(body, dict):
        raise UploadError(422, "the JSON body must be an object such as {\"path\": \"match.mp4\"}")
    return body


async def _probe(state: Any, path: Path, limits: Limits, *, name: str) -> dict[str, Any]:
    """The upload probe (container, stream, size, duration, frames) in the decode pool; 4xx if it fails."""
    loop = asyncio.get_running_loop()
    timeout = state.settings.timeout
    try:
        info = await asyncio.wait_for(loop.run_in_executor(state.pool, lambda: probe_video(path, limits, name=name)), timeout)
    except asyncio.TimeoutError:
        raise UploadError(503, f"{name}: probing the video took longer than {timeout:g} s") from None
    except UploadError:
        state.metrics.decode_failures.inc()
        raise
    return info | {"bytes": path.stat().st_size}
