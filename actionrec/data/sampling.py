"""Which frames make a clip. The one place that owns clip indices (training, eval, predict, stream, int8).

A clip is ``clip_len`` (L) frame indices ``stride`` (s) apart, spanning ``(L - 1) * s + 1`` frames
from its start. A video of ``n`` frames has ``n - span`` free frames for the start:

* training: one clip at a uniformly random start;
* evaluation / prediction: ``num_clips`` clips whose starts are the centres of ``num_clips`` equal
  segments of the free range (one clip: the centre of the video);
* sliding windows (``stream``, int8 calibration): starts ``0, step, 2·step, …`` while the clip fits.

**Short videos** (``n < span``, one rule everywhere): the clip spreads its L indices evenly over
the whole video (``round(linspace(0, n - 1, L))``), repeating frames when ``n < L``. Every clip is
therefore in range, in temporal order and exactly L long, for any ``n ≥ 1``.
"""

from __future__ import annotations

import numpy as np

from actionrec.errors import UsageError

__all__ = ["clip_span", "clip_indices", "uniform_clips", "window_starts", "RandomClipSampler", "UniformClipSampler"]


def _check(clip_len: int, stride: int) -> None:
    if int(clip_len) < 1 or int(stride) < 1:
        raise UsageError(f"clip_len and stride must be ≥ 1, got clip_len={clip_len}, stride={stride}")


def clip_span(clip_len: int, stride: int) -> int:
    """Frames covered by one clip: ``(clip_len - 1) * stride + 1``."""
    _check(clip_len, stride)
    return (clip_len - 1) * stride + 1


def clip_indices(start: int, n_frames: int, *, clip_len: int, stride: int) -> np.ndarray:
    """``clip_len`` int64 indices from ``start``, ``stride`` apart; a video shorter than one clip is spread over."""
    if n_frames < 1:
        raise UsageError(f"cannot sample a clip from a video with {n_frames} frames")
    span = clip_span(clip_len, stride)
    if n_frames < span:
        return np.round(np.linspace(0, n_frames - 1, clip_len)).astype(np.int64)
    if not 0 <= start <= n_frames - span:
        raise UsageError(f"clip start {start} out of range [0, {n_frames - span}] for a {n_frames}-frame video")
    return start + stride * np.arange(clip_len, dtype=np.int64)


def uniform_clips(n_frames: int, *, num_clips: int, clip_len: int, stride: int) -> list[np.ndarray]:
    """``num_clips`` clips with evenly spaced starts (centres of equal segments). Deterministic."""
    if num_clips < 1:
        raise UsageError(f"num_clips must be ≥ 1, got {num_clips}")
    free = max(n_frames - clip_span(clip_len, stride), 0)
    starts = [int(free * (i + 0.5) / num_clips) for i in range(num_clips)]
    return [clip_indices(s, n_frames, clip_len=clip_len, stride=stride) for s in starts]


def window_starts(n_frames: int, *, clip_len: int, stride: int, step: int) -> range:
    """Starts of the sliding windows that fit entirely in ``n_frames`` (empty for a short video)."""
    if step < 1:
        raise UsageError(f"step must be ≥ 1, got {step}")
    return range(0, n_frames - clip_span(clip_len, stride) + 1, step)


class RandomClipSampler:
    """Training: one clip at a uniformly random start. ``__call__(n_frames, rng) -> [indices (clip_len,)]``."""

    def __init__(self, clip_len: int, stride: int = 1) -> None:
        self.span = clip_span(clip_len, stride)
        self.clip_len, self.stride = clip_len, stride

    def __call__(self, n_frames: int, rng: np.random.Generator) -> list[np.ndarray]:
        start = int(rng.integers(0, n_frames - self.span + 1)) if n_frames >= self.span else 0
        return [clip_indices(start, n_frames, clip_len=self.clip_len, stride=self.stride)]

    def __repr__(self) -> str:
        return f"RandomClipSampler(clip_len={self.clip_len}, stride={self.stride})"


class UniformClipSampler:
    """Evaluation: :func:`uniform_clips` as a callable ``(n_frames, rng=None) -> [indices]``."""

    def __init__(self, num_clips: int, clip_len: int, stride: int = 1) -> None:
        self.span = clip_span(clip_len, stride)
        if num_clips < 1:
            raise UsageError(f"num_clips must be ≥ 1, got {num_clips}")
        self.num_clips, self.clip_len, self.stride = num_clips, clip_len, stride

    def __call__(self, n_frames: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
        return uniform_clips(n_frames, num_clips=self.num_clips, clip_len=self.clip_len, stride=self.stride)

    def __repr__(self) -> str:
        return f"UniformClipSampler(num_clips={self.num_clips}, clip_len={self.clip_len}, stride={self.stride})"
