"""Models: video ResNets (R3D, MC3, R(2+1)D) and I3D, behind one ``create_model`` entry."""

from actionrec.models import i3d, video_resnet  # noqa: F401  (registers the builders)
from actionrec.models.registry import create_model, get_builder, list_models, register_model

__all__ = ["create_model", "list_models", "register_model", "get_builder"]
