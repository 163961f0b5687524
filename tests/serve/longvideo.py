"""Long test videos: real clips of ``tests/data`` re-encoded (PyAV) to one size and frame rate, one after another."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import av
import numpy as np

DATA = Path(__file__).parents[1] / "data"


def _frames(path: Path, width: int, height: int) -> list[np.ndarray]:
    with av.open(str(path)) as c:
        return [f.to_ndarray(width=width, height=height, format="rgb24") for f in c.decode(video=0)]


def concat_clips(out: Path, clips: Sequence[str | Path], *, width: int = 224, height: int = 224, fps: int = 25) -> list[float]:
    """Write ``clips`` (names in ``tests/data`` or paths) one after another to ``out`` (H.264 MP4, ``fps``, every
    source frame kept once); returns the time, in seconds, at which each clip starts, then the total duration."""
    starts, n = [], 0
    with av.open(str(out), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        s.options = {"crf": "23", "preset": "veryfast", "g": str(fps)}
        for clip in clips:
            starts.append(n / fps)
            for frame in _frames(DATA / clip if isinstance(clip, str) else clip, width, height):
                for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    c.mux(p)
                n += 1
        for p in s.encode():
            c.mux(p)
    return [*starts, n / fps]
