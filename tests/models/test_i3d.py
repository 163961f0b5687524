import json

import pytest
import torch

import actionrec
from actionrec.convert.sources.googlenet import inflate_googlenet
from actionrec.models.finetune import freeze, replace_head
from actionrec.models.i3d import same_padding
from tests.conftest import DATA
from tests.models.detparams import deterministic_input, deterministic_state

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)


def test_parameter_count():
    # DeepMind's checkpoint holds 12,689,984 parameters (BN without scale); ours adds the
    # 7,280 BN scales (fixed at 1 when converted): 12.7 M as published.
    n = sum(p.numel() for p in actionrec.create_model("i3d").parameters())
    assert n == 12_689_984 + 7_280


def test_tf_same_padding():
    assert same_padding(224, 7, 2) == (2, 3)
    assert same_padding(225, 7, 2) == (3, 3)
    assert same_padding(16, 3, 1) == (1, 1)
    assert same_padding(7, 2, 2) == (0, 1)


@pytest.mark.parametrize("in_channels", [3, 2])
def test_forward_shapes_gradients_determinism(in_channels):
    torch.manual_seed(0)
    model = actionrec.create_model("i3d", in_channels=in_channels, num_classes=6)
    assert model.meta.modality == ("rgb" if in_channels == 3 else "flow")
    x = torch.randn(2, in_channels, 8, 64, 64)
    y = model(x)
    assert y.shape == (2, 6)
    y.sum().backward()
    assert model.Conv3d_1a_7x7.conv3d.weight.grad is not None
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_real_input_size_64x224():
    model = actionrec.create_model("i3d").eval()
    with torch.no_grad():
        y = model(torch.randn(1, 3, 64, 224, 224))
    assert y.shape == (1, 400)


def test_finetune_head_and_freeze():
    model = actionrec.create_model("i3d")
    replace_head(model, 101)
    assert model.meta.num_classes == 101
    trainable = freeze(model, ["logits", "Mixed_5"])
    assert trainable and all(n.startswith(("logits", "Mixed_5")) for n in trainable)
    assert not model.Mixed_4f.b0.conv3d.weight.requires_grad
    assert model.logits.conv3d.weight.shape[0] == 101
    with pytest.raises(ValueError, match="no parameter"):
        freeze(model, ["nothing_here"])


def test_googlenet_inflation_gives_2d_features_on_a_static_video():
    """A video of one repeated image through the inflated I3D equals torchvision's GoogLeNet on that image.

    torchvision 0.29.1's googlenet was run on RNG-free weights (recorded in the JSON). At 223×223
    PyTorch's symmetric padding and TF "SAME" padding coincide; the centre of a 96-frame clip is
    out of reach of the temporal zero padding.
    """
    ref = json.loads((DATA / "reference" / "torchvision_googlenet.json").read_text())
    sd2 = deterministic_state(
        {k: torch.zeros(s, dtype=torch.long if k.endswith("num_batches_tracked") else torch.float32) for k, s in ref["keys"]}
    )
    model = actionrec.create_model("i3d").eval()
    model.load_state_dict(inflate_googlenet(sd2, model))
    img = deterministic_input(tuple(ref["image_shape"]))
    with torch.no_grad():
        f = model.features(img[:, :, None].repeat(1, 1, 96, 1, 1))[0]
    t = f.shape[1] // 2
    assert (f[:, t].mean(dim=(1, 2)) - torch.tensor(ref["inception5b_mean"])).abs().max() < 1e-5
    assert (f[:, t, 3, 3] - torch.tensor(ref["inception5b_center"])).abs().max() < 1e-5


def test_two_stream_late_fusion():
    from actionrec.models.two_stream import TwoStream

    torch.manual_seed(0)
    rgb = actionrec.create_model("i3d", num_classes=4).eval()
    flow = actionrec.create_model("i3d", in_channels=2, num_classes=4).eval()
    x_rgb, x_flow = torch.randn(1, 3, 8, 64, 64), torch.randn(1, 2, 8, 64, 64)
    with torch.no_grad():
        joint = TwoStream(rgb, flow, weights=(1.0, 1.5))(x_rgb, x_flow)
        assert torch.allclose(joint, rgb(x_rgb) + 1.5 * flow(x_flow))
        probs = TwoStream(rgb, flow, mode="softmax")(x_rgb, x_flow)
        assert torch.allclose(probs.sum(-1), torch.ones(1))
    with pytest.raises(ValueError, match="different classes"):
        TwoStream(rgb, actionrec.create_model("i3d", in_channels=2, num_classes=5))
