"""Two-stream late fusion: an RGB model and an optical-flow model scored together."""

from __future__ import annotations

import torch
import torch.nn as nn

from actionrec.errors import UsageError


class TwoStream(nn.Module):
    """Weighted late fusion of an RGB and a flow network (the I3D paper's "joint" model).

    Args:
        rgb, flow: models taking ``(N, 3, T, H, W)`` and ``(N, 2, T, H, W)``, same classes.
        weights: (rgb, flow) fusion weights.
        mode: ``"logits"`` adds weighted logits (DeepMind's joint model); ``"softmax"``
            averages weighted class probabilities (as most toolkits' two-stream evaluation).

    Shapes: ``forward(rgb (N,3,T,H,W), flow (N,2,T',H,W)) → (N, num_classes)`` fused scores
    (logits for ``"logits"``, probabilities for ``"softmax"``).
    """

    def __init__(self, rgb: nn.Module, flow: nn.Module, *, weights: tuple[float, float] = (1.0, 1.0), mode: str = "logits") -> None:
        super().__init__()
        if mode not in ("logits", "softmax"):
            raise UsageError(f"mode must be 'logits' or 'softmax', not {mode!r}")
        n_rgb, n_flow = getattr(rgb, "meta", None), getattr(flow, "meta", None)
        if n_rgb is not None and n_flow is not None and n_rgb.num_classes != n_flow.num_classes:
            raise UsageError(f"the streams predict different classes: {n_rgb.num_classes} vs {n_flow.num_classes}")
        self.rgb, self.flow = rgb, flow
        self.weights, self.mode = weights, mode

    def forward(self, rgb: torch.Tensor, flow: torch.Tensor) -> torch.Tensor:
        a, b = self.rgb(rgb), self.flow(flow)
        if self.mode == "softmax":
            a, b = a.softmax(-1), b.softmax(-1)
        return (self.weights[0] * a + self.weights[1] * b) / (1.0 if self.mode == "logits" else sum(self.weights))
