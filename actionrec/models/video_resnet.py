"""Video ResNets: R3D, MC3 and R(2+1)D from one generic network with injected conv "makers".

The layout (module names, parameter shapes) is torchvision's ``torchvision.models.video.resnet``,
so torchvision checkpoints load with ``strict=True`` and give the same logits.

Input: ``(N, 3, T, H, W)`` float clips, normalised with the model's mean/std
(``model.meta.preprocess``). Output: ``(N, num_classes)`` logits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn as nn

from actionrec.meta import IMAGENET_MEAN, IMAGENET_STD, KINETICS_MEAN, KINETICS_STD, UNIT_RANGE, ModelMeta, Preprocess
from actionrec.models.registry import register_model

__all__ = [
    "VideoResNet",
    "BasicBlock",
    "Conv3DSimple",
    "Conv3DNoTemporal",
    "Conv2Plus1D",
    "Conv2Plus1DOwnMid",
    "BasicStem",
    "R2Plus1dStem",
    "R2Plus1dStemMM",
    "midplanes_2plus1d",
    "r3d_18",
    "mc3_18",
    "r2plus1d_18",
    "r2plus1d_34",
    "r2plus1d_mm_18",
    "r2plus1d_mm_34",
]

def midplanes_2plus1d(n_in: int, n_out: int, t: int = 3, d: int = 3) -> int:
    """The R(2+1)D paper's mid-channel rule ``M = ⌊t·d²·N_in·N_out / (d²·N_in + t·N_out)⌋``.

    It keeps the (2+1)D pair's parameter count equal to the full ``t×d×d`` convolution's.
    As in torchvision, both convolutions of a block use the value computed from the
    block's (inplanes, planes); mmaction2 computes it per convolution (:class:`Conv2Plus1DOwnMid`),
    with ``t = 3`` even for its kernel-1 downsample.
    """
    return (t * d * d * n_in * n_out) // (d * d * n_in + t * n_out)


def _plain_downsample(in_planes: int, out_planes: int, stride: tuple[int, int, int]) -> nn.Module:
    return nn.Conv3d(in_planes, out_planes, kernel_size=1, stride=stride, bias=False)


class Conv3DSimple(nn.Conv3d):
    """A full 3×3×3 convolution (R3D)."""

    downsample_conv = staticmethod(_plain_downsample)

    def __init__(self, in_planes: int, out_planes: int, midplanes: int | None = None, stride: int = 1, padding: int = 1):
        super().__init__(in_planes, out_planes, kernel_size=(3, 3, 3), stride=stride, padding=padding, bias=False)

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


class Conv3DNoTemporal(nn.Conv3d):
    """A 1×3×3 (2D, per frame) convolution (the upper layers of MC3)."""

    downsample_conv = staticmethod(_plain_downsample)

    def __init__(self, in_planes: int, out_planes: int, midplanes: int | None = None, stride: int = 1, padding: int = 1):
        super().__init__(
            in_planes, out_planes, kernel_size=(1, 3, 3), stride=(1, stride, stride), padding=(0, padding, padding), bias=False
        )

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return (1, stride, stride)


class Conv2Plus1D(nn.Sequential):
    """A 1×k×k spatial convolution, BN, ReLU, then a k_t×1×1 temporal convolution (R(2+1)D).

    ``kernel`` is (k_t, k, k) (default 3×3×3) and ``eps`` the inner BN's epsilon.
    """

    downsample_conv = staticmethod(_plain_downsample)

    def __init__(
        self,
        in_planes: int,
        out_planes: int,
        midplanes: int,
        stride: int | tuple[int, int, int] = 1,
        padding: int | tuple[int, int, int] = 1,
        *,
        kernel: tuple[int, int, int] = (3, 3, 3),
        eps: float = 1e-5,
    ) -> None:
        st, ss = (stride, stride) if isinstance(stride, int) else (stride[0], stride[1])
        pt, ps = (padding, padding) if isinstance(padding, int) else (padding[0], padding[1])
        super().__init__(
            nn.Conv3d(in_planes, midplanes, kernel_size=(1, *kernel[1:]), stride=(1, ss, ss), padding=(0, ps, ps), bias=False),
            nn.BatchNorm3d(midplanes, eps=eps),
            nn.ReLU(inplace=True),
            nn.Conv3d(midplanes, out_planes, kernel_size=(kernel[0], 1, 1), stride=(st, 1, 1), padding=(pt, 0, 0), bias=False),
        )

    @staticmethod
    def get_downsample_stride(stride: int) -> tuple[int, int, int]:
        return (stride, stride, stride)


class Conv2Plus1DOwnMid(Conv2Plus1D):
    """mmaction2's ``Conv2plus1d``: each convolution computes its middle channels from its own (in, out).

    The ``midplanes`` the block offers is ignored. Its residual downsample is itself a
    (2+1)D convolution of kernel 1 (1×1×1 → BN → ReLU → 1×1×1).
    """

    def __init__(self, in_planes: int, out_planes: int, midplanes: int | None = None, stride: int = 1, padding: int = 1) -> None:
        super().__init__(in_planes, out_planes, midplanes_2plus1d(in_planes, out_planes), stride, padding)

    @staticmethod
    def downsample_conv(in_planes: int, out_planes: int, stride: tuple[int, int, int]) -> nn.Module:
        mid = midplanes_2plus1d(in_planes, out_planes, d=1)
        return Conv2Plus1D(in_planes, out_planes, mid, stride, 0, kernel=(1, 1, 1))


ConvMaker = Callable[..., nn.Module]


class BasicBlock(nn.Module):
    """Two convolutions (made by ``conv_builder``) with BN and a residual connection."""

    expansion = 1

    def __init__(
        self,
        inplanes: int,
        planes: int,
        conv_builder: ConvMaker,
        stride: int = 1,
        downsample: nn.Module | None = None,
        *,
        eps: float = 1e-5,
    ) -> None:
        super().__init__()
        midplanes = midplanes_2plus1d(inplanes, planes)
        self.conv1 = nn.Sequential(
            conv_builder(inplanes, planes, midplanes, stride), nn.BatchNorm3d(planes, eps=eps), nn.ReLU(inplace=True)
        )
        self.conv2 = nn.Sequential(conv_builder(planes, planes, midplanes), nn.BatchNorm3d(planes, eps=eps))
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.conv2(self.conv1(x))
        return self.relu(out + residual)


class BasicStem(nn.Sequential):
    """Conv 3×7×7 (stride 1,2,2), BN, ReLU: the R3D/MC3 stem."""

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        super().__init__(
            nn.Conv3d(in_channels, width, kernel_size=(3, 7, 7), stride=(1, 2, 2), padding=(1, 3, 3), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )


class R2Plus1dStem(nn.Sequential):
    """Conv 1×7×7 → 45 channels, BN, ReLU, conv 3×1×1 → 64, BN, ReLU: the R(2+1)D stem."""

    def __init__(self, in_channels: int = 3, width: int = 64) -> None:
        mid = 45 * width // 64
        super().__init__(
            nn.Conv3d(in_channels, mid, kernel_size=(1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(mid),
            nn.ReLU(inplace=True),
            nn.Conv3d(mid, width, kernel_size=(3, 1, 1), stride=(1, 1, 1), padding=(1, 0, 0), bias=False),
            nn.BatchNorm3d(width),
            nn.ReLU(inplace=True),
        )


class R2Plus1dStemMM(nn.Sequential):
    """mmaction2's R(2+1)D stem: a (2+1)D conv 3×7×7 (stride 1,2,2; its own middle channels, 83 for RGB),
    BN (eps 1e-3), ReLU, then max-pool 1×3×3 stride (1,2,2) padding (0,1,1)."""

    def __init__(self, in_channels: int = 3, width: int = 64, *, eps: float = 1e-3) -> None:
        mid = midplanes_2plus1d(in_channels, width, d=7)
        super().__init__(
            Conv2Plus1D(in_channels, width, mid, (1, 2, 2), (1, 3, 3), kernel=(3, 7, 7)),
            nn.BatchNorm3d(width, eps=eps),
            nn.ReLU(inplace=True),
            nn.MaxPool3d(kernel_size=(1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )


class VideoResNet(nn.Module):
    """A generic video ResNet.

    ``classifier`` / ``first_conv`` name the classification layer and the first convolution
    (as timm's pretrained configs do); :meth:`get_classifier` / :meth:`reset_classifier` act on it.

    Args:
        block: residual block class (:class:`BasicBlock`).
        conv_makers: one conv maker per stage (:class:`Conv3DSimple`, :class:`Conv3DNoTemporal`,
            :class:`Conv2Plus1D`).
        layers: number of blocks per stage, e.g. ``[2, 2, 2, 2]`` (18 layers) or ``[3, 4, 6, 3]`` (34).
        stem: stem class, called with ``in_channels``.
        num_classes: size of the final linear layer ``fc``.
        in_channels: 3 for RGB, 2 for optical flow.
        dropout: dropout before ``fc`` (0 = none, torchvision's default; GluonCV uses 0.5).
        widths: channels of the four stages (torchvision: 64, 128, 256, 512); smaller widths
            give small models for CPU experiments.
        bn_eps: epsilon of the blocks' and downsamples' BatchNorms (torchvision 1e-5, mmaction2 1e-3).

    Shapes: ``(N, C, T, H, W) → (N, num_classes)``; the features before ``fc`` are
    ``(N, 512)`` after global average pooling of ``(N, 512, T/8, H/16, W/16)``.
    """

    classifier = "fc"

    def __init__(
        self,
        block: type[BasicBlock],
        conv_makers: Sequence[ConvMaker],
        layers: Sequence[int],
        stem: Callable[..., nn.Module],
        num_classes: int = 400,
        *,
        in_channels: int = 3,
        dropout: float = 0.0,
        zero_init_residual: bool = False,
        widths: Sequence[int] = (64, 128, 256, 512),
        bn_eps: float = 1e-5,
    ) -> None:
        super().__init__()
        self.inplanes, self.bn_eps = widths[0], bn_eps
        self.stem = stem(in_channels, widths[0])
        self.layer1 = self._make_layer(block, conv_makers[0], widths[0], layers[0], stride=1)
        self.layer2 = self._make_layer(block, conv_makers[1], widths[1], layers[1], stride=2)
        self.layer3 = self._make_layer(block, conv_makers[2], widths[2], layers[2], stride=2)
        self.layer4 = self._make_layer(block, conv_makers[3], widths[3], layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool3d((1, 1, 1))
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(widths[3] * block.expansion, num_classes)

        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.conv2[1].weight)

    def _make_layer(self, block: type[BasicBlock], conv_builder: ConvMaker, planes: int, blocks: int, stride: int) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            ds_stride = conv_builder.get_downsample_stride(stride)  # type: ignore[attr-defined]
            downsample = nn.Sequential(
                conv_builder.downsample_conv(self.inplanes, planes * block.expansion, ds_stride),  # type: ignore[attr-defined]
                nn.BatchNorm3d(planes * block.expansion, eps=self.bn_eps),
            )
        layers = [block(self.inplanes, planes, conv_builder, stride, downsample, eps=self.bn_eps)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, conv_builder, eps=self.bn_eps) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    @property
    def first_conv(self) -> str:
        """Name of the first convolution (``stem.0``; ``stem.0.0`` for a (2+1)D stem convolution)."""
        return "stem.0" if isinstance(self.stem[0], nn.Conv3d) else "stem.0.0"

    def get_classifier(self) -> nn.Linear:
        """The classification layer (``fc``: ``(N, widths[3]) → (N, num_classes)``)."""
        return self.fc

    def reset_classifier(self, num_classes: int) -> None:
        """Replace ``fc`` by a freshly initialised ``num_classes``-way layer."""
        fc = nn.Linear(self.fc.in_features, num_classes)
        nn.init.normal_(fc.weight, 0, 0.01)
        nn.init.zeros_(fc.bias)
        self.fc = fc

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(N, C, T, H, W) → (N, widths[3])`` pooled features."""
        x = self.stem(x)
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.features(x)))


