"""Real ``actionrec serve`` processes on 127.0.0.1 (free ports), started once per module or session, always killed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import torch

TOKEN = "test-token-123"
DATA = Path(__file__).parents[1] / "data"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m actionrec.cli serve MODEL ...`` as a child process; ``url`` once ``/readyz`` says ready.

    Its jobs live in ``state_dir`` (default: ``state`` beside the log), never in the user's cache.
    """

    def __init__(self, model: str | Path, *args: str, log: Path, ready_timeout: float = 240.0, token: str | None = None,
                 env: dict[str, str] | None = None, state_dir: Path | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.log = log
        self.state_dir = state_dir or log.parent / "state"
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        env.pop("ACTIONREC_TOKEN", None)
        cmd = [sys.executable, "-m", "actionrec.cli", "serve", str(model), "--port", str(self.port),
               "--state-dir", str(self.state_dir), *args]
        if token:
            cmd += ["--token", token]
        self.proc = subprocess.Popen(cmd, stdout=open(log, "ab"), stderr=subprocess.STDOUT, env=env, start_new_session=True)  # noqa: SIM115
        deadline = time.monotonic() + ready_timeout
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server not ready after {ready_timeout:.0f} s:\n{log.read_text()}")
            time.sleep(0.2)

    def client(self, *, source: str | None = None, **kw) -> httpx.Client:  # noqa: ANN003
        """An HTTP client; ``source``: connect from this local address (e.g. ``127.0.0.2``: another client)."""
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        if source:
            kw["transport"] = httpx.HTTPTransport(local_address=source)
        return httpx.Client(base_url=self.url, headers=headers, timeout=kw.pop("timeout", 120), **kw)

    def alive(self) -> bool:
        return self.proc.poll() is None and httpx.get(f"{self.url}/readyz", timeout=10).status_code == 200

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs (a crash, a power cut of the process)."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


@pytest.fixture(scope="session")
def tiny_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small random R(2+1)D (widths 8-64, 4 classes) saved as our checkpoint: fast, not meaningful."""
    import actionrec

    torch.manual_seed(0)
    model = actionrec.create_model("r2plus1d_18", num_classes=4, widths=(8, 16, 32, 64))
    model.meta.class_names = ["alpha", "beta", "gamma", "delta"]
    return actionrec.save_model(model, tmp_path_factory.mktemp("serve") / "tiny.safetensors")


@pytest.fixture(scope="session")
def two_action_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny R(2+1)D (widths 8-64) that tells two real clips apart: random convolutions, and a classifier set to
    the direction between the mean features of ``xvid.avi`` ("eye makeup") and ``h264.mp4`` ("cleaning pool"),
    scaled so the scores are decisive. Seconds to make; segments of their concatenation have a known truth."""
    import actionrec
    from actionrec.data.pipeline import ClipPipeline

    torch.manual_seed(0)
    model = actionrec.create_model("r2plus1d_18", num_classes=2, widths=(8, 16, 32, 64)).eval()
    model.meta.class_names = ["eye makeup", "cleaning pool"]
    fc, model.fc = model.fc, torch.nn.Identity()
    pipeline = ClipPipeline.from_meta(model.meta, num_clips=6)
    with torch.no_grad():
        a, b = (model(pipeline.load(DATA / name).tensor).mean(0) for name in ("xvid.avi", "h264.mp4"))
        w = (a - b) / (a - b).norm()
        scale = 8.0 / float(w @ (a - b) / 2)  # logits ±8 at the two means
        fc.weight.copy_(scale * torch.stack([w, -w]))
        fc.bias.copy_(-scale * torch.stack([w @ (a + b) / 2, -(w @ (a + b) / 2)]))
    model.fc = fc
    return actionrec.save_model(model, tmp_path_factory.mktemp("serve") / "two_actions.safetensors")


@pytest.fixture(scope="session")
def i3d_server(i3d_kinetics_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """DeepMind's I3D (Kinetics-400) served eagerly (no fast-path check: the quickest start)."""
    server = Server(i3d_kinetics_ckpt, "--no-optimize", "--max-batch", "1", "--clips", "1", log=tmp_path_factory.mktemp("i3d") / "server.log")
    yield server
    server.stop()
