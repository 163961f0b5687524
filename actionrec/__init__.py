"""actionrec: video action recognition with 3D CNNs, from raw videos to a deployed model."""

from actionrec.checkpoint import save_model
from actionrec.factory import create_model, load_model
from actionrec.inference import ClipPipeline, Prediction, Predictor, VideoClips
from actionrec.meta import ModelMeta, Preprocess
from actionrec.models import list_models, list_pretrained

__version__ = "0.1.0"
__all__ = [
    "Predictor",
    "Prediction",
    "ClipPipeline",
    "VideoClips",
    "create_model",
    "list_models",
    "list_pretrained",
    "load_model",
    "save_model",
    "ModelMeta",
    "Preprocess",
    "__version__",
]
