"""Inference: :class:`Predictor` (a resolved MODEL + a backend + the clip pipeline).

Dependencies point one way: ``engine`` (CLI front ends) and ``serve`` → ``inference`` → ``deploy``
(the MODEL resolver and the backends) and ``data`` (the clip pipeline); threads and devices come
from :mod:`actionrec.runtime`.
"""

from actionrec.data.pipeline import ClipPipeline, VideoClips
from actionrec.inference.predictor import ModelOutputError, Prediction, Predictor
from actionrec.inference.segments import Segment, SegmentParams, SegmentResult, Window, iter_windows, segment_video

__all__ = ["Predictor", "Prediction", "ClipPipeline", "VideoClips", "ModelOutputError", "SegmentParams", "SegmentResult",
           "Segment", "Window", "iter_windows", "segment_video"]
