"""The ASGI app: ``create_app(model, ...)`` → a FastAPI application serving one model.

Request path of ``POST /v1/predict``: the body is streamed to a private temporary directory
under an upload slot (:mod:`~actionrec.serve.uploads`; a slow client holds no inference slot),
then admitted to inference, probed and decoded in a thread pool (off the event loop), its clips go
through the :class:`~actionrec.serve.batcher.DynamicBatcher` (the one place inference runs), and
the answer is the ``predict --json`` object plus ``timings``. The directory is deleted when the
response has been sent. Long videos go to ``/v1/jobs`` (:mod:`~actionrec.serve.jobs_api`). Every
refusal is JSON ``{"error": "..."}`` with a 4xx status, or 429/503 with ``Retry-After`` when the
server is busy or not ready.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.staticfiles import StaticFiles

from actionrec.errors import UsageError
from actionrec.serve.adapter import BadVideo, ModelAdapter
from actionrec.serve.batcher import DynamicBatcher, QueueFull
from actionrec.serve.common import Busy, admitted, error, ready_adapter, spooled
from actionrec.serve.jobs import JobManager, JobSettings
from actionrec.serve.jobs_api import add_job_routes
from actionrec.serve.metrics import ServeMetrics
from actionrec.serve.uploads import Limits, Upload, UploadError, UploadGate, probe_video

__all__ = ["create_app", "ServeSettings"]

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
MAX_CLIPS = 10
MAX_ANNOTATE_TOPK = 10


@dataclass(frozen=True)
class ServeSettings:
    """Scheduling and safety settings of one app (the CLI flags of ``actionrec serve``)."""

    max_batch: int = 8
    max_wait_ms: float = 20.0
    max_queue: int | None = None  # requests between upload and answer before 503 (default 4 × max_batch)
    max_uploads: int = 256  # request bodies being received at once (all clients)
    max_uploads_per_client: int = 8  # ... from one address (an IPv6 /64)
    timeout: float = 120.0  # seconds per request, from the end of the upload to the answer
    decode_workers: int = 2
    clips: int = 0  # clips per video when a request does not say (0: automatic, from the length)
    token: str | None = None
    cors_origins: tuple[str, ...] = ()
    limits: Limits = field(default_factory=Limits)
    jobs: JobSettings | None = None  # long-video jobs (off unless given; ``actionrec serve`` turns them on)


class _State:
    """What the handlers share: the model (once loaded), the batcher, the pools, readiness, the jobs."""

    def __init__(self, settings: ServeSettings) -> None:
        self.settings = settings
        self.metrics = ServeMetrics()
        self.adapter: ModelAdapter | None = None
        self.batcher: DynamicBatcher | None = None
        self.pool = ThreadPoolExecutor(max(1, settings.decode_workers), thread_name_prefix="actionrec-decode")
        self.ready = threading.Event()
        self.load_error: str | None = None
        self.warmup_seconds: float | None = None
        self.tmp_root: Path | None = None  # made when the app starts: tempfile.mkdtemp, mode 0700
        self.max_pending = settings.max_queue or 4 * settings.max_batch
        self.pending = 0  # requests between admission and answer; only touched on the event loop
        self.gate = UploadGate(settings.max_uploads, settings.max_uploads_per_client)
        self.jobs = JobManager(settings.jobs) if settings.jobs else None  # opens (and locks) the state directory now

    def start(self, model: Any, load_kwargs: dict[str, Any]) -> None:
        """Load (unless given a loaded adapter) and warm up the model; runs in a background thread."""
        try:
            adapter = model if isinstance(model, ModelAdapter) else ModelAdapter(model, **load_kwargs)
            self.warmup_seconds = adapter.warm_up()
            s = self.settings
            self.batcher = DynamicBatcher(adapter.forward, max_batch=s.max_batch, max_wait_ms=s.max_wait_ms,
                                          max_queue=self.max_pending * MAX_CLIPS, on_batch=self.metrics.on_batch)
            self.adapter = adapter
            if self.jobs:
                self.jobs.start(adapter, self.batcher.submit)
            self.ready.set()
            log.info("model %s ready (%s backend, warm-up %.2f s)", adapter.source, adapter.backend, self.warmup_seconds)
        except Exception as e:  # noqa: BLE001 - reported by /readyz and every request
            self.load_error = f"{type(e).__name__}: {e}"
            log.error("could not load the model: %s", self.load_error)

    def stop(self) -> None:
        if self.batcher:
            self.batcher.close()
        if self.jobs:
            self.jobs.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)
        if self.tmp_root:
            shutil.rmtree(self.tmp_root, ignore_errors=True)


def create_app(model: str | os.PathLike | ModelAdapter, *, backend: str = "auto", threads: int | None = None,
               optimize: bool | None = None, settings: ServeSettings | None = None) -> FastAPI:
    """A FastAPI app serving ``model`` (checkpoint, ``.onnx`` file, pretrained name or a loaded :class:`ModelAdapter`).

    The model loads and warms up in a background thread when the app starts; ``/healthz`` answers
    at once, ``/readyz`` and the ``/v1`` endpoints answer 503 until it is ready.
    """
    settings = settings or ServeSettings()
    state = _State(settings)
    load_kwargs = {"backend": backend, "threads": threads, "optimize": optimize}

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        state.tmp_root = Path(tempfile.mkdtemp(prefix="actionrec-serve-"))
        threading.Thread(target=state.start, args=(model, load_kwargs), name="actionrec-load", daemon=True).start()
        yield
        state.stop()

    app = FastAPI(title="actionrec", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.actionrec = state
    _add_guards(app, state)
    _add_routes(app, state)
    add_job_routes(app, state)
    app.mount("/", StaticFiles(directory=STATIC, html=True), name="page")
    return app


def _add_guards(app: FastAPI, state: _State) -> None:
    """CORS, the token check, request metrics, and every error as JSON."""
    settings = state.settings
    if settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], expose_headers=["X-Actionrec-Prediction"])

    @app.middleware("http")
    async def count_and_guard(request: Request, call_next):  # noqa: ANN001, ANN202
        path = _route_path(request)
        endpoint = path if path in _ENDPOINTS else "other"
        t = time.perf_counter()
        guarded = path.startswith(("/v1/", "/metrics")) and request.method != "OPTIONS"  # CORS preflights carry no token
        if settings.token and guarded and not _authorised(request, settings.token):
            response: Response = error(401, "missing or wrong bearer token (send 'Authorization: Bearer <token>')")
            response.headers["WWW-Authenticate"] = "Bearer"
        else:
            try:
                response = await call_next(request)
            except Exception:  # noqa: BLE001 - the server never dies from a request
                log.exception("internal error on %s", request.url.path)
                response = error(500, "internal server error (see the server log)")
        state.metrics.requests.labels(endpoint, str(response.status_code)).inc()
        state.metrics.latency.labels(endpoint).observe(time.perf_counter() - t)
        return response

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        return error(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> Response:
        parts = [f"{'.'.join(str(x) for x in e.get('loc', ()))}: {e.get('msg')}" for e in exc.errors()]
        return error(422, "; ".join(parts) or "invalid request")

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, exc: UploadError) -> Response:
        headers = {"Connection": "close"} if exc.status in (408, 413, 429, 503) else None  # a body may be left unread
        return error(exc.status, exc.message, headers=headers)


def _add_routes(app: FastAPI, state: _State) -> None:
    """Health, readiness, metrics, the model, and the synchronous ``/v1/predict`` and ``/v1/annotate``."""
    settings = state.settings

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> Response:
        if state.ready.is_set():
            return JSONResponse({"status": "ready", "warmup_seconds": round(state.warmup_seconds or 0.0, 3)})
        if state.load_error:
            return error(503, f"the model failed to load: {state.load_error}")
        return error(503, "the model is loading", headers={"Retry-After": "5"})

    @app.get("/metrics")
    async def metrics() -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        if state.batcher:
            state.metrics.queue_depth.set(state.batcher.depth)
        if state.jobs:
            state.jobs.count_metrics(state.metrics.jobs)
        return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/model")
    async def model_info() -> Response:
        return JSONResponse(ready_adapter(state).describe() | {"service": _service_info(settings)})

    @app.post("/v1/predict")
    async def predict(request: Request, topk: int = 5, clips: int | None = None) -> Response:
        topk, clips = _check_query(state, topk, clips)
        async with spooled(state, request, settings.limits) as (upload, _):
            with admitted(state):
                result = await _predict(state, upload, topk=topk, clips=clips)
        return JSONResponse(result)

    @app.post("/v1/annotate")
    async def annotate(request: Request, topk: int = 5, clips: int | None = None) -> Response:
        if not 1 <= topk <= MAX_ANNOTATE_TOPK:  # drawn on every frame and sent in one header line
            raise UploadError(422, f"annotate draws 1 to {MAX_ANNOTATE_TOPK} labels, got topk={topk}")
        topk, clips = _check_query(state, topk, clips)
        async with spooled(state, request, settings.limits, keep=True) as (upload, work):
            with admitted(state):
                t = time.perf_counter()
                result = await _predict(state, upload, topk=topk, clips=clips)
                out = work / "annotated.mp4"
                loop = asyncio.get_running_loop()
                left = max(0.1, state.settings.timeout - (time.perf_counter() - t))
                try:
                    await asyncio.wait_for(loop.run_in_executor(state.pool, state.adapter.annotate, upload.path, out, result), left)
                except asyncio.TimeoutError:
                    state.metrics.rejected.labels("timeout").inc()
                    raise Busy(f"drawing the video took longer than the {state.settings.timeout:g} s request timeout") from None
                except BadVideo as e:
                    raise UploadError(422, f"{result['video']}: cannot decode the video to draw on it ({e.reason})") from e
        header = json.dumps(result, ensure_ascii=True, separators=(",", ":"))
        return FileResponse(out, media_type="video/mp4", filename=f"{Path(result['video']).stem}-annotated.mp4",
                            headers={"X-Actionrec-Prediction": header},
                            background=BackgroundTask(shutil.rmtree, work, ignore_errors=True))


_ENDPOINTS = {"/", "/healthz", "/readyz", "/metrics", "/v1/model", "/v1/predict", "/v1/annotate", "/v1/jobs"}


def _service_info(settings: ServeSettings) -> dict[str, Any]:
    """What the page needs to know of the service: its limits, and whether it runs jobs."""
    lim, jobs = settings.limits, settings.jobs
    return {"max_upload_bytes": lim.max_bytes, "max_duration": lim.max_duration, "jobs": jobs is not None,
            "job_max_upload_bytes": jobs.limits.max_bytes if jobs else None,
            "job_max_duration": jobs.limits.max_duration if jobs else None}


def _route_path(request: Request) -> str:
    """The path the routes see: without the ``root_path`` of a mount or of ``uvicorn --root-path``."""
    path, root = request.scope.get("path", ""), request.scope.get("root_path", "")
    path = path[len(root):] or "/" if root and path.startswith(root) else path
    return "/v1/jobs" if path.startswith("/v1/jobs/") else path  # one metrics label for every job


def _check_query(state: _State, topk: int, clips: int | None) -> tuple[int, int]:
    """The model is ready and ``topk``/``clips`` are valid (before any of the body is read)."""
    adapter = ready_adapter(state)
    clips = state.settings.clips if clips is None else clips
    try:
        topk = adapter.check_topk(topk)
    except UsageError as e:
        raise UploadError(422, str(e)) from None
    if not 0 <= clips <= MAX_CLIPS:
        raise UploadError(422, f"clips must be between 0 (automatic) and {MAX_CLIPS}, got {clips}")
    return topk, clips


async def _predict(state: _State, upload: Upload, *, topk: int, clips: int) -> dict[str, Any]:
    """Probe, decode, batch and score one received upload; returns the answer."""
    adapter, limits = ready_adapter(state), state.settings.limits
    t_upload = time.perf_counter()
    loop = asyncio.get_running_loop()
    timeout = state.settings.timeout

    def decode() -> Any:
        probe_video(upload.path, limits, name=upload.filename)
        try:
            return adapter.load(upload.path, num_clips=clips, name=upload.filename)
        except BadVideo as e:
            raise UploadError(422, f"{upload.filename}: cannot decode the video ({e.reason})") from e

    try:
        loaded = await asyncio.wait_for(loop.run_in_executor(state.pool, decode), timeout)
    except asyncio.TimeoutError:
        state.metrics.rejected.labels("timeout").inc()
        raise Busy(f"decoding took longer than the {timeout:g} s request timeout") from None
    except UploadError:
        state.metrics.decode_failures.inc()
        raise
    t_decode = time.perf_counter()
    try:
        future = state.batcher.submit(loaded.tensor)
    except QueueFull as e:
        state.metrics.rejected.labels("queue_full").inc()
        raise Busy(f"server busy: {e}") from None
    state.metrics.queue_depth.set(state.batcher.depth)
    try:
        logits = await asyncio.wait_for(asyncio.wrap_future(future), max(0.1, timeout - (t_decode - t_upload)))
    except asyncio.TimeoutError:
        state.metrics.rejected.labels("timeout").inc()
        raise Busy(f"no answer within the {timeout:g} s request timeout") from None
    t_infer = time.perf_counter()
    result = adapter.postprocess(logits, loaded, topk=topk, name=upload.filename)
    result["timings"] = {"upload": round(upload.seconds, 4), "decode": round(t_decode - t_upload, 4),
                         "queue_and_inference": round(t_infer - t_decode, 4),
                         "total": round(upload.seconds + time.perf_counter() - t_upload, 4)}
    result["runtime"] = adapter.predictor.runtime_info
    return result


def _authorised(request: Request, token: str) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip().encode(), token.encode())


def _version() -> str:
    from actionrec import __version__

    return __version__
