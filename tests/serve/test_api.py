"""The HTTP API against a real ``actionrec serve`` process on 127.0.0.1 (a small random model)."""

from __future__ import annotations

import io
import json
import socket
import time
import wave
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import av
import numpy as np
import pytest

from tests.serve.conftest import TOKEN, Server

DATA = Path(__file__).parents[1] / "data"
LIMITS = ["--max-upload-mb", "2", "--max-duration", "8", "--max-frames", "200", "--read-timeout", "1"]


@pytest.fixture(scope="module")
def server(tiny_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("api")
    (work / "tmp").mkdir()
    s = Server(tiny_ckpt, *LIMITS, "--max-batch", "4", "--max-wait-ms", "300", "--max-queue", "8", "--threads", "1",
               log=work / "server.log", token=TOKEN, env={"TMPDIR": str(work / "tmp")})
    s.tmp = work / "tmp"
    yield s
    s.stop()


def test_health_ready_and_model(server: Server) -> None:
    with server.client() as c:
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json()["status"] == "ready"
        m = c.get("/v1/model").json()
    assert m["arch"] == "r2plus1d_18" and m["classes"] == ["alpha", "beta", "gamma", "delta"]
    assert m["preprocess"]["clip_len"] == 16 and m["input_shape"] == [3, 16, 112, 112] and m["backend"] == "torch"


def test_predict_matches_the_command_line_json(server: Server, tiny_ckpt: Path) -> None:
    import actionrec

    # the server runs the fast path: both must agree
    want = actionrec.Predictor(tiny_ckpt, optimize=False, num_clips=3, threads=1).predict(DATA / "xvid.avi", topk=3).to_dict()
    with server.client() as c:
        raw = c.post("/v1/predict", params={"topk": 3, "clips": 3}, content=(DATA / "xvid.avi").read_bytes())
        form = c.post("/v1/predict", params={"topk": 3, "clips": 3}, files={"file": ("xvid.avi", (DATA / "xvid.avi").read_bytes())})
    assert raw.status_code == 200 and form.status_code == 200, (raw.text, form.text)
    for got in (raw.json(), form.json()):
        assert [p["label"] for p in got["predictions"]] == [p["label"] for p in want["predictions"]]
        np.testing.assert_allclose([p["score"] for p in got["predictions"]], [p["score"] for p in want["predictions"]], atol=1e-5)
        timings = got.pop("timings")
        assert set(timings) == {"upload", "decode", "queue_and_inference", "total"}
        assert set(got.pop("runtime")) == {"backend", "device", "threads", "precision"}  # how the timings were measured
        assert set(got) == set(want) and got["clips"] == 3 and got["duration"] == want["duration"] == 6.56
    assert form.json()["video"] == "xvid.avi" and raw.json()["video"] == "upload"


def test_annotate_returns_the_video_with_the_answer(server: Server) -> None:
    with server.client() as c:
        r = c.post("/v1/annotate", files={"file": ("short.mp4", (DATA / "short.mp4").read_bytes())})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "video/mp4"
    answer = json.loads(r.headers["x-actionrec-prediction"])
    assert answer["video"] == "short.mp4" and len(answer["predictions"]) == 4
    with av.open(io.BytesIO(r.content)) as f:
        frames = [fr.to_ndarray(format="rgb24") for fr in f.decode(video=0)]
    assert len(frames) == 32 and min(frames[0].shape[:2]) >= 224  # small videos are drawn at 224 px or more
    assert frames[0][:20].mean() < frames[0][40:].mean()  # the dark label band at the top


def test_token_is_required_on_the_api_but_not_on_health(server: Server) -> None:
    import httpx

    assert httpx.get(f"{server.url}/v1/model").status_code == 401
    r = httpx.get(f"{server.url}/v1/model", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and "token" in r.json()["error"] and r.headers["www-authenticate"] == "Bearer"
    assert httpx.get(f"{server.url}/metrics").status_code == 401
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    assert httpx.get(f"{server.url}/").status_code == 200  # the page itself asks for the token


def test_concurrent_requests_are_batched(server: Server) -> None:
    body = (DATA / "short.mp4").read_bytes()  # one clip each
    with server.client() as c:
        before = _metric(c, "actionrec_batch_size_count")
        with ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda _: c.post("/v1/predict", content=body).status_code, range(8)))
        batches = _metric(c, "actionrec_batch_size_count") - before
    assert codes == [200] * 8
    assert 1 <= batches < 8  # 8 one-clip requests in fewer forward passes


