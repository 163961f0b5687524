"""X3D: shapes, parameter counts and FLOPs against the published figures, head surgery, a fine-tune step, `info`.

Logits against PyTorchVideo's and mmaction2's own code: tests/convert/test_x3d.py.
"""

from __future__ import annotations

import json

import pytest
import torch

import actionrec
from actionrec.cli import main
from actionrec.models.finetune import freeze_backbone, replace_head
from actionrec.models.flops import count_flops
from actionrec.models.x3d import X3D

# size → (create_x3d's parameter count at 400 classes, the model zoo's "Params (M)"), pytorchvideo 0.1.5
PARAMS = {"xs": (3_794_274, 3.79), "s": (3_794_274, 3.79), "m": (3_794_274, 3.79), "l": (6_153_384, 6.15)}
# size → (input T, build crop, X3D paper's GFLOPs (multiply-adds) at it, 3-crop test crop, PyTorchVideo model zoo's
# GFLOPs per view (facebookresearch/pytorchvideo@f3142bb docs/source/model_zoo.md))
FLOPS = {"xs": (4, 160, 0.60, 182, 0.91), "s": (13, 160, 1.96, 182, 2.96), "m": (16, 224, 4.73, 256, 6.72),
         "l": (16, 312, 18.37, 356, 26.64)}


@pytest.mark.parametrize("size", ["xs", "s", "m", "l"])
def test_parameter_counts_and_flops_match_the_published_figures(size: str) -> None:
    model = actionrec.create_model(f"x3d_{size}")
    n = sum(p.numel() for p in model.parameters())
    assert n == PARAMS[size][0] and round(n / 1e6, 2) == PARAMS[size][1]
    t, crop, paper, test_crop, zoo = FLOPS[size]
    assert model.meta.input_shape() == (1, 3, t, crop, crop)
    assert abs(count_flops(model, (1, 3, t, crop, crop)) / 2e9 - paper) < 0.01  # convolutions + products, 2 per MAC
    # The model zoo's figure is at the 3-crop test size, and counts normalisation, activations and pooling as well:
    # 7-8% more than the convolutions and matrix products alone.
    ratio = count_flops(model, (1, 3, t, test_crop, test_crop)) / 2e9 / zoo
    assert 0.90 <= ratio <= 0.95, ratio


def test_mmaction2_layout() -> None:
    mm = actionrec.create_model("x3d_s", layout="mmaction2")
    assert sum(p.numel() for p in mm.parameters()) == 3_794_322  # mmaction2's metafile: Parameters 3794322
    assert mm.blocks[1].res_blocks[0].branch1_norm is not None and mm.blocks[5].pool.kernel is None
    ptv = actionrec.create_model("x3d_s")
    assert ptv.blocks[1].res_blocks[0].branch1_norm is None and ptv.blocks[2].res_blocks[0].branch1_norm is not None
    assert mm.meta.arch_kwargs == {"layout": "mmaction2"} and ptv.meta.arch_kwargs == {}
    with pytest.raises(ValueError, match="layout must be one of"):
        X3D(layout="slowfast")
    with pytest.raises(ValueError, match="RGB input only"):
        actionrec.create_model("x3d_xs", in_channels=2)


def test_head_pool_is_pytorchvideos() -> None:
    """At the build size the head pool is global; on a larger input it covers positions, averaged after the classifier."""
    torch.manual_seed(0)
    head = actionrec.create_model("x3d_xs", num_classes=7).eval().blocks[5]
    pool = head.pool

    def per_position(feats: torch.Tensor) -> torch.Tensor:  # PyTorchVideo's order: pool, conv, ReLU, proj, then mean
        x = pool.pre_act(pool.pre_norm(pool.pre_conv(feats))).mean(2, keepdim=True)
        x = pool.post_act(pool.post_conv(torch.nn.functional.avg_pool3d(x, (1, 5, 5), 1)))
        return head.proj(x.permute(0, 2, 3, 4, 1)).mean((1, 2, 3))

    with torch.no_grad():
        for feats in (torch.randn(1, 192, 4, 5, 5), torch.randn(1, 192, 4, 6, 6)):  # 160² input: 1 position; 182²: 2×2
            assert torch.allclose(head(feats), per_position(feats), atol=1e-5)
        assert head(torch.randn(2, 192, 3, 2, 2)).shape == (2, 7)  # smaller than the kernel: pools what there is


def test_forward_shapes_and_a_finetune_step() -> None:
    torch.manual_seed(0)
    model = actionrec.create_model("x3d_xs", num_classes=5)
    x = torch.randn(2, 3, 4, 48, 48)
    assert model.features(x).shape == (2, 192, 4, 2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    before = model.blocks[1].res_blocks[0].branch2.conv_b.weight.detach().clone()
    loss = torch.nn.functional.cross_entropy(model(x), torch.tensor([1, 3]))
    loss.backward()
    opt.step()
    assert loss.isfinite() and not torch.equal(before, model.blocks[1].res_blocks[0].branch2.conv_b.weight)
    model.eval()
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 5) and torch.equal(y, model(x))
    assert model.get_classifier() is model.get_submodule(model.classifier)
    assert isinstance(model.get_submodule(model.first_conv), torch.nn.Conv3d)
    replace_head(model, 11)
    assert model.get_classifier().out_features == 11 and model.meta.num_classes == 11
    trainable = freeze_backbone(model)
    assert trainable == ["blocks.5.proj.weight", "blocks.5.proj.bias"]


@pytest.mark.parametrize("size,pre", [("xs", (4, 12, 160)), ("s", (13, 6, 160)), ("m", (16, 5, 224)), ("l", (16, 5, 312))])
def test_metadata_carries_the_input(size: str, pre: tuple[int, int, int]) -> None:
    with torch.device("meta"):
        p = actionrec.create_model(f"x3d_{size}").meta.preprocess
    assert (p.clip_len, p.frame_stride, p.resize_short, p.crop_size) == (*pre, pre[2])
    assert p.mean == (0.45,) * 3 and p.std == (0.225,) * 3


def test_info_command(capsys: pytest.CaptureFixture) -> None:
    assert main(["info", "x3d_s", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["params"] == 3_794_274 and round(info["gmacs"], 2) == 1.96 and info["input_shape"] == [1, 3, 13, 160, 160]
