"""Inference: :class:`Predictor` (model + clip pipeline + backend) and thread settings.

Dependencies point one way: ``engine`` (CLI front ends) → ``inference`` → ``deploy`` (backends)
and ``data`` (the clip pipeline).
"""

from actionrec.data.pipeline import ClipPipeline, VideoClips
from actionrec.inference.predictor import ModelOutputError, Prediction, Predictor
from actionrec.inference.threads import available_cores, set_threads

__all__ = ["Predictor", "Prediction", "ClipPipeline", "VideoClips", "ModelOutputError", "available_cores", "set_threads"]
