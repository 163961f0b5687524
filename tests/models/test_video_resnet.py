import json

import pytest
import torch

import actionrec
from actionrec.models.video_resnet import midplanes_2plus1d
from tests.conftest import DATA
from tests.models.detparams import deterministic_input, deterministic_state

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)

REF = json.loads((DATA / "reference" / "torchvision_video_resnets.json").read_text())

# Published parameter counts (torchvision weight metadata; GluonCV's table gives 61.8 M for R(2+1)D-34).
PUBLISHED_PARAMS = {"r2plus1d_18": 31_505_325, "r3d_18": 33_371_472, "mc3_18": 11_695_440}


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameter_counts_match_published(name):
    model = actionrec.create_model(name)
    assert sum(p.numel() for p in model.parameters()) == PUBLISHED_PARAMS[name]


def test_r2plus1d_34_parameters_match_gluoncv():
    n = sum(p.numel() for p in actionrec.create_model("r2plus1d_34").parameters())
    assert round(n / 1e6, 1) == 61.8


@pytest.mark.parametrize("name", sorted(REF["models"]))
def test_state_dict_is_torchvisions_key_for_key(name):
    ours = [[k, list(v.shape)] for k, v in actionrec.create_model(name).state_dict().items()]
    assert ours == REF["models"][name]["keys"]


@pytest.mark.parametrize("name", sorted(REF["models"]))
def test_same_logits_as_torchvision(name):
    """torchvision's outputs were recorded for RNG-free weights; ours must agree to float precision."""
    model = actionrec.create_model(name).eval()
    model.load_state_dict(deterministic_state(model.state_dict()), strict=True)
    with torch.no_grad():
        y = model(deterministic_input(tuple(REF["input_shape"])))[0]
    ref = torch.tensor(REF["models"][name]["logits"])
    assert (y - ref).abs().max().item() < 1e-4


def test_midplanes_rule():
    # M = floor(t d^2 Nin Nout / (d^2 Nin + t Nout)), e.g. the 64→128 block of layer2 has 230.
    assert midplanes_2plus1d(64, 128) == 230
    assert midplanes_2plus1d(64, 64) == 144
    assert midplanes_2plus1d(256, 512) == 921
    assert midplanes_2plus1d(512, 512) == 1152


@pytest.mark.parametrize("name", ["r2plus1d_18", "r3d_18", "mc3_18", "r2plus1d_34"])
def test_forward_shapes_gradients_and_eval_determinism(name):
    torch.manual_seed(0)
    model = actionrec.create_model(name, num_classes=7, widths=(8, 16, 32, 64))
    x = torch.randn(2, 3, 8, 32, 32)
    y = model(x)
    assert y.shape == (2, 7)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_flow_input_channels():
    model = actionrec.create_model("r2plus1d_18", in_channels=2, num_classes=5, widths=(8, 16, 32, 64))
    assert model.meta.modality == "flow"
    assert model(torch.randn(1, 2, 4, 32, 32)).shape == (1, 5)


@pytest.mark.slow
def test_r2plus1d_34_at_real_input_size():
    model = actionrec.create_model("r2plus1d_34", num_classes=101).eval()
    with torch.no_grad():
        y = model(torch.randn(1, *model.meta.input_shape(1)[1:]))
    assert y.shape == (1, 101) and torch.isfinite(y).all()
