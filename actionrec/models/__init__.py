"""Architectures: video ResNets (R3D, MC3, R(2+1)D, mmaction2's R(2+1)D) and I3D, with their registries.

Building a model *with weights* is :func:`actionrec.create_model` / :func:`actionrec.load_model`
(:mod:`actionrec.factory`), which sit above the converters and :mod:`actionrec.hub`.
"""

from actionrec.models import i3d, video_resnet  # noqa: F401  (registers the builders and weights)
from actionrec.models.registry import (
    PretrainedCfg,
    build_model,
    get_builder,
    get_pretrained,
    list_models,
    list_pretrained,
    register_model,
    register_pretrained,
)

__all__ = [
    "build_model",
    "list_models",
    "register_model",
    "get_builder",
    "PretrainedCfg",
    "register_pretrained",
    "list_pretrained",
    "get_pretrained",
]
