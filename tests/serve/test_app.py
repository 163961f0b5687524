"""``actionrec.serve.create_app`` in-process: mounted in another app, and a model that fails to load."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import httpx
from fastapi import FastAPI

from actionrec.serve import create_app

DATA = Path(__file__).parents[1] / "data"


async def _wait_ready(c: httpx.AsyncClient, url: str) -> httpx.Response:
    for _ in range(300):
        r = await c.get(url)
        if r.status_code == 200 or "failed" in r.json()["error"]:
            return r
        assert r.headers["retry-after"]
        await asyncio.sleep(0.1)
    raise AssertionError("not ready")


def _mounted(sub: FastAPI, prefix: str) -> FastAPI:
    """``sub`` mounted at ``prefix`` in a parent app that runs its lifespan, as docs/serving.md shows."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        async with sub.router.lifespan_context(sub):
            yield

    parent = FastAPI(lifespan=lifespan)
    parent.mount(prefix, sub)
    return parent


def test_mounted_in_another_app(tiny_ckpt: Path) -> None:
    parent = _mounted(create_app(tiny_ckpt, optimize=False, threads=1), "/actions")

    async def run() -> None:
        async with parent.router.lifespan_context(parent):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=parent), base_url="http://test") as c:
                assert (await _wait_ready(c, "/actions/readyz")).status_code == 200
                r = await c.post("/actions/v1/predict", params={"topk": 2}, content=(DATA / "short.mp4").read_bytes())
                assert r.status_code == 200 and len(r.json()["predictions"]) == 2

    asyncio.run(run())


def test_a_model_that_fails_to_load_is_reported(tmp_path: Path) -> None:
    bad = tmp_path / "broken.safetensors"
    bad.write_bytes(b"\x00" * 64)
    app = create_app(bad)

    async def run() -> None:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
                r = await _wait_ready(c, "/readyz")
                assert r.status_code == 503 and "broken.safetensors" in r.json()["error"]
                assert (await c.get("/healthz")).status_code == 200
                p = await c.post("/v1/predict", content=(DATA / "short.mp4").read_bytes())
                assert p.status_code == 503 and "failed to load" in p.json()["error"]

    asyncio.run(run())


def test_token_guards_a_mounted_app_and_lets_cors_preflights_through(tiny_ckpt: Path) -> None:
    from actionrec.serve.app import ServeSettings

    sub = create_app(tiny_ckpt, optimize=False, threads=1,
                     settings=ServeSettings(token="s3cret", cors_origins=("http://example.test",)))
    parent = _mounted(sub, "/api")

    async def run() -> None:
        async with parent.router.lifespan_context(parent):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=parent), base_url="http://test") as c:
                assert (await _wait_ready(c, "/api/readyz")).status_code == 200
                # under a prefix the guard still sees /metrics and /v1/...
                assert (await c.get("/api/metrics")).status_code == 401
                assert (await c.post("/api/v1/predict", content=(DATA / "short.mp4").read_bytes())).status_code == 401
                ok = await c.get("/api/metrics", headers={"Authorization": "Bearer s3cret"})
                assert ok.status_code == 200
                # a browser's preflight carries no token: CORS answers it
                pre = await c.options("/api/v1/predict", headers={"Origin": "http://example.test",
                                                                  "Access-Control-Request-Method": "POST",
                                                                  "Access-Control-Request-Headers": "authorization"})
                assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "http://example.test"
                # annotate draws a bounded number of labels
                r = await c.post("/api/v1/annotate", params={"topk": 50}, headers={"Authorization": "Bearer s3cret"},
                                 content=(DATA / "short.mp4").read_bytes())
                assert r.status_code == 422 and "topk=50" in r.json()["error"]

    asyncio.run(run())


def test_a_full_inference_queue_is_503_with_retry_after_and_jobs_are_off_by_default(tiny_ckpt: Path) -> None:
    """``max_queue=1``: while one request waits for the model, the next (fully uploaded) one gets 503 at once."""
    import threading

    from actionrec.serve.adapter import ModelAdapter
    from actionrec.serve.app import ServeSettings

    adapter = ModelAdapter(tiny_ckpt, optimize=False, threads=1)
    entered, release, forward = threading.Event(), threading.Event(), adapter.forward

    def held(batch):  # noqa: ANN001, ANN202 - the warm-up passes; later forward passes wait for the test
        if entered.is_set() or adapter_ready.is_set():
            entered.set()
            assert release.wait(30)
        return forward(batch)

    adapter_ready = threading.Event()
    adapter.forward = held
    app = create_app(adapter, settings=ServeSettings(max_queue=1))
    body = (DATA / "short.mp4").read_bytes()

    async def run() -> None:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test", timeout=60) as c:
                assert (await _wait_ready(c, "/readyz")).status_code == 200
                adapter_ready.set()
                first = asyncio.create_task(c.post("/v1/predict", content=body))
                while not entered.is_set():
                    await asyncio.sleep(0.05)
                busy = await c.post("/v1/predict", content=body)
                assert busy.status_code == 503 and "requests in progress" in busy.json()["error"]
                assert busy.headers["retry-after"] == "1"
                release.set()
                assert (await first).status_code == 200
                off = await c.get("/v1/jobs")
                assert off.status_code == 404 and "state directory" in off.json()["error"]

    asyncio.run(run())


def test_x3d_is_served_as_predict_scores_it(tmp_path: Path) -> None:
    """X3D-XS through the service (its own preprocessing, 4×160² at stride 12, from its metadata): the scores
    of the command line's Predictor, and its input shape in /v1/model."""
    import numpy as np
    import torch

    import actionrec
    from tests.convert.seeded import seeded_array

    model = actionrec.create_model("x3d_xs", num_classes=3)
    model.load_state_dict({k: torch.from_numpy(seeded_array(k, tuple(v.shape), noise=True)) for k, v in model.state_dict().items()})
    model.meta.class_names = ["one", "two", "three"]
    ckpt = actionrec.save_model(model, tmp_path / "x3d_xs.safetensors")
    want = actionrec.Predictor(ckpt, optimize=False, num_clips=2, threads=1).predict(DATA / "h264.mp4", topk=3).to_dict()
    app = create_app(ckpt, threads=1)

    async def run() -> None:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
                assert (await _wait_ready(c, "/readyz")).status_code == 200
                m = (await c.get("/v1/model")).json()
                assert m["arch"] == "x3d_xs" and m["input_shape"] == [3, 4, 160, 160]
                r = await c.post("/v1/predict", params={"topk": 3, "clips": 2}, content=(DATA / "h264.mp4").read_bytes())
                assert r.status_code == 200, r.text
                got = r.json()["predictions"]
                assert [p["label"] for p in got] == [p["label"] for p in want["predictions"]]
                np.testing.assert_allclose([p["score"] for p in got], [p["score"] for p in want["predictions"]], atol=1e-4)

    asyncio.run(run())