def _video_resnet(
    arch: str,
    conv_makers: Sequence[ConvMaker],
    layers: Sequence[int],
    stem: Callable[..., nn.Module],
    num_classes: int,
    in_channels: int,
    *,
    preprocess: Preprocess | None = None,
    bn_eps: float = 1e-5,
    **kwargs: Any,
) -> VideoResNet:
    model = VideoResNet(BasicBlock, conv_makers, layers, stem, num_classes, in_channels=in_channels, bn_eps=bn_eps, **kwargs)
    flow = in_channels == 2
    pre = preprocess or Preprocess(clip_len=16, frame_stride=1, resize_short=128, crop_size=112, mean=KINETICS_MEAN, std=KINETICS_STD)
    if flow:
        pre = dataclasses.replace(pre, mean=(UNIT_RANGE,) * 2, std=(UNIT_RANGE,) * 2)  # stored flow: [0, 1] → [-1, 1]
    model.meta = ModelMeta(
        arch=arch,
        num_classes=num_classes,
        modality="flow" if flow else "rgb",
        preprocess=pre,
        arch_kwargs={"in_channels": in_channels, **kwargs} if in_channels != 3 or kwargs else {},
    )
    return model


@register_model
def r3d_18(*, num_classes: int = 400, in_channels: int = 3, **kwargs: Any) -> VideoResNet:
    """R3D-18 (Tran et al., 2018): 3×3×3 convolutions throughout. 33.4 M parameters at 400 classes."""
    return _video_resnet("r3d_18", [Conv3DSimple] * 4, [2, 2, 2, 2], BasicStem, num_classes, in_channels, **kwargs)


