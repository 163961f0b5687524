"""Sliding windows over a whole video: where they lie, and their clips from frames decoded once, in order.

* :func:`plan_windows` places every window from the container's frame index, before any decoding:
  ``window``/``stride`` in seconds (on the frames' presentation times, so a variable-frame-rate video gets
  real times) or in frames; by default the window is the model's clip span and the stride half the window.
  Window ``k`` holds frames ``[first[k], end[k])``; the last window ends at the last frame, and a video
  shorter than one window is one window. Its clip is ``clip_len`` of those frames, chosen by
  :func:`~actionrec.data.sampling.uniform_clips` (one clip: the middle of a longer window, spread over a
  shorter one), so the default window's clip is exactly ``stream``'s and ``pipeline.window``'s.
* :class:`ClipAssembler` turns frames arriving in display order into window clips, in window order:
  only frames some clip uses are transformed (once each, with the model's
  :meth:`~actionrec.data.pipeline.ClipPipeline.transform`, a few frames a call: the transform is frame-wise,
  and one call on 8 small frames costs about what two calls on one do), and kept only while an open window
  needs them. ``wanted()`` names those frames, lazily, for :meth:`~actionrec.data.video.VideoReader.iter_selected`.
"""

from __future__ import annotations

import collections
import heapq
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from actionrec.data.frames import DEFAULT_FPS
from actionrec.data.sampling import clip_span, uniform_clips
from actionrec.data.video import open_video
from actionrec.errors import UsageError
from actionrec.meta import Preprocess

if TYPE_CHECKING:
    from actionrec.data.pipeline import ClipPipeline
    from actionrec.inference.segments import SegmentParams

__all__ = ["WindowPlan", "plan_windows", "ClipAssembler", "MAX_WINDOWS"]

log = logging.getLogger(__name__)

MAX_WINDOWS = 10_000_000  # a stride so short that a video has more windows is refused before any work
FLUSH_FRAMES, FLUSH_BYTES = 16, 64 << 20  # decoded frames waiting for one transform call: at most this many / bytes
EPS = 1e-6  # seconds: timestamps closer than this are equal


@dataclass
class WindowPlan:
    """Where every window of one video lies (from the frame index, before decoding).

    ``times``: float64 ``(N,)`` presentation time of each frame; ``first``/``end``: int64 ``(W,)`` first frame
    of each window and one past its last; ``params``: the :class:`SegmentParams` with the defaults filled in.
    """

    times: np.ndarray
    duration_s: float
    fps: float
    first: np.ndarray
    end: np.ndarray
    preprocess: Preprocess
    params: Any

    def __len__(self) -> int:
        return len(self.first)

    def clip(self, k: int) -> np.ndarray:
        """Frame indices of window ``k``'s clip: int64 ``(clip_len,)``, non-decreasing."""
        a, b = int(self.first[k]), int(self.end[k])
        p = self.preprocess
        return a + uniform_clips(b - a, num_clips=1, clip_len=p.clip_len, stride=p.frame_stride)[0]

    def start_s(self, k: int) -> float:
        """Time of window ``k``'s first frame."""
        return float(self.times[self.first[k]])

    def end_s(self, k: int) -> float:
        """Time of window ``k``'s last frame plus that frame's duration (the next frame's time)."""
        last = int(self.end[k])
        return float(self.times[last]) if last < len(self.times) else self.duration_s


def _frame_times(reader: Any) -> tuple[np.ndarray, float]:
    """``(times (N,), duration)``: from the stream's timestamps where the reader has them, else ``index / fps``."""
    fps = float(getattr(reader, "fps", 0.0) or 0.0)
    times = reader.frame_times() if hasattr(reader, "frame_times") else np.arange(len(reader)) / (fps or DEFAULT_FPS)
    if len(times) < 1:
        raise UsageError(f"{reader.path}: no frames")
    gaps = np.diff(times)
    last = float(gaps[-1]) if len(gaps) and gaps[-1] > 0 else 1.0 / (fps or DEFAULT_FPS)
    return times, float(times[-1]) + last


