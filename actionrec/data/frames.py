"""Folders of extracted frames: the same reader interface as videos.

Recognised names (numbers are sorted numerically; the first file is index 0, whatever its number):

- RGB: ``img_00001.jpg`` (mmaction2, this toolkit), ``image_00001.jpg`` (3D-ResNets / KH),
  ``frame000001.jpg``, ``00001.jpg``; ``.jpg``, ``.jpeg`` or ``.png``.
- Flow: ``flow_x_00001.jpg`` + ``flow_y_00001.jpg`` (mmaction2, this toolkit) or ``x_00001.jpg`` +
  ``y_00001.jpg`` (denseflow); 8-bit, 128 = no motion (see :mod:`actionrec.data.flow`).

A folder may also hold ``n_frames`` (the count, KH convention) and ``fps`` (text files); without
``fps`` the rate is taken as 30.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from actionrec.errors import FrameFolderError, UsageError

__all__ = ["FrameFolderReader", "FrameFolderError", "list_frames", "read_n_frames"]

log = logging.getLogger(__name__)

RGB_PATTERN = re.compile(r"^(?:img_|image_|frame_?|)(\d+)\.(?:jpe?g|png)$", re.IGNORECASE)
FLOW_PATTERN = re.compile(r"^(?:flow_)?([xy])_(\d+)\.(?:jpe?g|png)$", re.IGNORECASE)
DEFAULT_FPS = 30.0
MAX_FPS = 10_000.0  # a larger rate read from a header or an fps file is taken as unknown


def list_frames(folder: str | os.PathLike, *, modality: str = "rgb") -> list[Path] | list[tuple[Path, Path]]:
    """The frame files of ``folder`` in order (rgb), or (x, y) file pairs (flow)."""
    folder = Path(folder)
    names = os.listdir(folder)
    if modality == "rgb":
        found = sorted((int(m.group(1)), n) for n in names if (m := RGB_PATTERN.match(n)))
        return [folder / n for _, n in found]
    xs: dict[int, str] = {}
    ys: dict[int, str] = {}
    for n in names:
        m = FLOW_PATTERN.match(n)
        if m:
            (xs if m.group(1).lower() == "x" else ys)[int(m.group(2))] = n
    if set(xs) != set(ys):
        missing = sorted(set(xs) ^ set(ys))[:5]
        raise FrameFolderError(folder, f"flow x and y frames do not pair up (unpaired numbers {missing})")
    return [(folder / xs[k], folder / ys[k]) for k in sorted(xs)]


def _read_text_number(path: Path, kind: type) -> float | int | None:
    try:
        return kind(path.read_text().strip())
    except (OSError, ValueError):
        return None


class FrameFolderReader:
    """Frames stored as image files in one folder (``len``, ``fps``, ``get_frames``)."""

    def __init__(self, folder: str | os.PathLike, *, modality: str = "rgb") -> None:
        self.path = str(folder)
        self.modality = modality
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"frame folder not found: {folder}")
        self._files = list_frames(folder, modality=modality)
        if not self._files:
            want = "img_00001.jpg" if modality == "rgb" else "flow_x_00001.jpg / flow_y_00001.jpg"
            raise FrameFolderError(folder, f"no {modality} frames found (expected names like {want})")
        fps = _read_text_number(folder / "fps", float)
        self.fps = float(fps) if fps and math.isfinite(fps) and 0 < fps <= MAX_FPS else DEFAULT_FPS

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        return f"FrameFolderReader({self.path!r}, frames={len(self)}, modality={self.modality!r})"

    def close(self) -> None:
        pass

    def __enter__(self) -> FrameFolderReader:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _read(self, path: Path, flags: int) -> np.ndarray:
        import cv2

        img = cv2.imread(str(path), flags)
        if img is None:
            raise FrameFolderError(path.parent, f"cannot read image {path.name}")
        return img

    def get_frames(self, indices: Sequence[int]) -> np.ndarray:
        """Frames at ``indices`` as uint8 ``(T, H, W, 3)`` (rgb) or ``(T, H, W, 2)`` (flow x, y)."""
        import cv2

        idx = [int(i) for i in np.asarray(indices, dtype=np.int64).reshape(-1)]
        if not idx:
            raise UsageError("get_frames needs at least one index")
        n = len(self._files)
        bad = [i for i in idx if i < 0 or i >= n]
        if bad:
            raise IndexError(f"{self.path}: frame index {bad[0]} out of range [0, {n})")
        cache: dict[int, np.ndarray] = {}
        for i in sorted(set(idx)):
            if self.modality == "rgb":
                img = self._read(self._files[i], cv2.IMREAD_COLOR)
                cache[i] = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
            else:
                fx, fy = self._files[i]
                x = self._read(fx, cv2.IMREAD_GRAYSCALE)
                y = self._read(fy, cv2.IMREAD_GRAYSCALE)
                if x.shape != y.shape:
                    raise FrameFolderError(self.path, f"{fx.name} and {fy.name} differ in size: {x.shape} vs {y.shape}")
                cache[i] = np.stack([x, y], axis=-1)
        shapes = {a.shape for a in cache.values()}
        if len(shapes) > 1:
            raise FrameFolderError(self.path, f"frames differ in size {sorted(shapes)}")
        return np.stack([cache[i] for i in idx])


def read_n_frames(folder: str | os.PathLike, *, modality: str = "rgb") -> int:
    """Frame count of a folder: its ``n_frames`` file if present, else by listing."""
    n = _read_text_number(Path(folder) / ("n_frames" if modality == "rgb" else "n_flow"), int)
    if n is not None:
        return int(n)
    return len(list_frames(folder, modality=modality))
