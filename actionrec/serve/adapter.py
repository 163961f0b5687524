"""The serving side's one contact with the inference pipeline (:class:`actionrec.Predictor`).

The server schedules the predictor's three steps itself: ``pipeline.load`` in its decode pool,
``forward`` in the batcher's one inference thread (clips of several requests in one call),
``postprocess`` back on the request. The annotated video is :func:`~actionrec.engine.visualize.annotate_video`,
the drawing of ``predict --out``. Long-video jobs use :mod:`actionrec.inference.segments` (windows,
segments) with the model's forward pass replaced by the batcher's. No other module of
:mod:`actionrec.serve` imports inference code, so the server cannot grow a second clip pipeline.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict
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

    # --- long videos (jobs) -----------------------------------------------------------------
    @property
    def class_names(self) -> list[str]:
        return [self.meta.label(i) for i in range(self.meta.num_classes)]

    @property
    def fingerprint(self) -> str:
        """Identifies what scores windows (model, classes, clip): persisted windows are only resumed under the same."""
        pre = self.predictor.pipeline.preprocess
        text = "|".join([self.source, self.meta.arch, *self.class_names,
                         *(str(getattr(pre, k)) for k in ("clip_len", "frame_stride", "resize_short", "crop_size"))])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def segment_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """``SegmentParams`` fields checked (``UsageError`` naming a bad one), as a JSON-ready dict."""
        from actionrec.inference.segments import SegmentParams

        return asdict(SegmentParams(**values))

    def iter_windows(self, path: str | os.PathLike, params: dict[str, Any], *, name: str, start_window: int,
                     forward: Callable[[torch.Tensor], torch.Tensor], batch_size: int | None, state: dict[str, Any]) -> Iterator[Any]:
        """Scored windows (``index, start_s, end_s, scores``) of ``path`` from ``start_window`` on, each forward
        pass through ``forward`` (the batcher); ``state`` receives ``plan`` and ``truncated``. :class:`BadVideo` if unreadable."""
        from actionrec.errors import UsageError
        from actionrec.inference.segments import SegmentParams, iter_windows

        proxy = _ForwardThrough(self.predictor, forward)
        try:
            yield from iter_windows(proxy, path, SegmentParams(**params), start_window=start_window,  # type: ignore[arg-type]
                                    batch_size=batch_size, state=state)
        except (*VIDEO_ERRORS, UsageError) as e:
            reason = getattr(e, "reason", None) or (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise BadVideo(str(reason).replace(str(path), name)) from e

    @staticmethod
    def plan_summary(state: dict[str, Any]) -> dict[str, Any]:
        """What a job records of the :func:`~actionrec.inference.segments.iter_windows` plan."""
        plan = state["plan"]
        return {"windows": len(plan), "duration": plan.duration_s, "fps": plan.fps, "params": asdict(plan.params)}

    def segment_result(self, name: str, windows: list[tuple[int, float, float, list[float]]], plan: dict[str, Any], *,
                       truncated: bool, topk: int) -> dict[str, Any]:
        """The ``SegmentResult.to_dict`` of a job from its persisted windows and plan summary."""
        from actionrec.inference.segments import SegmentParams, SegmentResult, Window, segments_from_windows

        params = SegmentParams(**plan["params"])
        wins = [Window(i, a, b, scores) for i, a, b, scores in windows]
        names = self.class_names
        return SegmentResult(video=name, duration_s=plan["duration"], fps=plan["fps"], class_names=names, windows=wins,
                             segments=segments_from_windows(wins, names, params), params=params,
                             truncated=truncated).to_dict(windows=True, topk=topk)

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


class _ForwardThrough:
    """The predictor as :func:`~actionrec.inference.segments.iter_windows` sees it, ``forward`` replaced."""

    def __init__(self, predictor: Predictor, forward: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self._predictor = predictor
        self.forward = forward

    def __getattr__(self, name: str) -> Any:
        return getattr(self._predictor, name)
