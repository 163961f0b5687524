"""Slow uploads cannot starve the service: 100 stalled uploads held open against a real server while another
client's prediction and job go through; the per-address and total upload caps answer 429 and 503 at once."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import DATA, Server
from tests.serve.test_jobs import wait_for

STALLED = 100
PER_CLIENT = 8  # the default --max-uploads-per-client
TOTAL = 110


@pytest.fixture(scope="module")
def server(two_action_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """Default request slots (32) and per-address cap; total upload cap 110; stalled bodies kept for 60 s."""
    work = tmp_path_factory.mktemp("slow")
    s = Server(two_action_ckpt, "--max-uploads", str(TOTAL), "--read-timeout", "60", "--threads", "1", log=work / "server.log")
    yield s
    s.stop()


def stall(server: Server, source: str) -> socket.socket:
    """Headers and 100 of 100,000 declared bytes, from ``source``; then nothing."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=30, source_address=(source, 0))
    s.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000\r\n\r\n" + b"\0" * 100)
    return s


def refused(server: Server, source: str) -> tuple[str, float]:
    """The answer to one more stalled upload from ``source`` and how long it took."""
    t = time.perf_counter()
    data = b""
    with stall(server, source) as s:
        while part := s.recv(4096):  # the server answers at once and closes
            data += part
    return data.decode("latin-1"), time.perf_counter() - t


def metric(server: Server, name: str) -> float:
    with server.client(source="127.0.0.2") as c:
        return float(re.search(rf"^{re.escape(name)} (\S+)$", c.get("/metrics").text, re.M).group(1))


def test_stalled_uploads_do_not_starve_predictions_or_jobs(server: Server) -> None:
    sources = [f"127.0.1.{1 + i // PER_CLIENT}" for i in range(STALLED)]  # 13 addresses, 12 of them at their cap
    socks = [stall(server, src) for src in sources]
    try:
        deadline = time.monotonic() + 30
        while metric(server, "actionrec_uploads_in_progress") < STALLED:
            assert time.monotonic() < deadline, "the stalled uploads were not all received"
            time.sleep(0.1)
        text, took = refused(server, "127.0.1.1")  # a 9th from a capped address
        assert text.startswith("HTTP/1.1 429") and "retry-after: 1" in text.lower() and took < 1, text
        assert "too many uploads in progress from your address" in text

        with server.client(source="127.0.0.2") as c:  # another client is served while the 100 hang
            t = time.perf_counter()
            r = c.post("/v1/predict", files={"file": ("xvid.avi", (DATA / "xvid.avi").read_bytes())})
            predict_s = time.perf_counter() - t
            assert r.status_code == 200 and r.json()["predictions"][0]["label"] == "eye makeup", r.text
            job = c.post("/v1/jobs", params={"stride_s": 1.0}, files={"file": ("h264.mp4", (DATA / "h264.mp4").read_bytes())})
            assert job.status_code == 202, job.text
            done = wait_for(c, job.json()["id"])
            assert done["state"] == "done"
            assert c.get(f"/v1/jobs/{done['id']}/result").json()["segments"][0]["label"] == "cleaning pool"
        print(f"\n{STALLED} stalled uploads held; predict answered in {predict_s:.2f} s")

        extra = [stall(server, f"127.0.2.{1 + i // PER_CLIENT}") for i in range(TOTAL - STALLED)]  # the total cap is reached
        socks += extra
        time.sleep(0.5)
        text, took = refused(server, "127.0.3.1")
        assert text.startswith("HTTP/1.1 503") and "uploads in progress (the limit)" in text and took < 1, text
        assert "retry-after: 1" in text.lower()
    finally:
        for s in socks:
            s.close()
    deadline = time.monotonic() + 20  # the dropped connections give their slots back
    while metric(server, "actionrec_uploads_in_progress") > 0:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert server.alive()
    assert metric(server, 'actionrec_rejected_total{reason="uploads_per_client"}') >= 1
    assert metric(server, 'actionrec_rejected_total{reason="uploads_total"}') >= 1
