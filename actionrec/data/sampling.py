"""Which frames make a clip: one random clip for training, uniformly spaced clips for evaluation.

A clip is ``clip_len`` frame indices ``stride`` apart, spanning ``(clip_len - 1) * stride + 1``
frames. Videos shorter than that are **looped** by default (indices wrap around, as mmaction2's
``SampleFrames(out_of_bound_opt="loop")``); ``short="pad"`` repeats the last frame instead.
"""

from __future__ import annotations

import numpy as np

from actionrec.errors import UsageError

SHORT_MODES = ("loop", "pad")


def _check(clip_len: int, stride: int, short: str) -> None:
    if clip_len < 1 or stride < 1:
        raise UsageError(f"clip_len and stride must be ≥ 1, got clip_len={clip_len}, stride={stride}")
    if short not in SHORT_MODES:
        raise UsageError(f"short must be 'loop' or 'pad', got {short!r}")


def clip_indices(start: int, n_frames: int, *, clip_len: int, stride: int, short: str = "loop") -> np.ndarray:
    """``clip_len`` indices from ``start``, ``stride`` apart, kept inside ``[0, n_frames)``."""
    if n_frames < 1:
        raise UsageError(f"cannot sample a clip from a video with {n_frames} frames")
    idx = start + stride * np.arange(clip_len, dtype=np.int64)
    if short == "loop":
        return idx % n_frames
    return np.minimum(idx, n_frames - 1)


class RandomClipSampler:
    """Training: one clip at a uniformly random start. ``__call__(n_frames, rng) -> [indices (clip_len,)]``."""

    def __init__(self, clip_len: int, stride: int = 1, *, short: str = "loop") -> None:
        _check(clip_len, stride, short)
        self.clip_len, self.stride, self.short = clip_len, stride, short

    @property
    def span(self) -> int:
        return (self.clip_len - 1) * self.stride + 1

    def __call__(self, n_frames: int, rng: np.random.Generator) -> list[np.ndarray]:
        start = int(rng.integers(0, n_frames - self.span + 1)) if n_frames >= self.span else 0
        return [clip_indices(start, n_frames, clip_len=self.clip_len, stride=self.stride, short=self.short)]

    def __repr__(self) -> str:
        return f"RandomClipSampler(clip_len={self.clip_len}, stride={self.stride}, short={self.short!r})"


class UniformClipSampler:
    """Evaluation: ``num_clips`` clips with evenly spaced starts (one clip: the centre). Deterministic."""

    def __init__(self, num_clips: int, clip_len: int, stride: int = 1, *, short: str = "loop") -> None:
        _check(clip_len, stride, short)
        if num_clips < 1:
            raise UsageError(f"num_clips must be ≥ 1, got {num_clips}")
        self.num_clips, self.clip_len, self.stride, self.short = num_clips, clip_len, stride, short

    @property
    def span(self) -> int:
        return (self.clip_len - 1) * self.stride + 1

    def __call__(self, n_frames: int, rng: np.random.Generator | None = None) -> list[np.ndarray]:
        free = max(n_frames - self.span, 0)
        # centre of each of num_clips equal segments of the free range
        starts = [int(free * (i + 0.5) / self.num_clips) for i in range(self.num_clips)]
        return [clip_indices(s, n_frames, clip_len=self.clip_len, stride=self.stride, short=self.short) for s in starts]

    def __repr__(self) -> str:
        return f"UniformClipSampler(num_clips={self.num_clips}, clip_len={self.clip_len}, stride={self.stride}, short={self.short!r})"