@register_model
def mc3_18(*, num_classes: int = 400, in_channels: int = 3, **kwargs: Any) -> VideoResNet:
    """MC3-18: 3D convolutions in the first stage, 2D (1×3×3) above. 11.7 M parameters at 400 classes."""
    return _video_resnet(
        "mc3_18", [Conv3DSimple] + [Conv3DNoTemporal] * 3, [2, 2, 2, 2], BasicStem, num_classes, in_channels, **kwargs
    )


@register_model
def r2plus1d_18(*, num_classes: int = 400, in_channels: int = 3, **kwargs: Any) -> VideoResNet:
    """R(2+1)D-18: each 3×3×3 convolution factorised into 1×3×3 and 3×1×1.

    31,505,325 parameters at 400 classes; state dict identical to torchvision's ``r2plus1d_18``.
    """
    return _video_resnet("r2plus1d_18", [Conv2Plus1D] * 4, [2, 2, 2, 2], R2Plus1dStem, num_classes, in_channels, **kwargs)


@register_model
def r2plus1d_34(*, num_classes: int = 400, in_channels: int = 3, **kwargs: Any) -> VideoResNet:
    """R(2+1)D-34 ([3, 4, 6, 3] basic blocks) in torchvision's layout: GluonCV's ``r2plus1d_v1_resnet34``.

    (mmaction2's R(2+1)D-34 is a different network: :func:`r2plus1d_mm_34`.)
    """
    return _video_resnet("r2plus1d_34", [Conv2Plus1D] * 4, [3, 4, 6, 3], R2Plus1dStem, num_classes, in_channels, **kwargs)


