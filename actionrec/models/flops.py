"""FLOP counting with PyTorch's own counter (convolutions and matrix products; 2 FLOPs per multiply-add)."""

from __future__ import annotations

import copy

import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode


def count_flops(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """FLOPs of one forward pass on an input of ``input_shape`` (run on the meta device: no compute)."""
    meta_model = copy.deepcopy(model).to("meta").eval()
    x = torch.empty(input_shape, device="meta")
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        meta_model(x)
    return int(counter.get_total_flops())
