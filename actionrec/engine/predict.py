"""Predicting the action of one video: sampling clips, scoring them, drawing the result.

Sampling (``num_clips``): with ``L = clip_len`` and ``s = frame_stride`` from the model's
preprocessing and ``n`` frames in the video,

* ``num_clips=0`` (auto): a video of at most ``2·L·s`` frames is scored as **one clip holding the
  whole video** (every ``s``-th frame; videos shorter than ``L`` frames are stretched to ``L`` by
  repeating frames); longer videos get ``min(10, ⌈n / (L·s)⌉)`` clips;
* ``num_clips=N``: N clips of L frames, start points spaced uniformly over the video.

Clip scores are averaged as softmax probabilities.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from actionrec.engine.metrics import softmax
from actionrec.errors import UsageError
from actionrec.meta import ModelMeta

log = logging.getLogger(__name__)

__all__ = ["VideoPrediction", "clip_indices", "predict_video", "load_for_inference", "MAX_GIF_FRAMES"]

MAX_GIF_FRAMES = 300


@dataclass
class VideoPrediction:
    video: str
    probs: np.ndarray  # (K,) mean softmax over clips
    topk: list[tuple[str, float]]
    num_clips: int
    clip_len: int

    def to_json(self) -> dict[str, Any]:
        return {"video": self.video, "predictions": [{"label": lab, "score": round(float(s), 6)} for lab, s in self.topk]}


def clip_indices(n: int, *, clip_len: int, stride: int = 1, num_clips: int = 0) -> list[list[int]]:
    """Frame indices of the clips to score (see the module docstring)."""
    if n <= 0:
        raise UsageError("the video has no frames")
    span = clip_len * stride
    if num_clips == 0:
        if n <= 2 * span:
            idx = list(range(0, n, stride))
            if len(idx) < clip_len:
                idx = np.linspace(0, n - 1, clip_len).round().astype(int).tolist()
            return [idx]
        num_clips = min(10, math.ceil(n / span))
    if n < span:
        base = np.linspace(0, n - 1, clip_len).round().astype(int).tolist()
        return [base] * num_clips
    starts = np.linspace(0, n - span, num_clips).round().astype(int) if num_clips > 1 else np.array([(n - span) // 2])
    return [list(range(int(s), int(s) + span, stride)) for s in starts]


def load_for_inference(source: Any, *, backend: str = "auto", optimize: bool | None = None, device: str = "cpu") -> tuple[Any, ModelMeta]:
    """``(predictor, meta)`` for a checkpoint / ONNX file / module, through the deploy area's ``load_predictor``."""
    from actionrec.deploy.predictor import load_predictor

    if isinstance(source, (str, Path)) and not Path(source).is_file():
        raise FileNotFoundError(f"checkpoint not found: {source}")
    source = str(source) if isinstance(source, Path) else source
    predictor = load_predictor(source, backend=backend, optimize=optimize, device=device)
    meta = getattr(predictor, "meta", None)
    if meta is None:
        raise UsageError(f"{source}: no model metadata (class names, preprocessing)")
    return predictor, meta


def predict_video(
    predictor: Any,
    meta: ModelMeta,
    video: str | Path,
    *,
    num_clips: int = 0,
    topk: int = 5,
    batch_size: int = 4,
) -> VideoPrediction:
    """Score ``video`` with ``predictor`` (``(N,C,T,H,W)`` → ``(N,K)`` logits)."""
    import torch

    from actionrec.data.transforms import build_transform
    from actionrec.data.video import open_video
    from actionrec.engine.evaluate import _forward

    if not Path(video).exists():
        raise FileNotFoundError(f"video not found: {video}")
    pre = meta.preprocess
    reader = open_video(video, modality=meta.modality)
    clips = clip_indices(len(reader), clip_len=pre.clip_len, stride=pre.frame_stride, num_clips=num_clips)
    transform = build_transform(pre, train=False, modality=meta.modality)
    probs = []
    for i in range(0, len(clips), batch_size):
        x = torch.stack([torch.as_tensor(transform(reader.get_frames(c))) for c in clips[i : i + batch_size]])
        probs.append(softmax(_forward(predictor, x)))
    p = np.concatenate(probs).mean(axis=0)
    order = np.argsort(-p, kind="stable")[: max(1, topk)]
    return VideoPrediction(str(video), p, [(meta.label(int(k)), float(p[k])) for k in order], len(clips), len(clips[0]))


def write_annotated(video: str | Path, result: VideoPrediction, out: str | Path, *, lines: int = 3) -> Path:
    """Write ``video`` with the top predictions drawn on every frame to ``out`` (.gif or .mp4)."""
    from actionrec.data.video import open_video
    from actionrec.engine.visualize import draw_label, write_video

    reader = open_video(video)
    n = len(reader)
    idx = list(range(n))
    if Path(out).suffix.lower() == ".gif" and n > MAX_GIF_FRAMES:
        log.warning("%s: writing only the first %d of %d frames to the GIF", out, MAX_GIF_FRAMES, n)
        idx = idx[:MAX_GIF_FRAMES]
    text = [f"{lab}: {100 * s:.1f}%" for lab, s in result.topk[:lines]]
    frames = [draw_label(f, text) for f in reader.get_frames(idx)]
    return write_video(frames, out, fps=float(getattr(reader, "fps", 12.0) or 12.0))
