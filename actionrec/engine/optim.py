"""Optimisers and learning-rate schedules (stateless: the lr is a function of the step)."""

from __future__ import annotations

import math
from typing import Any

import torch

from actionrec.config import OptimConfig, ScheduleConfig
from actionrec.errors import UsageError

__all__ = ["build_optimizer", "param_groups", "LRSchedule"]

ParamsOrGroups = list[torch.nn.Parameter] | list[dict[str, Any]]


def param_groups(model: torch.nn.Module, backbone_lr_mult: float = 1.0) -> ParamsOrGroups:
    """The trainable parameters of ``model``, for :func:`build_optimizer`.

    With ``backbone_lr_mult`` 1 a plain list (one group, as before such groups existed, so older
    training states resume). Otherwise two groups, ``backbone`` (``lr_mult`` = ``backbone_lr_mult``)
    then ``classifier`` (``lr_mult`` 1), an empty one left out; :meth:`LRSchedule.apply` sets each
    group's lr to the schedule's times its ``lr_mult``.
    """
    from actionrec.models.finetune import classifier_parameters

    params = [p for p in model.parameters() if p.requires_grad]
    if backbone_lr_mult == 1.0:
        return params
    head = {id(p) for p in classifier_parameters(model)}
    groups = [
        {"name": "backbone", "lr_mult": backbone_lr_mult, "params": [p for p in params if id(p) not in head]},
        {"name": "classifier", "lr_mult": 1.0, "params": [p for p in params if id(p) in head]},
    ]
    return [g for g in groups if g["params"]]


def build_optimizer(params: ParamsOrGroups, cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum, nesterov), Adam or AdamW over ``params`` (only those requiring gradients),
    or over parameter groups (dicts, as :func:`param_groups` makes; each starts at ``cfg.lr × lr_mult``)."""
    if params and isinstance(params[0], dict):
        groups = [{**g, "params": [p for p in g["params"] if p.requires_grad]} for g in params]
        params = [{**g, "lr": cfg.lr * g.get("lr_mult", 1.0)} for g in groups if g["params"]]
    else:
        params = [p for p in params if p.requires_grad]
    if not params:
        raise UsageError("no trainable parameters (check model.trainable)")
    if cfg.name == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov, weight_decay=cfg.weight_decay)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay)
    raise UsageError(f"optimizer.name: unknown optimiser {cfg.name!r}")


class LRSchedule:
    """Learning rate at optimiser step ``s`` (steps counted from 0 across epochs).

    The main schedule (cosine to ``min_lr`` over the epochs after warmup, ``step`` every
    ``step_size`` epochs, ``multistep`` at ``milestones``, or ``constant``) is multiplied during the
    first ``warmup_epochs`` by a factor rising linearly from ``warmup_factor`` to 1. Cosine and
    warmup change every step; step/multistep at epoch boundaries.
    """

    def __init__(self, base_lr: float, cfg: ScheduleConfig, *, epochs: int, steps_per_epoch: int) -> None:
        self.base_lr, self.cfg, self.epochs = base_lr, cfg, epochs
        self.steps_per_epoch = max(1, steps_per_epoch)

    def epoch_lr(self, e: float) -> float:
        c, base = self.cfg, self.base_lr
        if c.name == "cosine":
            span = max(self.epochs - c.warmup_epochs, 1e-9)
            p = min(max((e - c.warmup_epochs) / span, 0.0), 1.0)
            lr = c.min_lr + (base - c.min_lr) * 0.5 * (1.0 + math.cos(math.pi * p))
        elif c.name == "step":
            lr = base * c.gamma ** (int(e) // max(c.step_size, 1))
        elif c.name == "multistep":
            lr = base * c.gamma ** sum(1 for m in c.milestones if int(e) >= m)
        else:
            lr = base
        if c.warmup_epochs > 0 and e < c.warmup_epochs:
            lr *= c.warmup_factor + (1.0 - c.warmup_factor) * e / c.warmup_epochs
        return lr

    def __call__(self, step: int) -> float:
        return self.epoch_lr(step / self.steps_per_epoch)

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's lr to the lr of ``step`` times the group's ``lr_mult`` (default 1); return the former."""
        lr = self(step)
        for group in optimizer.param_groups:
            group["lr"] = lr * group.get("lr_mult", 1.0)
        return lr