# mmaction2's R(2+1)D configs: 8 frames 8 apart, short side 256, centre crop 224, ImageNet mean/std.
MMACTION2_PREPROCESS = Preprocess(
    clip_len=8, frame_stride=8, resize_short=256, crop_size=224, mean=IMAGENET_MEAN, std=IMAGENET_STD
)


def _r2plus1d_mm(arch: str, layers: Sequence[int], num_classes: int, in_channels: int, **kwargs: Any) -> VideoResNet:
    stem = R2Plus1dStemMM
    return _video_resnet(
        arch, [Conv2Plus1DOwnMid] * 4, layers, stem, num_classes, in_channels,
        preprocess=MMACTION2_PREPROCESS, bn_eps=1e-3, **kwargs,
    )  # fmt: skip


@register_model
def r2plus1d_mm_18(*, num_classes: int = 400, in_channels: int = 3, **kwargs: Any) -> VideoResNet:
    """mmaction2's ``ResNet2Plus1d`` depth 18 with its ``I3DHead`` (see :func:`r2plus1d_mm_34`)."""
    return _r2plus1d_mm("r2plus1d_mm_18", [2, 2, 2, 2], num_classes, in_channels, **kwargs)


@register_model
def r2plus1d_mm_34(*, num_classes: int = 400, in_channels: int = 3, **kwargs: Any) -> VideoResNet:
    """mmaction2's ``ResNet2Plus1d`` depth 34 (``r2plus1d_r34_8x8x1_180e_*``), exactly.

    Differs from :func:`r2plus1d_34`: a (2+1)D 3×7×7 stem (83 middle channels) and a max-pool;
    every (2+1)D convolution has its own middle channels (first block of stages 2–4: 230/288,
    460/576, 921/1152); (2+1)D residual downsamples; BN eps 1e-3 outside, 1e-5 inside the (2+1)D
    pairs. 63,759,281 parameters at 400 classes. Input: 8 frames, 224², ImageNet mean/std.
    """
    return _r2plus1d_mm("r2plus1d_mm_34", [3, 4, 6, 3], num_classes, in_channels, **kwargs)
