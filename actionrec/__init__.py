"""actionrec: video action recognition with 3D CNNs, from raw videos to a deployed model."""

from actionrec.checkpoint import load_model, save_model
from actionrec.inference import ClipPipeline, Prediction, Predictor, VideoClips
from actionrec.meta import ModelMeta, Preprocess
from actionrec.models import create_model, list_models

__version__ = "0.1.0"
__all__ = ["Predictor", "Prediction", "ClipPipeline", "VideoClips", "create_model", "list_models", "load_model", "save_model", "ModelMeta", "Preprocess", "__version__"]
