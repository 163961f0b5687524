"""Long-video jobs against a real ``actionrec serve`` process: segments, cancellation, a full queue, hostile input."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.serve.conftest import DATA, Server
from tests.serve.longvideo import concat_clips

PARAMS = {"stride_s": 0.5}


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A media root: eye makeup, pool cleaning, eye makeup (6.56 + 12.0 + 6.56 s); symlinks in and out of it."""
    root = tmp_path_factory.mktemp("media")
    (root / "videos").mkdir()
    bounds = concat_clips(root / "videos" / "long.mp4", ["xvid.avi", "h264.mp4", "xvid.avi"], width=160, height=120)
    assert bounds == [0.0, 6.56, 18.56, 25.12]
    outside = tmp_path_factory.mktemp("outside")
    shutil.copy(DATA / "short.mp4", outside / "secret.mp4")
    (root / "videos" / "escape.mp4").symlink_to(outside / "secret.mp4")
    (root / "videos" / "inside.mp4").symlink_to(root / "videos" / "long.mp4")
    (root / "etc").symlink_to("/etc")
    return root


@pytest.fixture(scope="module")
def server(two_action_ckpt: Path, media: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    work = tmp_path_factory.mktemp("jobs")
    s = Server(two_action_ckpt, "--media-root", str(media), "--max-jobs", "3", "--max-batch", "2", "--threads", "1",
               "--read-timeout", "2", log=work / "server.log")
    yield s
    s.stop()


def wait_for(c: httpx.Client, job_id: str, states: tuple[str, ...] = ("done", "failed", "cancelled"), timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = c.get(f"/v1/jobs/{job_id}").json()
        if job["state"] in states:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} still {job['state']} after {timeout} s")


def test_a_path_job_finds_both_actions_in_order_and_matches_predictor_segments(server: Server, media: Path,
                                                                               two_action_ckpt: Path) -> None:
    import actionrec

    with server.client() as c:
        r = c.post("/v1/jobs", json={"path": "videos/long.mp4", **PARAMS})
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"/v1/jobs/{job['id']}" and job["links"]["page"] == f"/jobs/{job['id']}"
        done = wait_for(c, job["id"])
        assert done["state"] == "done" and done["progress"] == 100.0 and done["windows_done"] == done["windows_total"] == 50
        result = c.get(f"/v1/jobs/{job['id']}/result").json()
        lean = c.get(f"/v1/jobs/{job['id']}/result", params={"windows": "false"}).json()
        assert [j["id"] for j in c.get("/v1/jobs").json()["jobs"]].count(job["id"]) == 1
    labels = [s["label"] for s in result["segments"]]
    assert labels == ["eye makeup", "cleaning pool", "eye makeup"]
    for seg, truth in zip(result["segments"][1:], [6.56, 18.56]):
        assert abs(seg["start"] - truth) <= PARAMS["stride_s"]  # boundaries within one stride of the truth
    assert len(result["windows"]) == 50 and "windows" not in lean and lean["segments"] == result["segments"]
    want = actionrec.Predictor(two_action_ckpt, threads=1).segments(media / "videos" / "long.mp4", **PARAMS)
    assert [(s["label"], s["start"], s["end"]) for s in result["segments"]] == \
        [(s.label, round(s.start_s, 3), round(s.end_s, 3)) for s in want.segments]
    np.testing.assert_allclose([s["score"] for s in result["segments"]], [s.score for s in want.segments], atol=1e-4)
    assert (media / "videos" / "long.mp4").is_file()  # a media file is never deleted


def test_an_upload_job_can_be_cancelled_and_its_upload_is_deleted(server: Server) -> None:
    video = (server.log.parent / "up.mp4")
    concat_clips(video, ["h264.mp4", "xvid.avi"], width=160, height=120)
    uploads = server.state_dir / "uploads"
    with server.client() as c:
        first = c.post("/v1/jobs", params={"stride_s": 0.25}, files={"file": ("up.mp4", video.read_bytes())}).json()
        second = c.post("/v1/jobs", params={"stride_s": 0.25}, files={"file": ("up.mp4", video.read_bytes())}).json()
        assert second["state"] == "queued" and second["video"] == "up.mp4"
        assert (uploads / second["id"] / "upload").is_file()
        early = c.get(f"/v1/jobs/{second['id']}/result")
        assert early.status_code == 409 and "queued" in early.json()["error"]
        gone = c.delete(f"/v1/jobs/{second['id']}")
        assert gone.status_code == 200 and gone.json()["state"] == "cancelled"
        assert not (uploads / second["id"]).exists()
        c.delete(f"/v1/jobs/{first['id']}")
        assert wait_for(c, first["id"])["state"] == "cancelled"
        assert wait_for(c, second["id"])["state"] == "cancelled"
        deleted = c.delete(f"/v1/jobs/{second['id']}")  # a finished job: deleted with its result
        assert deleted.json() == {"id": second["id"], "deleted": True}
        assert c.get(f"/v1/jobs/{second['id']}").status_code == 404
    deadline = time.monotonic() + 10  # the running job's worker deletes its upload after its current window
    while list(uploads.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert list(uploads.iterdir()) == []


def test_a_flood_of_jobs_is_refused_with_503_and_retry_after(server: Server) -> None:
    with server.client() as c:
        answers = [c.post("/v1/jobs", json={"path": "videos/long.mp4", "stride_s": 0.25}) for _ in range(6)]
        codes = [r.status_code for r in answers]
        assert codes[:3] == [202] * 3 and 503 in codes[3:], codes
        busy = next(r for r in answers if r.status_code == 503)
        assert "job queue full" in busy.json()["error"] and busy.headers["retry-after"] == "1"
        for r in answers:
            if r.status_code == 202:
                c.delete(f"/v1/jobs/{r.json()['id']}")
        assert "actionrec_rejected_total{reason=\"jobs_full\"}" in c.get("/metrics").text
    assert server.alive()


HOSTILE = {  # name: (method, url, request keywords, status, words the message must contain)
    "unknown id": ("GET", "/v1/jobs/AAAAAAAAAAAAAAAA", {}, 404, "no job"),
    "malformed id": ("GET", "/v1/jobs/x;rm%20-rf", {}, 404, "no job"),
    "unknown result": ("GET", "/v1/jobs/AAAAAAAAAAAAAAAA/result", {}, 404, "no job"),
    "unknown cancel": ("DELETE", "/v1/jobs/AAAAAAAAAAAAAAAA", {}, 404, "no job"),
    "absolute path outside": ("POST", "/v1/jobs", {"json": {"path": "/etc/passwd"}}, 403, "outside the media root"),
    "dot-dot": ("POST", "/v1/jobs", {"json": {"path": "videos/../../outside/secret.mp4"}}, 400, "'..'"),
    "symlink to a file outside": ("POST", "/v1/jobs", {"json": {"path": "videos/escape.mp4"}}, 403, "outside the media root"),
    "symlinked folder outside": ("POST", "/v1/jobs", {"json": {"path": "etc/passwd"}}, 403, "outside the media root"),
    "a URL": ("POST", "/v1/jobs", {"json": {"path": "http://example.org/v.mp4"}}, 400, "fetches no URLs"),
    "a url field": ("POST", "/v1/jobs", {"json": {"url": "http://example.org/v.mp4"}}, 400, "fetches no URLs"),
    "missing file": ("POST", "/v1/jobs", {"json": {"path": "videos/nope.mp4"}}, 404, "no file"),
    "a folder": ("POST", "/v1/jobs", {"json": {"path": "videos"}}, 400, "not a regular file"),
    "empty path": ("POST", "/v1/jobs", {"json": {"path": ""}}, 422, "non-empty string"),
    "path not a string": ("POST", "/v1/jobs", {"json": {"path": 7}}, 422, "non-empty string"),
    "JSON array": ("POST", "/v1/jobs", {"json": ["videos/long.mp4"]}, 422, "must be an object"),
    "broken JSON": ("POST", "/v1/jobs", {"content": b"{\"path\":", "headers": {"Content-Type": "application/json"}}, 400, "not valid JSON"),
    "huge JSON": ("POST", "/v1/jobs", {"content": b"[" + b"1," * 40_000 + b"1]", "headers": {"Content-Type": "application/json"}},
                  413, "over the limit"),
    "bad threshold": ("POST", "/v1/jobs", {"json": {"path": "videos/long.mp4", "threshold": 2}}, 422, "threshold"),
    "unknown parameter": ("POST", "/v1/jobs", {"json": {"path": "videos/long.mp4", "bogus": 1}}, 422, "unknown job parameter"),
    "stride too short": ("POST", "/v1/jobs", {"json": {"path": "videos/long.mp4", "stride_s": 1e-6}}, 422, "windows"),
    "stride not a number": ("POST", "/v1/jobs?stride_s=abc", {"content": (DATA / "short.mp4").read_bytes()}, 422, "stride_s"),
    "not a video": ("POST", "/v1/jobs", {"content": b"name,label\nvideo.mp4,3\n" * 50}, 415, "not a video"),
    "bad list filter": ("GET", "/v1/jobs?state=all", {}, 422, "state must be one of"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_job_request(server: Server, media: Path, name: str) -> None:
    method, url, kw, status, words = HOSTILE[name]
    with server.client() as c:
        r = c.request(method, url, **kw)
    assert r.status_code == status, r.text
    message = r.json()["error"]
    assert words in message
    assert str(media) not in message and "/tmp" not in message  # the server's own paths stay private
    assert server.alive()
    assert list((server.state_dir / "uploads").glob(".incoming-*")) == []


def test_the_page_of_a_job(server: Server) -> None:
    with server.client() as c:
        page = c.get("/jobs/AAAAAAAAAAAAAAAA")
        assert page.status_code == 200 and '<base href="../">' in page.text and 'id="timeline"' in page.text
        assert c.get("/jobs/..%2F..%2Fetc").status_code == 404
        assert c.get("/v1/model").json()["service"]["jobs"] is True