def resolve_params(params: SegmentParams, preprocess: Preprocess) -> SegmentParams:
    """``params`` with the defaults filled in: window = the clip's span in frames, stride = half the window."""
    if params.window_s is None and params.window_frames is None:
        params = replace(params, window_frames=clip_span(preprocess.clip_len, preprocess.frame_stride))
    if params.stride_s is None and params.stride_frames is None:
        if params.window_frames is not None:
            params = replace(params, stride_frames=max(1, params.window_frames // 2))
        else:
            params = replace(params, stride_s=params.window_s / 2)
    return params


def plan_windows(reader: Any, params: SegmentParams, preprocess: Preprocess) -> WindowPlan:
    """Every window of a video: a path, or an open reader (``len``, ``fps``, optionally ``frame_times()``).

    Reads the container's index only (no decoding); see the module docstring.
    """
    if isinstance(reader, (str, os.PathLike)):
        with open_video(reader) as opened:
            return plan_windows(opened, params, preprocess)
    params = resolve_params(params, preprocess)
    times, duration = _frame_times(reader)
    n = len(times)
    if params.stride_frames is not None:
        count = -(-n // params.stride_frames)
    else:
        count = int(duration / params.stride_s) + 1
    if count > MAX_WINDOWS:
        raise UsageError(f"{reader.path}: a stride this short makes {count} windows (at most {MAX_WINDOWS}); use a longer stride")
    if params.stride_frames is not None:
        first = np.arange(0, n, params.stride_frames, dtype=np.int64)
    else:
        first = np.unique(np.searchsorted(times, np.arange(count) * params.stride_s - EPS, side="left"))
        first = first[first < n]
    if params.window_frames is not None:
        end = first + params.window_frames
        fits = end <= n
        tail = n - params.window_frames
    else:
        end = np.maximum(np.searchsorted(times, times[first] + params.window_s - EPS, side="left"), first + 1)
        fits = times[first] + params.window_s <= duration + EPS
        tail = int(np.searchsorted(times, duration - params.window_s - EPS, side="left"))
    first, end = first[fits], np.minimum(end[fits], n)
    whole = not len(first)
    if whole:  # shorter than one window: the whole video (a clip's short-video rule spreads it)
        first, end = np.zeros(1, np.int64), np.full(1, n, np.int64)
    elif end[-1] < n and tail > first[-1]:  # the last window ends at the last frame
        first, end = np.append(first, tail), np.append(end, n)
    shortest = int((end - first).min())
    if not whole and shortest < preprocess.clip_len:
        log.warning("%s: windows of %d frames are shorter than the model's clip of %d frames; frames are repeated",
                    reader.path, shortest, preprocess.clip_len)
    return WindowPlan(times, duration, float(getattr(reader, "fps", 0.0) or 0.0), first.astype(np.int64),
                      end.astype(np.int64), preprocess, params)


class ClipAssembler:
    """Window clips from frames that arrive in display order (see the module docstring).

    ``windows``: ``(k, first frame, clip indices (clip_len,))`` in window order, ``first`` non-decreasing and
    at most the clip's first index. Feed the frames :meth:`wanted` names to :meth:`add`, which returns the
    completed ``(k, float32 (crops, C, clip_len, H, W))`` clips, in window order.
    """

    def __init__(self, pipeline: ClipPipeline, windows: Iterator[tuple[int, int, np.ndarray]]) -> None:
        self.pipeline = pipeline
        self._todo = windows
        self._next = next(windows, None)
        self._open: collections.deque[tuple[int, np.ndarray]] = collections.deque()
        self._need: collections.Counter[int] = collections.Counter()  # frame → open windows using it
        self._frames: dict[int, torch.Tensor] = {}  # frame → (crops, C, 1, H, W)
        self._pending: list[tuple[int, np.ndarray]] = []  # decoded frames not yet transformed
        self._pending_bytes = 0
        self._heap: list[int] = []

    def wanted(self) -> Iterator[int]:
        """The frames some window uses, increasing; windows are opened as the frames reach them."""
        last = -1
        while True:
            # every window not yet open starts after the smallest pending frame: nothing it needs is passed
            while self._next is not None and (not self._heap or self._next[1] <= self._heap[0]):
                k, _, idx = self._next
                self._open.append((k, idx))
                for j in set(idx.tolist()):
                    self._need[j] += 1
                    heapq.heappush(self._heap, j)
                self._next = next(self._todo, None)
            if not self._heap:
                return
            v = heapq.heappop(self._heap)
            if v > last:
                last = v
                yield v

    def add(self, i: int, frame: np.ndarray) -> list[tuple[int, torch.Tensor]]:
        """Frame ``i`` (uint8 ``(H, W, C)``) → the window clips it completes."""
        if self._need[i]:
            if self._pending and frame.shape != self._pending[0][1].shape:
                self._transform()  # the frame size changed mid-stream
            self._pending.append((i, frame))
            self._pending_bytes += frame.nbytes
        complete = bool(self._open) and int(self._open[0][1][-1]) <= i
        if complete or len(self._pending) >= FLUSH_FRAMES or self._pending_bytes >= FLUSH_BYTES:
            self._transform()
        out = []
        while self._open and int(self._open[0][1][-1]) <= i:
            k, idx = self._open.popleft()
            out.append((k, torch.cat([self._frames[j] for j in idx.tolist()], dim=2)))
            for j in set(idx.tolist()):
                self._need[j] -= 1
                if self._need[j] <= 0:
                    del self._need[j]
                    self._frames.pop(j, None)
        return out

    def _transform(self) -> None:
        """The pending frames through the model's transform, in one call: (crops, C, n, H, W) → one view per frame."""
        if not self._pending:
            return
        clip = self.pipeline.transform(np.stack([f for _, f in self._pending]))
        for t, (i, _) in enumerate(self._pending):
            self._frames[i] = clip[:, :, t : t + 1]
        self._pending, self._pending_bytes = [], 0

    @property
    def held(self) -> int:
        """Frames held now (memory: bounded by the frames of the open windows)."""
        return len(self._frames)