# --- hostile uploads: each a 4xx with a message, the server healthy afterwards ---------------------------
def _wav() -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000)
        w.writeframes(np.zeros(8000, np.int16).tobytes())
    return buf.getvalue()


def _many_frames() -> bytes:
    """240 frames at 60 fps (4 s): under the duration limit, over the 200-frame limit."""
    buf = io.BytesIO()
    with av.open(buf, "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=60)
        s.width, s.height, s.pix_fmt = 32, 32, "yuv420p"
        for i in range(240):
            frame = av.VideoFrame.from_ndarray(np.full((32, 32, 3), i % 256, np.uint8), format="rgb24")
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return buf.getvalue()


def _garbled() -> bytes:
    """short.mp4 with its whole ``mdat`` payload replaced by noise: the container opens, no frame decodes."""
    b = bytearray((DATA / "short.mp4").read_bytes())
    i = b.index(b"mdat")
    size = int.from_bytes(b[i - 4 : i], "big")
    b[i + 4 : i - 4 + size] = np.random.default_rng(0).integers(0, 256, size - 8, dtype=np.uint8).tobytes()
    return bytes(b)


H264 = (DATA / "h264.mp4").read_bytes()
HOSTILE = {  # name: (body, params, expected status, words the message must contain)
    "empty": (b"", {}, 400, "empty upload"),
    "truncated head": (H264[:5000], {}, 415, "not a video"),
    "truncated tail": (H264[: len(H264) * 6 // 10], {}, 415, "not a video"),
    "no decodable frame": (_garbled(), {}, 422, "cannot decode the video"),
    "random bytes": (np.random.default_rng(0).integers(0, 256, 30_000, dtype=np.uint8).tobytes(), {}, 415, "not a video"),
    "text file": (b"name,label\nvideo.mp4,3\n" * 50, {}, 415, "not a video"),
    "audio only": (_wav(), {}, 415, "no video stream"),
    "over duration": (H264, {}, 413, "10.0 s long"),
    "over frame count": (_many_frames(), {}, 413, "more than 200 frames"),
    "over upload size": ((DATA / "cricket_rgb.gif").read_bytes(), {}, 413, "over the limit of 2097152 bytes"),
    "topk 0": ((DATA / "short.mp4").read_bytes(), {"topk": 0}, 422, "topk"),
    "topk huge": ((DATA / "short.mp4").read_bytes(), {"topk": 10**9}, 422, "topk"),
    "clips 99": ((DATA / "short.mp4").read_bytes(), {"clips": 99}, 422, "clips"),
    "topk not a number": ((DATA / "short.mp4").read_bytes(), {"topk": "x"}, 422, "topk"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_upload(server: Server, name: str) -> None:
    body, params, status, words = HOSTILE[name]
    with server.client() as c:
        r = c.post("/v1/predict", params=params, content=body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"]
    assert "/tmp" not in r.json()["error"]  # the server's paths stay private
    assert server.alive()


def test_damaged_stream_is_scored_on_what_decodes(server: Server) -> None:
    """As ``predict``: a video whose decoder fails part-way is scored on the frames before, and says so."""
    with server.client() as c:
        r = c.post("/v1/predict", files={"file": ("corrupt.mp4", (DATA / "corrupt.mp4").read_bytes())})
    assert r.status_code == 200 and r.json()["truncated"] is True, r.text
    assert server.alive()


def _raw_request(server: Server, head: bytes, body_chunks: list[bytes], *, pause: float = 0.0) -> str:
    """Send a hand-made request over a socket (declared sizes that lie, stalls); returns the response text."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(head)
        try:
            for chunk in body_chunks:
                s.sendall(chunk)
                time.sleep(pause)
        except OSError:  # the server answered early and closed
            pass
        data = b""
        try:
            while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
                part = s.recv(65536)
                if not part:
                    break
                data += part
        except OSError:
            pass
    return data.decode("latin-1")


def _head(server: Server, extra: str) -> bytes:
    return f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n{extra}\r\n".encode()


def test_huge_declared_size_is_refused_before_reading(server: Server) -> None:
    text = _raw_request(server, _head(server, "Content-Length: 10000000000\r\n"), [b"x" * 100])
    assert text.startswith("HTTP/1.1 413") and "over the limit" in text
    assert server.alive()


def test_body_over_the_limit_without_a_declared_size(server: Server) -> None:
    chunk = b"0" * 65536
    chunks = [f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"] * 40 + [b"0\r\n\r\n"]  # 2.5 MB, chunked
    text = _raw_request(server, _head(server, "Transfer-Encoding: chunked\r\n"), chunks)
    assert text.startswith("HTTP/1.1 413") and "over the limit of 2097152 bytes" in text
    assert server.alive()


def test_slow_client_is_dropped(server: Server) -> None:
    t = time.perf_counter()
    text = _raw_request(server, _head(server, "Content-Length: 100000\r\n"), [b"\0" * 100])
    assert text.startswith("HTTP/1.1 408") and "stalled" in text
    assert time.perf_counter() - t < 10
    assert server.alive()


def test_stalled_uploads_hold_no_inference_slot(server: Server) -> None:
    """8 stalled uploads from one address (its cap) leave the 8 request slots free: another client is answered,
    a 9th upload from that address gets 429 with ``Retry-After`` at once, the stalled ones time out (408)."""
    socks = []
    try:
        for _ in range(8):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            s.sendall(_head(server, "Content-Length: 100000\r\n") + b"\0" * 100)
            socks.append(s)
        time.sleep(0.3)
        with server.client() as c:
            t = time.perf_counter()
            r = c.post("/v1/predict", content=(DATA / "short.mp4").read_bytes())
            assert r.status_code == 429 and "uploads in progress from your address" in r.json()["error"], r.text
            assert r.headers["retry-after"] == "1" and time.perf_counter() - t < 1
            with server.client(source="127.0.0.2") as other:  # (test_slow_uploads.py holds 100 for longer)
                assert other.post("/v1/predict", content=(DATA / "short.mp4").read_bytes()).status_code == 200
            for s in socks:  # each stalled upload is dropped after the 1 s read timeout
                assert s.recv(1000).startswith(b"HTTP/1.1 408")
            assert c.post("/v1/predict", content=(DATA / "short.mp4").read_bytes()).status_code == 200
    finally:
        for s in socks:
            s.close()


def test_multipart_without_a_file(server: Server) -> None:
    with server.client() as c:
        r = c.post("/v1/predict", data={"note": "no file here"}, files={"other": ("x.txt", b"")})
        bad = c.post("/v1/predict", content=b"--x\r\n", headers={"Content-Type": "multipart/form-data"})
    assert r.status_code == 400 and "file" in r.json()["error"]
    assert bad.status_code == 400 and "boundary" in bad.json()["error"]
    assert server.alive()


def test_uploads_live_in_a_private_directory_and_are_deleted(server: Server) -> None:
    (root,) = server.tmp.glob("actionrec-serve-*")
    assert root.stat().st_mode & 0o777 == 0o700
    with server.client() as c:
        assert c.post("/v1/predict", content=(DATA / "short.mp4").read_bytes()).status_code == 200
        assert c.post("/v1/annotate", content=(DATA / "short.mp4").read_bytes()).status_code == 200
        assert c.post("/v1/predict", content=b"junk").status_code == 415
    time.sleep(0.2)
    assert list(root.iterdir()) == []


def test_metrics_count_requests_and_failures(server: Server) -> None:
    with server.client() as c:
        before = _metric(c, "actionrec_decode_failures_total")
        c.post("/v1/predict", content=b"not a video at all")
        c.post("/v1/predict", params={"topk": 0}, content=(DATA / "short.mp4").read_bytes())  # a bad parameter is no decode failure
        assert c.post("/v1/predict", content=(DATA / "short.mp4").read_bytes()).status_code == 200
        text = c.get("/metrics").text
    assert 'actionrec_requests_total{endpoint="/v1/predict",status="200"}' in text
    assert 'actionrec_requests_total{endpoint="/v1/predict",status="415"}' in text
    assert _metric_text(text, "actionrec_decode_failures_total") == before + 1
    assert _metric_text(text, "actionrec_batch_size_count") >= 1
    assert "actionrec_queue_depth" in text and "actionrec_request_seconds_bucket" in text


def _metric(c, name: str) -> float:  # noqa: ANN001
    return _metric_text(c.get("/metrics").text, name)


def _metric_text(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")
