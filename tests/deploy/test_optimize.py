import logging

import pytest
import torch
import torch.nn as nn

from actionrec.deploy.optimize import OptimizeError, fold_batchnorm, max_abs_diff, optimize_for_cpu
from actionrec.deploy.backends import load_backend
from actionrec.meta import ModelMeta
from tests.deploy.conftest import tiny_model

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)


@pytest.mark.parametrize("arch", ["r2plus1d_18", "r2plus1d_34", "r3d_18", "mc3_18", "i3d"])
def test_fast_path_is_exact_and_folds_every_bn(arch):
    model = tiny_model(arch)
    x = torch.randn(2, 3, 4, 32, 32)
    fast = optimize_for_cpu(model, example=x)  # raises if max |Δ| > 1e-3
    n_bn = sum(isinstance(m, nn.BatchNorm3d) for m in model.modules())
    assert fast.optimize_info["bn_folded"] == n_bn > 0
    assert not any(isinstance(m, nn.BatchNorm3d) for m in fast.modules())
    n_conv = sum(type(m) is nn.Conv3d for m in model.modules())
    assert fast.optimize_info["onednn_convs"] == n_conv  # batch 1 would otherwise hit slow_conv3d
    assert any(isinstance(m, nn.BatchNorm3d) for m in model.modules()), "the original must be left alone"
    y = torch.randn(3, 3, 8, 32, 32)  # other batch and clip length than the example
    with torch.inference_mode():
        ref, got = model(y), fast(y)
    assert got.shape == (3, 5) and got.is_contiguous()
    assert max_abs_diff(ref, got) < 1e-4
    with torch.inference_mode():
        assert max_abs_diff(model(y[:1]), fast(y[:1])) < 1e-4
    assert fast.meta is model.meta


def test_fold_batchnorm_math_on_conv_bn():
    conv = nn.Conv3d(3, 4, 3, padding=1, bias=True)
    bn = nn.BatchNorm3d(4, eps=1e-3)
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.2, 3)
    nn.init.uniform_(bn.weight, 0.5, 2)
    nn.init.uniform_(bn.bias, -1, 1)
    seq = nn.Sequential(conv, bn, nn.ReLU()).eval()
    x = torch.randn(2, 3, 4, 8, 8)
    folded, n = fold_batchnorm(seq, example=x)
    assert n == 1 and isinstance(folded[1], nn.Identity)
    assert max_abs_diff(seq(x), folded(x)) < 1e-5


class _ConvUsedTwice(nn.Module):
    """conv output goes to BN *and* to a residual: folding it would be wrong."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv3d(3, 3, 1, bias=False)
        self.bn = nn.BatchNorm3d(3)
        self.fc = nn.Linear(3, 2)
        self.meta = ModelMeta(arch="toy", num_classes=2)

    def forward(self, x):
        y = self.conv(x)
        return self.fc((self.bn(y) + y).mean(dim=(2, 3, 4)))


def test_inexact_fold_is_caught_and_default_predictor_falls_back(caplog):
    from tests.deploy.conftest import randomize_bn

    model = randomize_bn(_ConvUsedTwice())
    with torch.no_grad():
        model.bn.running_var.fill_(0.01)  # a large BN scale makes the wrong fold visible
    x = torch.randn(2, 3, 4, 8, 8)
    with pytest.raises(OptimizeError, match="differs from eager"):
        optimize_for_cpu(model, example=x)
    with caplog.at_level(logging.WARNING):
        pred = load_backend(model, example=x)
    assert pred.info["optimize"] == "eager"
    assert "fast CPU path unavailable" in caplog.text
    with pytest.raises(OptimizeError):
        load_backend(model, example=x, optimize=True)


def test_bad_mode_and_missing_example():
    with pytest.raises(ValueError, match="optimize mode"):
        optimize_for_cpu(nn.Identity(), mode="turbo")
    with pytest.raises(ValueError, match="needs example"):
        optimize_for_cpu(nn.Conv3d(1, 1, 1))
