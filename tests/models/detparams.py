"""Reproducible, RNG-free parameters and inputs, shared by these tests and the script that recorded
torchvision's outputs (tests/data/reference/*.json, made with torch 2.14.1 + torchvision 0.29.1)."""

from __future__ import annotations

import math

import torch


def deterministic_state(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Fill a state dict with a fixed function of the (sorted) key index: same values in any install."""
    out = {}
    for i, k in enumerate(sorted(sd)):
        v = sd[k]
        if v.dtype == torch.long:
            out[k] = v.clone()
            continue
        s = torch.sin(torch.arange(v.numel(), dtype=torch.float64) * (0.013 * (i + 1)) + i).reshape(v.shape)
        if k.endswith("running_var"):
            t = 1.0 + 0.5 * s.abs()
        elif k.endswith("running_mean") or k.endswith("bias"):
            t = 0.1 * s
        elif v.dim() == 1:  # BN weight
            t = 1.0 + 0.2 * s
        else:
            t = s * math.sqrt(3.0 / v[0].numel())
        out[k] = t.to(torch.float32)
    return out


def deterministic_input(shape: tuple[int, ...]) -> torch.Tensor:
    return torch.sin(torch.arange(math.prod(shape), dtype=torch.float64) * 0.7).reshape(shape).float()
