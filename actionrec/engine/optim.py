"""Optimisers and learning-rate schedules (stateless: the lr is a function of the step)."""

from __future__ import annotations

import math

import torch

from actionrec.config import OptimConfig, ScheduleConfig
from actionrec.errors import UsageError

__all__ = ["build_optimizer", "LRSchedule"]


def build_optimizer(params: list[torch.nn.Parameter], cfg: OptimConfig) -> torch.optim.Optimizer:
    """SGD (momentum, nesterov), Adam or AdamW over ``params`` (only those requiring gradients)."""
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
        lr = self(step)
        for group in optimizer.param_groups:
            group["lr"] = lr
        return lr
