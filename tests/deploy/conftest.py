"""Small models for the deploy tests: tiny widths, small clips, BatchNorm statistics made non-trivial."""

from __future__ import annotations

import pytest
import torch

from actionrec.factory import create_model

TINY = dict(widths=(8, 16, 32, 64))


def randomize_bn(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters, so folding is really tested."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            with torch.no_grad():
                m.weight.copy_(torch.rand(n, generator=g) + 0.5)
                m.bias.copy_(torch.randn(n, generator=g) * 0.1)
    return model.eval()


def tiny_model(arch: str, *, num_classes: int = 5, in_channels: int = 3, clip_len: int = 4, size: int = 32) -> torch.nn.Module:
    """A small model whose ``meta`` describes a (C, clip_len, size, size) input."""
    kwargs = {} if arch == "i3d" else dict(TINY)
    torch.manual_seed(0)
    m = create_model(arch, num_classes=num_classes, in_channels=in_channels, **kwargs)
    p = m.meta.preprocess
    p.clip_len, p.crop_size, p.resize_short = clip_len, size, round(size * 8 / 7)
    return randomize_bn(m)


@pytest.fixture
def small_r2p1d() -> torch.nn.Module:
    return tiny_model("r2plus1d_18")
