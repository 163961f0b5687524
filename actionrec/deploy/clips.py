"""Real clips for int8 calibration and agreement checks.

Every sliding window of ``clip_len`` frames (``frame_stride`` apart, ``step`` frames between
starts) of each video, made by the one clip pipeline (:class:`~actionrec.data.pipeline.ClipPipeline`):
the same indices, decoding and transform as ``predict``, ``stream`` and ``eval``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path

import torch

from actionrec.data.pipeline import ClipPipeline
from actionrec.data.video import VIDEO_EXTENSIONS
from actionrec.errors import UsageError
from actionrec.meta import ModelMeta

__all__ = ["collect_clips", "VIDEO_SUFFIXES"]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (*VIDEO_EXTENSIONS, ".gif")


def collect_clips(
    paths: Iterable[str | os.PathLike], meta: ModelMeta, *, step: int | None = None, max_clips: int | None = None
) -> torch.Tensor:
    """All windows of all videos (``paths`` may contain directories) as one ``(N, C, T, S, S)`` tensor.

    ``step`` defaults to ``clip_len`` (windows side by side); videos shorter than one window are skipped.
    """
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
    pipeline = ClipPipeline.from_meta(meta)
    step = step or meta.preprocess.clip_len
    clips: list[torch.Tensor] = []
    for f in files:
        video = pipeline.load_windows(f, step=step, max_clips=max_clips - len(clips) if max_clips else None)
        if not video.num_clips:
            log.debug("%s: %d frames, shorter than one %d-frame window; skipped", f, video.n_frames, pipeline.span)
        clips += list(video.tensor)
        if max_clips and len(clips) >= max_clips:
            return torch.stack(clips[:max_clips])
    if not clips:
        raise UsageError(f"no {meta.preprocess.clip_len}-frame windows in {', '.join(map(str, files))}")
    return torch.stack(clips)
