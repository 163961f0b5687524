"""Real clips for int8 calibration and agreement checks: decode, resize, centre-crop, normalise.

A small, self-contained reader (PyAV for videos, Pillow for GIFs) so that deployment does not
depend on the training data pipeline. It follows :class:`~actionrec.meta.Preprocess`:
short side → ``resize_short``, centre crop ``crop_size``, [0, 1], ``(x - mean) / std``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch

from actionrec.meta import ModelMeta

__all__ = ["read_frames", "preprocess_frames", "clip_windows", "collect_clips", "VIDEO_SUFFIXES"]

log = logging.getLogger(__name__)

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".gif", ".m4v")


def read_frames(path: str | os.PathLike, *, max_frames: int | None = None) -> np.ndarray:
    """Decode a video or GIF to ``(T, H, W, 3)`` uint8 RGB."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such video file")
    frames: list[np.ndarray] = []
    try:
        if path.suffix.lower() == ".gif":
            from PIL import Image, ImageSequence

            with Image.open(path) as im:
                for fr in ImageSequence.Iterator(im):
                    frames.append(np.asarray(fr.convert("RGB")))
                    if max_frames and len(frames) >= max_frames:
                        break
        else:
            import av

            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                for fr in container.decode(stream):
                    frames.append(fr.to_ndarray(format="rgb24"))
                    if max_frames and len(frames) >= max_frames:
                        break
    except (OSError, ValueError) as e:
        raise ValueError(f"{path}: cannot decode video ({e})") from e
    if not frames:
        raise ValueError(f"{path}: no video frames decoded")
    return np.stack(frames)


def preprocess_frames(frames: np.ndarray, meta: ModelMeta) -> torch.Tensor:
    """``(T, H, W, 3)`` uint8 → ``(3, T, S, S)`` float32 normalised (S = ``crop_size``).

    Frames already ``S×S`` are used as they are (e.g. DeepMind's 224×224 sample clips).
    """
    import cv2

    p = meta.preprocess
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"expected (T, H, W, 3) frames, got shape {frames.shape}")
    t, h, w, _ = frames.shape
    s = p.crop_size
    if (h, w) != (s, s):
        scale = p.resize_short / min(h, w)
        nh, nw = max(s, round(h * scale)), max(s, round(w * scale))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        frames = np.stack([cv2.resize(f, (nw, nh), interpolation=interp) for f in frames])
        y0, x0 = (nh - s) // 2, (nw - s) // 2
        frames = frames[:, y0 : y0 + s, x0 : x0 + s]
    x = torch.from_numpy(np.ascontiguousarray(frames)).float().div_(255.0)  # T, S, S, 3
    mean = torch.tensor(p.mean, dtype=torch.float32)
    std = torch.tensor(p.std, dtype=torch.float32)
    x = (x - mean) / std
    return x.permute(3, 0, 1, 2).contiguous()


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
        raise ValueError(f"{meta.arch}: real-clip calibration reads RGB videos; {meta.modality} models need precomputed inputs")
    files: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            files += sorted(f for f in p.rglob("*") if f.suffix.lower() in VIDEO_SUFFIXES)
        else:
            files.append(p)
    if not files:
        raise ValueError("no videos given for calibration")
    clips: list[torch.Tensor] = []
    max_frames = None
    for f in files:
        video = preprocess_frames(read_frames(f, max_frames=max_frames), meta)
        for c in clip_windows(video, meta, step=step):
            clips.append(c)
            if max_clips and len(clips) >= max_clips:
                return torch.stack(clips)
    if not clips:
        raise ValueError(f"no {meta.preprocess.clip_len}-frame windows in {', '.join(map(str, files))}")
    return torch.stack(clips)
