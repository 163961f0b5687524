"""X3D (Feichtenhofer, 2020): channel-wise separable 3D convolutions, squeeze-excitation, swish.

Module names and parameter shapes are PyTorchVideo's ``pytorchvideo.models.x3d.create_x3d``
(``blocks.0`` stem, ``blocks.1``–``blocks.4`` stages, ``blocks.5`` head), so its ``.pyth`` state
dicts load with ``strict=True`` and give its logits. mmaction2's X3D (the SlowFast layout) is the
same network with two differences, selected by ``layout="mmaction2"``: the stage-1 shortcut
convolution has a BatchNorm, and the head pools globally.

Widths (``width_factor`` 2, bottleneck factor 2.25, SE ratio 1/16, head 2048): stem 24, stages
24/48/96/192 channels (inner 54/108/216/432), conv5 432. Depths: 3/5/11/7 blocks (``depth_factor``
2.2: XS, S, M, which share one set of weights and differ only in their input) or 5/10/25/15 (5.0: L).

Input: ``(N, 3, T, H, W)`` clips normalised with mean 0.45, std 0.225 (``model.meta.preprocess``);
output ``(N, num_classes)`` logits. :meth:`X3D.features` gives ``(N, 192, T, ⌈H/32⌉, ⌈W/32⌉)``.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from actionrec.errors import UsageError
from actionrec.meta import SLOWFAST_MEAN, SLOWFAST_STD, ModelMeta, Preprocess
from actionrec.models.registry import register_model

__all__ = ["X3D", "X3DBlock", "X3DHead", "SqueezeExcitation", "round_width", "x3d_preprocess", "x3d_xs", "x3d_s", "x3d_m",
           "x3d_l", "X3D_LAYOUTS"]

X3D_LAYOUTS = ("pytorchvideo", "mmaction2")
_STAGE_DEPTHS = (1, 2, 5, 3)  # before the depth factor
_HEAD_DIM = 2048


def round_width(width: float, multiplier: float, min_width: int = 8, divisor: int = 8) -> int:
    """PyTorchVideo's (and SlowFast's) channel rounding: ``width·multiplier`` to a multiple of ``divisor``."""
    width *= multiplier
    out = max(min_width, int(width + divisor / 2) // divisor * divisor)
    return int(out + divisor if out < 0.9 * width else out)


def _head_pool(x: torch.Tensor, kernel: tuple[int, int] | None) -> torch.Tensor:
    # Over time: the mean (PyTorchVideo's kernel spans the clip length the model is built for; a fixed kernel
    # would keep the ONNX/pt2 clip length from being dynamic). Over space, PyTorchVideo's average pool of an
    # (H, W) kernel fixed at build time, stride 1: global at the build size, several positions (averaged after
    # the classifier) on a larger input; a smaller one pools over what there is (PyTorchVideo raises).
    # None: global average (mmaction2).
    x = x.mean(dim=2, keepdim=True)
    if kernel is None:
        return x.mean(dim=(3, 4), keepdim=True)
    return F.avg_pool3d(x, (1, min(kernel[0], x.shape[3]), min(kernel[1], x.shape[4])), stride=1)


torch.fx.wrap("_head_pool")  # shape-dependent: an opaque call under torch.fx tracing (FX int8 quantisation)


def _bn(c: int) -> nn.BatchNorm3d:
    return nn.BatchNorm3d(c, eps=1e-5, momentum=0.1)


class SqueezeExcitation(nn.Module):
    """``x · σ(W₂ ReLU(W₁ mean_THW(x)))`` with 1×1×1 convolutions (fvcore's, as PyTorchVideo uses it).

    ``(N, C, T, H, W) → (N, C, T, H, W)``; ``block`` = conv C→R, ReLU, conv R→C, sigmoid.
    """

    def __init__(self, channels: int, reduced: int) -> None:
        super().__init__()
        self.block = nn.Sequential(nn.Conv3d(channels, reduced, 1), nn.ReLU(), nn.Conv3d(reduced, channels, 1), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(x.mean(dim=(2, 3, 4), keepdim=True))


class _StemConv(nn.Module):
    """Spatial 1×3×3 conv (stride 1,2,2), then temporal depthwise 5×1×1. PyTorchVideo's names, kept for its
    state dicts: ``conv_t`` is the *spatial* convolution and ``conv_xy`` the temporal one."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.conv_t = nn.Conv3d(in_channels, width, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False)
        self.conv_xy = nn.Conv3d(width, width, (5, 1, 1), padding=(2, 0, 0), groups=width, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_xy(self.conv_t(x))


class _Stem(nn.Module):
    """``(N, C, T, H, W) → (N, 24, T, ⌈H/2⌉, ⌈W/2⌉)``: (2+1)D conv, BN, ReLU."""

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.conv = _StemConv(in_channels, width)
        self.norm = _bn(width)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.norm(self.conv(x)))


class _Bottleneck(nn.Module):
    """1×1×1 conv, BN, ReLU; depthwise 3×3×3 conv (spatial stride), BN, SE (or none), swish; 1×1×1 conv, BN."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, stride: int, se: bool) -> None:
        super().__init__()
        self.conv_a = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.norm_a = _bn(dim_inner)
        self.act_a = nn.ReLU(inplace=True)
        self.conv_b = nn.Conv3d(dim_inner, dim_inner, 3, stride=(1, stride, stride), padding=1, groups=dim_inner, bias=False)
        excite = SqueezeExcitation(dim_inner, round_width(dim_inner, 1 / 16)) if se else nn.Identity()
        self.norm_b = nn.Sequential(_bn(dim_inner), excite)
        self.act_b = nn.SiLU()  # swish: x·σ(x)
        self.conv_c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.norm_c = _bn(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class X3DBlock(nn.Module):
    """Residual block: ``ReLU(shortcut(x) + branch2(x))``; the shortcut is a strided 1×1×1 conv (+ BN when
    the width changes, or always in the mmaction2 layout) where shape changes, else the identity."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, *, stride: int, se: bool, shortcut_bn: bool) -> None:
        super().__init__()
        project = dim_in != dim_out or stride > 1
        self.branch1_conv = nn.Conv3d(dim_in, dim_out, 1, stride=(1, stride, stride), bias=False) if project else None
        self.branch1_norm = _bn(dim_out) if project and (shortcut_bn or dim_in != dim_out) else None
        self.branch2 = _Bottleneck(dim_in, dim_inner, dim_out, stride, se)
        self.activation = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.branch1_conv is not None:
            shortcut = self.branch1_conv(x)
            if self.branch1_norm is not None:
                shortcut = self.branch1_norm(shortcut)
        return self.activation(shortcut + self.branch2(x))


class _Stage(nn.Module):
    def __init__(self, blocks: list[X3DBlock]) -> None:
        super().__init__()
        self.res_blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


class _ProjectedPool(nn.Module):
    """conv5 (1×1×1 → 432, BN, ReLU), average pool, 1×1×1 conv → 2048 (no bias), ReLU."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, kernel: tuple[int, int] | None) -> None:
        super().__init__()
        self.pre_conv = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.pre_norm = _bn(dim_inner)
        self.pre_act = nn.ReLU(inplace=True)
        self.post_conv = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.post_act = nn.ReLU(inplace=True)
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _head_pool(self.pre_act(self.pre_norm(self.pre_conv(x))), self.kernel)
        return self.post_act(self.post_conv(x))


class X3DHead(nn.Module):
    """``(N, 192, T', H', W') → (N, num_classes)``: projected pool to ``(N, 2048, 1, h, w)``, dropout,
    mean over the (h, w) positions (one at the build size), then ``proj`` (2048 → classes).

    PyTorchVideo applies ``proj`` per position and then averages (the same, ``proj`` being linear), and by
    default a softmax before averaging; we return logits (its ``head_activation=None``).
    """

    def __init__(self, dim_in: int, dim_inner: int, num_classes: int, *, kernel: tuple[int, int] | None, dropout: float) -> None:
        super().__init__()
        self.pool = _ProjectedPool(dim_in, dim_inner, _HEAD_DIM, kernel)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.proj = nn.Linear(_HEAD_DIM, num_classes)

    def pre_logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, 192, T', H', W') → (N, 2048)``."""
        return self.dropout(self.pool(x)).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pre_logits(x))


class X3D(nn.Module):
    """X3D in PyTorchVideo's layout (see the module docstring).

    Args:
        num_classes: outputs of the classifier ``blocks.5.proj`` (400 for Kinetics-400).
        depth_factor: 2.2 (XS, S, M) or 5.0 (L); stage depths are ``⌈factor·(1, 2, 5, 3)⌉``.
        head_pool: the head's spatial average-pool kernel ``(H, W)`` in conv5 cells, fixed as PyTorchVideo
            fixes it from the crop the model is built for (``⌈crop/32⌉``); ignored (global pooling) in the
            mmaction2 layout. Over time the head always pools globally (PyTorchVideo: over the clip length
            the model is built for, so the two agree at that length).
        in_channels: 3 (RGB).
        dropout: before the classifier (PyTorchVideo and mmaction2: 0.5).
        layout: ``"pytorchvideo"`` or ``"mmaction2"`` (BN on every projection shortcut, global head pool).

    ``classifier`` / ``first_conv`` name the classification layer and the first convolution;
    :meth:`get_classifier` / :meth:`reset_classifier` act on the classifier.
    """

    classifier = "blocks.5.proj"
    first_conv = "blocks.0.conv.conv_t"

    def __init__(self, num_classes: int = 400, *, depth_factor: float = 2.2, head_pool: tuple[int, int] | None = (5, 5),
                 in_channels: int = 3, dropout: float = 0.5, layout: str = "pytorchvideo") -> None:
        super().__init__()
        if layout not in X3D_LAYOUTS:
            raise UsageError(f"X3D layout must be one of {', '.join(X3D_LAYOUTS)}, not {layout!r}")
        self.layout = layout
        stem_width = round_width(12, 2.0)
        blocks: list[nn.Module] = [_Stem(in_channels, stem_width)]
        dim_in, widths = stem_width, [12, 24, 48, 96]  # stage widths before the width factor (12 = stem's)
        for depth, width in zip(_STAGE_DEPTHS, widths):
            dim_out = round_width(width, 2.0)
            dim_inner = int(2.25 * dim_out)
            n = int(math.ceil(depth_factor * depth))
            blocks.append(_Stage([
                X3DBlock(dim_in if i == 0 else dim_out, dim_inner, dim_out, stride=2 if i == 0 else 1, se=i % 2 == 0,
                         shortcut_bn=layout == "mmaction2")
                for i in range(n)
            ]))
            dim_in = dim_out
        kernel = None if layout == "mmaction2" else head_pool
        blocks.append(X3DHead(dim_in, dim_inner, num_classes, kernel=kernel, dropout=dropout))
        self.blocks = nn.ModuleList(blocks)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():  # PyTorchVideo's init_net_weights (ResNet style)
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def get_classifier(self) -> nn.Linear:
        """The classification layer ``blocks.5.proj``: ``(N, 2048) → (N, num_classes)``."""
        return self.blocks[5].proj

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``blocks.5.proj`` by a freshly initialised ``num_classes``-way layer."""
        proj = nn.Linear(_HEAD_DIM, num_classes)
        nn.init.normal_(proj.weight, 0, 0.01)
        nn.init.zeros_(proj.bias)
        self.blocks[5].proj = proj

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T, H, W) → (N, 192, T, ⌈H/32⌉, ⌈W/32⌉)`` (stage 4's output, before conv5)."""
        for block in self.blocks[:5]:
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks[5](self.features(x))


# size → (depth factor, clip length, frame stride, crop): PyTorchVideo's hub builders and model zoo (T×stride).
_SIZES = {"xs": (2.2, 4, 12, 160), "s": (2.2, 13, 6, 160), "m": (2.2, 16, 5, 224), "l": (5.0, 16, 5, 312)}


def x3d_preprocess(size: str) -> Preprocess:
    """The input X3D-``size`` (``"xs"``, ``"s"``, ``"m"``, ``"l"``) is built for: T frames, stride, crop² after
    resizing the short side to the crop (SlowFast's single-crop test), mean 0.45, std 0.225."""
    _, clip_len, stride, crop = _SIZES[size]
    return Preprocess(clip_len=clip_len, frame_stride=stride, resize_short=crop, crop_size=crop,
                      mean=SLOWFAST_MEAN, std=SLOWFAST_STD)


def _x3d(size: str, num_classes: int, in_channels: int, dropout: float, layout: str, **kwargs: Any) -> X3D:
    if kwargs:
        raise UsageError(f"x3d_{size}: unexpected arguments {sorted(kwargs)} (in_channels, dropout, layout)")
    if in_channels != 3:
        raise UsageError(f"x3d_{size}: RGB input only (in_channels=3), got {in_channels}")
    depth_factor, _, _, crop = _SIZES[size]
    cells = math.ceil(crop / 32)
    model = X3D(num_classes, depth_factor=depth_factor, head_pool=(cells, cells), dropout=dropout, layout=layout)
    model.meta = ModelMeta(
        arch=f"x3d_{size}",
        num_classes=num_classes,
        preprocess=x3d_preprocess(size),
        arch_kwargs={**({"dropout": dropout} if dropout != 0.5 else {}),
                     **({"layout": layout} if layout != "pytorchvideo" else {})},
    )
    return model


@register_model
def x3d_xs(*, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5, layout: str = "pytorchvideo",
           **kwargs: Any) -> X3D:
    """X3D-XS: 4 frames 12 apart at 160² (0.61 GFLOPs as multiply-adds of the convolutions and products, the paper's
    0.60), 3,794,274 parameters at 400 classes (PyTorchVideo's create_x3d; its model zoo: 3.79 M)."""
    return _x3d("xs", num_classes, in_channels, dropout, layout, **kwargs)


@register_model
def x3d_s(*, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5, layout: str = "pytorchvideo",
          **kwargs: Any) -> X3D:
    """X3D-S: 13 frames 6 apart at 160² (1.96 GFLOPs multiply-adds), XS's network (3,794,274 parameters)."""
    return _x3d("s", num_classes, in_channels, dropout, layout, **kwargs)


@register_model
def x3d_m(*, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5, layout: str = "pytorchvideo",
          **kwargs: Any) -> X3D:
    """X3D-M: 16 frames 5 apart at 224² (4.73 GFLOPs multiply-adds), XS's network (3,794,274 parameters)."""
    return _x3d("m", num_classes, in_channels, dropout, layout, **kwargs)


@register_model
def x3d_l(*, num_classes: int = 400, in_channels: int = 3, dropout: float = 0.5, layout: str = "pytorchvideo",
          **kwargs: Any) -> X3D:
    """X3D-L: depth factor 5 (5/10/25/15 blocks), 16 frames 5 apart at 312² (18.37 GFLOPs multiply-adds),
    6,153,384 parameters at 400 classes."""
    return _x3d("l", num_classes, in_channels, dropout, layout, **kwargs)
