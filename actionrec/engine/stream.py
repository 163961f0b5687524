"""Predictions over time on a long video or a camera: a sliding window of frames.

Every ``step`` frames the last ``(clip_len − 1) × frame_stride + 1`` frames are scored; the printed
prediction is the mean softmax of the last ``smooth`` windows (as webcam demos do, to keep the
label from flickering).
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actionrec.errors import UsageError
from actionrec.inference.predictor import Predictor
from actionrec.inference.windows import ClipAssembler

log = logging.getLogger(__name__)

__all__ = ["StreamEvent", "iter_frames", "stream_predictions"]


@dataclass
class StreamEvent:
    frame: int  # index of the last frame of the window
    time: float  # seconds (frame / fps)
    topk: list[tuple[str, float]]  # smoothed predictions

    def to_json(self) -> dict[str, Any]:
        return {"frame": self.frame, "time": round(self.time, 3), "predictions": [{"label": lab, "score": round(s, 6)} for lab, s in self.topk]}


def iter_frames(source: str, *, max_frames: int | None = None) -> tuple[Iterator[np.ndarray], float]:
    """``(frames, fps)``: uint8 ``(H, W, 3)`` RGB frames of a video file, or of a camera if ``source`` is an integer."""
    if source.isdigit():
        import cv2

        cap = cv2.VideoCapture(int(source))
        if not cap.isOpened():
            raise RuntimeError(f"cannot open camera {source}")
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0

        def cam() -> Iterator[np.ndarray]:
            n = 0
            try:
                while max_frames is None or n < max_frames:
                    ok, bgr = cap.read()
                    if not ok:
                        break
                    n += 1
                    yield bgr[..., ::-1].copy()
            finally:
                cap.release()

        return cam(), float(fps)
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"video not found: {source}")
    from actionrec.data.video import VideoReader

    reader = VideoReader(path)  # the reader predict/eval use: rotation honoured, decode errors name the file
    frames = reader.iter_frames()
    return (frames if max_frames is None else itertools.islice(frames, max_frames)), reader.fps or 25.0


def stream_predictions(
    predictor: Predictor,
    frames: Iterable[np.ndarray],
    *,
    fps: float,
    step: int | None = None,
    smooth: int = 3,
    topk: int = 3,
    on_frame: Callable[[np.ndarray, list[tuple[str, float]]], None] | None = None,
) -> Iterator[StreamEvent]:
    """Yield a :class:`StreamEvent` every ``step`` frames (default: half a window) once a window is full.

    The window ending at frame ``i`` holds frames ``pipeline.window(i - span + 1, ·)``: the same
    indices, transform and model as ``predict`` and ``eval``, its clip assembled as ``predict --segments``
    assembles it (:class:`~actionrec.inference.windows.ClipAssembler`: each frame a clip uses is transformed
    once, and kept only while a window needs it). ``on_frame(frame, current_topk)`` is called for every
    frame (e.g. to draw and save it).
    """
    pipe = predictor.pipeline
    span = pipe.span
    step = max(1, span // 2) if step is None else step
    if step < 1:
        raise UsageError(f"step must be ≥ 1, got {step}")
    if smooth < 1:
        raise UsageError(f"smooth must be ≥ 1, got {smooth}")
    topk = predictor.check_topk(topk)
    offsets = pipe.window(0, span)  # frame offsets inside the window (0, s, 2s, ...)
    clips = ClipAssembler(pipe, ((k, k * step, k * step + offsets) for k in itertools.count()))
    wanted = clips.wanted()  # endless: the windows of a camera never run out
    want = next(wanted)
    recent: collections.deque[np.ndarray] = collections.deque(maxlen=smooth)
    current: list[tuple[str, float]] = []
    for i, frame in enumerate(frames):
        if i == want:
            for _, clip in clips.add(i, frame):
                t0 = time.perf_counter()
                recent.append(predictor.softmax(predictor.forward(clip)).mean(dim=0).numpy())
                p = np.mean(recent, axis=0)
                order = np.argsort(-p, kind="stable")[:topk]
                current = [(predictor.meta.label(int(k)), float(p[k])) for k in order]
                log.debug("window ending at frame %d scored in %.3f s", i, time.perf_counter() - t0)
                yield StreamEvent(i, i / fps if fps else 0.0, current)
            want = next(wanted)
        if on_frame is not None:
            on_frame(frame, current)
