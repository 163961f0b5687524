"""Real clips for int8 calibration and agreement checks.

Videos are decoded with :func:`~actionrec.data.video.open_video` and prepared with the evaluation
transform (:func:`~actionrec.data.transforms.build_transform`, ``train=False``), i.e. exactly as
``predict`` and ``eval`` prepare them: short side → ``resize_short``, centre crop ``crop_size``,
``(x/255 - mean) / std``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import torch

from actionrec.data.transforms import build_transform
from actionrec.data.video import VIDEO_EXTENSIONS, open_video
from actionrec.errors import UsageError
from actionrec.meta import ModelMeta

__all__ = ["load_video", "clip_windows", "collect_clips", "VIDEO_SUFFIXES"]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (*VIDEO_EXTENSIONS, ".gif")


def load_video(path: str | os.PathLike, meta: ModelMeta, *, max_frames: int | None = None) -> torch.Tensor:
    """The first ``max_frames`` (default: all) frames of a video as the model sees them: ``(3, T, S, S)`` float32."""
    reader = open_video(path)
    n = len(reader) if max_frames is None else min(len(reader), max_frames)
    return build_transform(meta.preprocess, train=False)(reader.get_frames(range(n)))


def clip_windows(video: torch.Tensor, meta: ModelMeta, *, step: int | None = None) -> Iterator[torch.Tensor]:
    """Every window of ``clip_len`` frames (``frame_stride`` apart), ``step`` frames apart, from ``(C, T, S, S)``."""
    p = meta.preprocess
    span = (p.clip_len - 1) * p.frame_stride + 1
    step = step or p.clip_len
    total = video.shape[1]
    if total < span:
        log.debug("video of %d frames shorter than one %d-frame window; skipped", total, span)
        return
    for start in range(0, total - span + 1, step):
        yield video[:, start : start + span : p.frame_stride]


def collect_clips(
    paths: Iterable[str | os.PathLike], meta: ModelMeta, *, step: int | None = None, max_clips: int | None = None
) -> torch.Tensor:
    """All windows of all videos (``paths`` may contain directories) as one ``(N, 3, T, S, S)`` tensor."""
    if meta.modality != "rgb":
        raise UsageError(f"{meta.arch}: real-clip calibration reads RGB videos; {meta.modality} models need precomputed inputs")
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES)
        else:
            files.append(p)
    if not files:
        raise UsageError("no videos given for calibration")
    clips: list[torch.Tensor] = []
    pre = meta.preprocess
    span, step = (pre.clip_len - 1) * pre.frame_stride + 1, step or pre.clip_len
    for f in files:
        # with max_clips, decode only the frames the remaining windows need
        max_frames = (max_clips - len(clips) - 1) * step + span if max_clips else None
        video = load_video(f, meta, max_frames=max_frames)
        for c in clip_windows(video, meta, step=step):
            clips.append(c)
            if max_clips and len(clips) >= max_clips:
                return torch.stack(clips)
    if not clips:
        raise UsageError(f"no {meta.preprocess.clip_len}-frame windows in {', '.join(map(str, files))}")
    return torch.stack(clips)
