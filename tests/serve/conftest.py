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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python -m actionrec.cli serve MODEL ...`` as a child process; ``url`` once ``/readyz`` says ready."""

    def __init__(self, model: str | Path, *args: str, log: Path, ready_timeout: float = 240.0, token: str | None = None,
                 env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = token
        self.log = log
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        env.pop("ACTIONREC_TOKEN", None)
        cmd = [sys.executable, "-m", "actionrec.cli", "serve", str(model), "--port", str(self.port), *args]
        if token:
            cmd += ["--token", token]
        self.proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)  # noqa: SIM115
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

    def client(self, **kw) -> httpx.Client:  # noqa: ANN003
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=kw.pop("timeout", 120), **kw)

    def alive(self) -> bool:
        return self.proc.poll() is None and httpx.get(f"{self.url}/readyz", timeout=10).status_code == 200

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
def i3d_server(i3d_kinetics_ckpt: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """DeepMind's I3D (Kinetics-400) served eagerly (no fast-path check: the quickest start)."""
    server = Server(i3d_kinetics_ckpt, "--no-optimize", "--max-batch", "1", "--clips", "1", log=tmp_path_factory.mktemp("i3d") / "server.log")
    yield server
    server.stop()
