"""The serving side's one contact with the inference pipeline.

Everything the server needs from a model goes through :class:`ModelAdapter`: loading the clips of a
video (decode + sampling + transform, the pipeline ``predict`` uses), the backend's forward pass,
turning logits into the ``predict --json`` answer, and drawing the answer on the video. No other
module of :mod:`actionrec.serve` imports the inference code, so the server cannot grow a second
clip pipeline.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from actionrec.meta import ModelMeta

__all__ = ["ModelAdapter", "LoadedClips"]

log = logging.getLogger(__name__)


@dataclass
class LoadedClips:
    """The clips of one video as the model sees them: ``tensor`` is ``(V, C, T, H, W)`` float32."""

    tensor: torch.Tensor
    n_frames: int
    fps: float
    duration: float
    source: Any = field(repr=False, default=None)  # the pipeline's own object, handed back to postprocess


class ModelAdapter:
    """A loaded model behind the serving API.

    Args:
        model: checkpoint path, ``.onnx`` path or known pretrained name (as for ``actionrec predict``).
        backend: ``auto``, ``torch`` or ``onnxruntime``.
        threads: intra-op threads of the backend (``None``: the library default).
        optimize: as ``load_predictor``'s ``optimize`` (``None``: the default fast path).
    """

    def __init__(self, model: str | os.PathLike, *, backend: str = "auto", threads: int | None = None,
                 optimize: bool | None = None) -> None:
        from actionrec.deploy.predictor import load_predictor

        self.source = str(model)
        self.predictor = load_predictor(_resolve(model), backend=backend, optimize=optimize, num_threads=threads)
        self.meta: ModelMeta = self.predictor.meta
        self.backend: str = self.predictor.backend

    # --- the pieces the server schedules separately -------------------------------------------
    def load(self, path: str | os.PathLike, *, num_clips: int = 0) -> LoadedClips:
        """Decode ``path`` and prepare its clips: ``(V, C, T, H, W)``. Raises ``VideoDecodeError``."""
        from actionrec.data.transforms import build_transform
        from actionrec.data.video import open_video
        from actionrec.engine.predict import clip_indices

        meta = self.meta
        reader = open_video(path, modality=meta.modality)
        n = len(reader)
        indices = clip_indices(n, clip_len=meta.preprocess.clip_len, stride=meta.preprocess.frame_stride, num_clips=num_clips)
        transform = build_transform(meta.preprocess, train=False, modality=meta.modality)
        x = torch.stack([torch.as_tensor(transform(reader.get_frames(c))) for c in indices])
        fps = float(getattr(reader, "fps", 0.0) or 0.0)
        return LoadedClips(tensor=x, n_frames=n, fps=fps, duration=n / fps if fps else 0.0, source=indices)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Logits ``(N, K)`` for clips ``(N, C, T, H, W)``; called from one worker thread only."""
        with torch.inference_mode():
            return self.predictor(batch)

    def postprocess(self, logits: torch.Tensor, clips: LoadedClips, *, topk: int, video: str) -> dict[str, Any]:
        """The ``predict --json`` answer for one video from its clips' logits ``(V, K)``."""
        from actionrec.engine.metrics import softmax

        p = softmax(logits.float().numpy()).mean(axis=0)
        if not np.all(np.isfinite(p)):
            raise FloatingPointError(f"{self.meta.arch}: non-finite scores for {video}")
        order = np.argsort(-p, kind="stable")[:topk]
        return {
            "video": video,
            "predictions": [{"label": self.meta.label(int(k)), "score": round(float(p[k]), 6)} for k in order],
            "clips": int(clips.tensor.shape[0]),
            "frames": clips.n_frames,
            "duration": round(clips.duration, 3),
        }

    def annotate(self, src: str | os.PathLike, dst: str | os.PathLike, result: dict[str, Any]) -> Path:
        """Write ``src`` with the top predictions drawn on every frame to ``dst`` (``.mp4``)."""
        from actionrec.engine.predict import VideoPrediction, write_annotated

        topk = [(p["label"], p["score"]) for p in result["predictions"]]
        vp = VideoPrediction(str(src), np.zeros(0), topk, result["clips"], self.meta.preprocess.clip_len)
        return write_annotated(src, vp, dst)

    # --- description ------------------------------------------------------------------------
    def warm_up(self) -> float:
        """Run one clip of the model's input shape through the backend; returns the seconds it took."""
        t = time.perf_counter()
        self.forward(torch.zeros(self.meta.input_shape(1)))
        return time.perf_counter() - t

    def describe(self) -> dict[str, Any]:
        """``GET /v1/model``: architecture, classes, preprocessing, backend."""
        m = self.meta.to_dict()
        return {
            "model": Path(self.source).name,
            "arch": m.get("arch"),
            "num_classes": self.meta.num_classes,
            "modality": self.meta.modality,
            "classes": list(self.meta.class_names or []),
            "preprocess": m.get("preprocess"),
            "input_shape": list(self.meta.input_shape(1))[1:],
            "backend": self.backend,
        }


def _resolve(model: str | os.PathLike) -> str:
    """A known pretrained name (``i3d_kinetics400``) → its cached checkpoint; anything else unchanged."""
    s = str(model)
    if not Path(s).exists() and "_" in s and not Path(s).suffix:
        from actionrec.hub import pretrained_path

        arch, _, weights = s.partition("_")
        try:
            return str(pretrained_path(arch, weights))
        except Exception as e:  # noqa: BLE001 - a file name that is not a pretrained name keeps its own error
            log.debug("%s is not a known pretrained name: %s", s, e)
    return s
