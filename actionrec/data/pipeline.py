"""The one clip pipeline: a model's preprocessing → sampling → decoding → transform → views.

:class:`ClipPipeline` is built from a :class:`~actionrec.meta.ModelMeta` (or its ``Preprocess``)
and used by the evaluation dataset, ``predict``, ``stream``, int8 calibration and the HTTP
server, so every one of them sees the same clips for the same video:

* indices: :mod:`actionrec.data.sampling` (``(L−1)·s+1`` frames per clip, one rule for short videos);
* frames: :func:`~actionrec.data.video.open_video` (a video that ends early is scored on the frames
  that decode, and ``VideoClips.truncated`` says so);
* tensors: :func:`~actionrec.data.transforms.build_transform` (eval: resize, centre or three crops,
  normalise).

``num_clips=None`` chooses the count from the length: ``min(10, max(1, ⌈n / span⌉))``.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from actionrec.data.sampling import clip_indices, clip_span, uniform_clips, window_starts
from actionrec.data.transforms import build_transform
from actionrec.data.video import VideoDecodeError, open_video
from actionrec.errors import UsageError
from actionrec.meta import LIMITS, OVERRIDABLE, ModelMeta, Preprocess

__all__ = ["ClipPipeline", "VideoClips", "MAX_CLIPS", "AUTO_MAX_CLIPS", "OVERRIDABLE"]

log = logging.getLogger(__name__)

MAX_CLIPS = LIMITS["clips"]  # upper bound for an explicit clip count
AUTO_MAX_CLIPS = 10  # num_clips=None: one clip per span of the video, at most this many


@dataclass
class VideoClips:
    """The views of one video, ready for a model.

    ``tensor``: float32 ``(V, C, T, H, W)`` with ``V = len(indices) × num_crops`` (clip-major:
    the crops of clip 0 first). ``indices[i]``: the frame indices of clip ``i``.
    """

    tensor: torch.Tensor
    indices: list[np.ndarray]
    n_frames: int
    fps: float
    path: str | None = None
    truncated: bool = False
    num_crops: int = 1
    extra: dict = field(default_factory=dict)

    @property
    def num_clips(self) -> int:
        return len(self.indices)

    @property
    def duration(self) -> float:
        """Seconds covered by the frames that decode (0.0 when the frame rate is unknown)."""
        return self.n_frames / self.fps if self.fps else 0.0


def _check_count(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise UsageError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


class ClipPipeline:
    """Sampling → decoding → transform for one model (see the module docstring).

    Args:
        preprocess: clip length, stride, resize, crop and normalisation.
        modality: ``"rgb"`` (video files, frame folders, arrays) or ``"flow"`` (flow frame folders).
        num_clips: clips per video (``None``: from the video's length, see the module docstring).
        num_crops: 1 (centre) or 3 (along the long side).
        decode_threads: decoder threads per video (FFmpeg).
    """

    def __init__(self, preprocess: Preprocess, *, modality: str = "rgb", num_clips: int | None = None,
                 num_crops: int = 1, decode_threads: int = 1) -> None:
        if num_clips is not None:
            num_clips = _check_count("num_clips", num_clips, 1, MAX_CLIPS)
        if num_crops not in (1, 3):
            raise UsageError(f"num_crops must be 1 or 3, got {num_crops!r}")
        self.preprocess = preprocess
        self.span = clip_span(preprocess.clip_len, preprocess.frame_stride)
        self.modality, self.num_clips, self.num_crops = modality, num_clips, num_crops
        self.decode_threads = _check_count("decode_threads", decode_threads, 1, 256)
        self._transform = build_transform(preprocess, train=False, modality=modality, num_crops=num_crops)

    @classmethod
    def from_meta(cls, meta: ModelMeta, *, num_clips: int | None = None, num_crops: int = 1, decode_threads: int = 1,
                  **overrides: int | None) -> ClipPipeline:
        """The pipeline for ``meta``; ``overrides`` (``clip_len``, ``frame_stride``, ``resize_short``, ``crop_size``) warn."""
        return cls(meta.preprocess.override(arch=meta.arch, **overrides), modality=meta.modality, num_clips=num_clips,
                   num_crops=num_crops, decode_threads=decode_threads)

    def __repr__(self) -> str:
        p = self.preprocess
        return (f"ClipPipeline(clip_len={p.clip_len}, stride={p.frame_stride}, resize_short={p.resize_short}, "
                f"crop={p.crop_size}, clips={self.num_clips or 'auto'}, crops={self.num_crops}, modality={self.modality!r})")

    # --- indices ---------------------------------------------------------------------------
    def clips_for(self, n_frames: int) -> int:
        """How many clips a video of ``n_frames`` gets."""
        if self.num_clips is not None:
            return self.num_clips
        return min(AUTO_MAX_CLIPS, max(1, math.ceil(n_frames / self.span)))

    def sample(self, n_frames: int) -> list[np.ndarray]:
        """Frame indices of the clips of a ``n_frames`` video (each ``(clip_len,)`` int64)."""
        p = self.preprocess
        return uniform_clips(n_frames, num_clips=self.clips_for(n_frames), clip_len=p.clip_len, stride=p.frame_stride)

    def window(self, start: int, n_frames: int) -> np.ndarray:
        """Indices of the sliding window starting at ``start`` (stream)."""
        return clip_indices(start, n_frames, clip_len=self.preprocess.clip_len, stride=self.preprocess.frame_stride)

    def windows(self, n_frames: int, *, step: int) -> list[np.ndarray]:
        """Every sliding window that fits, ``step`` frames apart (calibration)."""
        p = self.preprocess
        return [self.window(s, n_frames) for s in window_starts(n_frames, clip_len=p.clip_len, stride=p.frame_stride, step=step)]

    # --- tensors ---------------------------------------------------------------------------
    def transform(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 ``(T, H, W, C)`` → float32 ``(num_crops, C, T, H', W')``."""
        out = self._transform(frames)
        return out if self.num_crops > 1 else out.unsqueeze(0)

    def load(self, video: str | os.PathLike | np.ndarray, *, fps: float = 0.0) -> VideoClips:
        """Decode and transform the clips of ``video`` (a file, a frame folder or uint8 ``(T, H, W, C)`` frames).

        Raises ``FileNotFoundError`` / :class:`~actionrec.data.video.VideoDecodeError` naming the file.
        """
        return self._load(video, self.sample, fps=fps)

    def load_windows(self, video: str | os.PathLike | np.ndarray, *, step: int, max_clips: int | None = None,
                     fps: float = 0.0) -> VideoClips:
        """Like :meth:`load`, with the sliding windows (``step`` apart; the first ``max_clips``) instead of the sampled clips."""
        return self._load(video, lambda n: self.windows(n, step=step)[:max_clips], fps=fps)

    def _load(self, video, sampler, *, fps: float) -> VideoClips:  # noqa: ANN001
        if isinstance(video, np.ndarray):
            if video.ndim != 4 or video.dtype != np.uint8 or len(video) < 1:
                raise UsageError(f"expected uint8 frames (T, H, W, C) with T ≥ 1, got {video.dtype} {video.shape}")
            clips = sampler(len(video))
            return self._clips([self.transform(video[c]) for c in clips], clips, len(video), fps, None, False)
        path = Path(video)
        if not path.exists():
            raise FileNotFoundError(f"video not found: {path}")
        with open_video(path, modality=self.modality, threads=self.decode_threads) as reader:
            n = len(reader)
            if n < 1:
                raise VideoDecodeError(path, "no frames")
            truncated = False
            try:
                clips = sampler(n)
                views = [self.transform(reader.get_frames(c)) for c in clips]  # one clip's frames at a time
            except IndexError:  # fewer frames decode than the container says: score those
                truncated, n = True, len(reader)
            except VideoDecodeError as e:  # the decoder fails part-way: score what decodes before it
                truncated, n = True, _decodable_frames(reader)
                if n < 1:
                    raise
                log.warning("%s: %s; scoring the %d frames that decode", path, e, n)
            if truncated:
                clips = sampler(n)
                views = [self.transform(reader.get_frames(c)) for c in clips]
            return self._clips(views, clips, n, float(getattr(reader, "fps", 0.0) or 0.0), str(path), truncated)

    def _clips(self, views: list[torch.Tensor], clips: list[np.ndarray], n: int, fps: float, path: str | None,
               truncated: bool) -> VideoClips:
        if not clips:
            tensor = torch.empty((0, 2 if self.modality == "flow" else 3, self.preprocess.clip_len,
                                  self.preprocess.crop_size, self.preprocess.crop_size))
        else:
            tensor = torch.cat(views)
        return VideoClips(tensor, clips, n, fps, path, truncated, self.num_crops)


def _decodable_frames(reader) -> int:  # noqa: ANN001
    """Count the frames that decode in order before the first error."""
    n = 0
    try:
        for _ in reader.iter_frames():
            n += 1
    except VideoDecodeError:
        pass
    return n
