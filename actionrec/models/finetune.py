"""Head and freeze surgery on a built model: a new classifier, trainable-parameter selection.

Each architecture says where its classifier is (``get_classifier`` / ``reset_classifier``);
nothing here guesses by module name.
"""

from __future__ import annotations

import copy

import torch.nn as nn

from actionrec.errors import UsageError


def get_classifier(model: nn.Module) -> nn.Module:
    """The model's classification layer (its ``get_classifier()``)."""
    if not callable(getattr(model, "get_classifier", None)):
        raise UsageError(f"{type(model).__name__} does not say where its classifier is (no get_classifier())")
    return model.get_classifier()


def replace_head(model: nn.Module, num_classes: int) -> nn.Module:
    """Give ``model`` a freshly initialised classifier with ``num_classes`` outputs (in place).

    ``model.meta`` (if any) is copied with the new class count and no class names.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise UsageError(f"num_classes must be a positive integer, got {num_classes!r}")
    get_classifier(model)
    model.reset_classifier(num_classes)
    if getattr(model, "meta", None) is not None:
        model.meta = copy.deepcopy(model.meta)
        model.meta.num_classes = num_classes
        model.meta.class_names = None
    return model


def freeze(model: nn.Module, trainable_prefixes: list[str]) -> list[str]:
    """Train only parameters whose names start with one of ``trainable_prefixes``.

    The standard I3D fine-tuning recipe is ``freeze(model, ["logits", "Mixed_5"])``.
    Returns the names of the parameters left trainable; an empty result is an error.
    """
    trainable = []
    for name, p in model.named_parameters():
        p.requires_grad_(any(name.startswith(pref) for pref in trainable_prefixes))
        if p.requires_grad:
            trainable.append(name)
    if not trainable:
        raise UsageError(f"no parameter name starts with any of {trainable_prefixes}")
    return trainable


def classifier_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The parameters of ``model``'s classifier (its ``get_classifier()``), in registration order."""
    return list(get_classifier(model).parameters())


def freeze_backbone(model: nn.Module) -> list[str]:
    """Linear probe: train only the classifier; every other parameter is frozen.

    Returns the names of the parameters left trainable (the classifier's). The backbone's
    BatchNorm statistics are frozen separately, per training pass: :func:`batchnorm_eval`.
    """
    head = {id(p) for p in classifier_parameters(model)}
    trainable = []
    for name, p in model.named_parameters():
        p.requires_grad_(id(p) in head)
        if p.requires_grad:
            trainable.append(name)
    if not trainable:
        raise UsageError(f"{type(model).__name__}: its classifier has no parameters to train")
    return trainable


def batchnorm_eval(model: nn.Module) -> int:
    """Put every BatchNorm layer of ``model`` in eval mode (running statistics used, not updated).

    Call after ``model.train()``, which sets them back; returns the number of layers.
    """
    n = 0
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.eval()
            n += 1
    return n
