"""The serving side's one contact with the inference pipeline (:class:`actionrec.Predictor`).

The server schedules the predictor's three steps itself: ``pipeline.load`` in its decode pool,
``forward`` in the batcher's one inference thread (clips of several requests in one call),
``postprocess`` back on the request. The annotated video is :func:`~actionrec.engine.visualize.annotate_video`,
the drawing of ``predict --out``. No other module of :mod:`actionrec.serve` imports inference code,
so the server cannot grow a second clip pipeline.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

import torch

from actionrec.data.pipeline import ClipPipeline, VideoClips
from actionrec.inference import Predictor
from actionrec.inference.predictor import VIDEO_ERRORS

__all__ = ["ModelAdapter", "BadVideo", "VideoClips"]

log = logging.getLogger(__name__)


class BadVideo(Exception):
    """The pipeline could not read an upload; ``reason`` is safe to show (no server paths)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ModelAdapter:
    """A loaded :class:`~actionrec.Predictor` behind the serving API.

    Args:
        model: a MODEL, as for ``actionrec predict`` (checkpoint, ``.onnx``, ``.pt2``, weight-set name).
        options: the :class:`~actionrec.Predictor`'s (``backend``, ``runtime`` or ``device``/``threads``,
            ``optimize``, ``calib``).
    """

    def __init__(self, model: str | os.PathLike, **options: Any) -> None:
        self.source = str(model)
        self.predictor = Predictor(model, **options)
        self.meta = self.predictor.meta
        self.backend: str = self.predictor.backend.backend
        self._pipelines: dict[int, ClipPipeline] = {0: self.predictor.pipeline}  # clips per video (0: automatic)

    def load(self, path: str | os.PathLike, *, num_clips: int = 0, name: str) -> VideoClips:
        """Decode ``path`` into its clips ``(V, C, T, H, W)``; :class:`BadVideo` (reason shown as ``name``) if it cannot."""
        pipeline = self._pipelines.get(num_clips)
        if pipeline is None:
            base = self.predictor.pipeline
            pipeline = self._pipelines[num_clips] = ClipPipeline(base.preprocess, modality=base.modality, num_clips=num_clips,
                                                                 num_crops=base.num_crops)
        try:
            return pipeline.load(path)
        except VIDEO_ERRORS as e:
            reason = getattr(e, "reason", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BadVideo(str(reason).replace(str(path), name)) from e

    def check_topk(self, topk: int) -> int:
        """``topk`` capped at the number of classes; ``UsageError`` outside 1–10,000."""
        return self.predictor.check_topk(topk)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` for clips ``(N, C, T, H, W)`` (the batcher's worker thread calls it)."""
        return self.predictor.forward(batch)

    def postprocess(self, logits: torch.Tensor, clips: VideoClips, *, topk: int, name: str) -> dict[str, Any]:
        """The ``predict --json`` object for one upload (``name``: the client's file name) from its logits ``(V, K)``."""
        clips.path = name
        return self.predictor.postprocess(logits, clips, topk=topk).to_dict()

    def annotate(self, src: str | os.PathLike, dst: str | os.PathLike, result: dict[str, Any]) -> Path:
        """Write ``src`` with the answer ``result`` drawn on every frame to ``dst`` (``.mp4``)."""
        from actionrec.engine.visualize import annotate_video

        try:
            return annotate_video(src, dst, [(p["label"], p["score"]) for p in result["predictions"]])
        except VIDEO_ERRORS as e:
            raise BadVideo(str(getattr(e, "reason", e)).replace(str(src), Path(src).name)) from e

    def warm_up(self) -> float:
        """One clip of the model's input shape through the backend; returns the seconds it took."""
        t = time.perf_counter()
        pre = self.predictor.pipeline.preprocess
        self.forward(torch.zeros(1, self.meta.in_channels, pre.clip_len, pre.crop_size, pre.crop_size))
        return time.perf_counter() - t

    def describe(self) -> dict[str, Any]:
        """``GET /v1/model``: architecture, classes, preprocessing, backend."""
        pre = self.predictor.pipeline.preprocess
        return {
            "model": Path(self.source).name,
            "arch": self.meta.arch,
            "num_classes": self.meta.num_classes,
            "modality": self.meta.modality,
            "classes": [self.meta.label(i) for i in range(self.meta.num_classes)],
            "preprocess": self.meta.to_dict()["preprocess"] | {k: getattr(pre, k) for k in ("clip_len", "frame_stride", "resize_short", "crop_size")},
            "input_shape": [self.meta.in_channels, pre.clip_len, pre.crop_size, pre.crop_size],
            "backend": self.backend,
            "threads": self.predictor.threads,
        }
