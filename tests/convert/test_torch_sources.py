"""torchvision, GluonCV and pytorch-i3d checkpoints convert into our models with identical outputs."""

import re
import subprocess
import sys

import pytest
import torch

import actionrec
from actionrec.checkpoint import CheckpointError, load_state_dict_checked
from actionrec.convert import convert_checkpoint
from actionrec.models.video_resnet import midplanes_2plus1d

# `numerics` (rerun by .ci/run with another host's kernels, AVX2) marks the tests that compare logits; the error
# and CLI tests are not rerun.


def _randomise_bn(model):
    torch.manual_seed(0)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm3d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


@pytest.mark.numerics
@pytest.mark.parametrize("arch", ["r2plus1d_18", "r3d_18", "mc3_18"])
def test_torchvision_pth_converts_with_arch_inferred(tmp_path, arch):
    ref = _randomise_bn(actionrec.create_model(arch))
    torch.save(ref.state_dict(), tmp_path / "tv.pth")
    model = convert_checkpoint(tmp_path / "tv.pth", tmp_path / "ours.safetensors", source="torchvision")
    assert model.meta.arch == arch and model.meta.class_names[0] == "abseiling"
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))
    again = actionrec.load_model(tmp_path / "ours.safetensors")
    with torch.no_grad():
        assert torch.equal(again(x), ref(x))


def _gluoncv_r2plus1d_keys(layers):
    """Key → shape of GluonCV's ``R2Plus1D`` (gluoncv/torch/model_zoo/action_recognition/r2plus1dv1.py)."""
    def bn(prefix, c):
        return {f"{prefix}.weight": (c,), f"{prefix}.bias": (c,), f"{prefix}.running_mean": (c,), f"{prefix}.running_var": (c,), f"{prefix}.num_batches_tracked": ()}

    keys = {"conv1.weight": (45, 3, 1, 7, 7), **bn("bn1", 45), "conv2.weight": (64, 45, 3, 1, 1), **bn("bn2", 64)}
    inplanes = 64
    for i, (planes, n) in enumerate(zip((64, 128, 256, 512), layers), start=1):
        for j in range(n):
            p = f"layer{i}.{j}"
            mid = midplanes_2plus1d(inplanes, planes)
            keys |= {f"{p}.conv1.conv1.weight": (mid, inplanes, 1, 3, 3), **bn(f"{p}.conv1.bn1", mid), f"{p}.conv1.conv2.weight": (planes, mid, 3, 1, 1)}
            keys |= bn(f"{p}.bn1", planes)
            keys |= {f"{p}.conv2.conv1.weight": (mid, planes, 1, 3, 3), **bn(f"{p}.conv2.bn1", mid), f"{p}.conv2.conv2.weight": (planes, mid, 3, 1, 1)}
            keys |= bn(f"{p}.bn2", planes)
            if j == 0 and i > 1:
                keys |= {f"{p}.downsample.0.weight": (planes, inplanes, 1, 1, 1), **bn(f"{p}.downsample.1", planes)}
            inplanes = planes
    return keys | {"fc.weight": (400, 512), "fc.bias": (400,)}


@pytest.mark.numerics
@pytest.mark.parametrize("layers,arch", [((2, 2, 2, 2), "r2plus1d_18"), ((3, 4, 6, 3), "r2plus1d_34")])
def test_gluoncv_r2plus1d_converts(tmp_path, layers, arch):
    torch.manual_seed(0)
    sd = {k: (torch.randn(s) if s else torch.tensor(0)) for k, s in _gluoncv_r2plus1d_keys(layers).items()}
    for k in sd:
        if k.endswith("running_var"):
            sd[k] = sd[k].abs() + 0.5
    torch.save({"state_dict": sd}, tmp_path / "gcv.pth")
    model = convert_checkpoint(tmp_path / "gcv.pth", tmp_path / "ours.safetensors", source="gluoncv")
    assert model.meta.arch == arch
    ours = model.state_dict()
    assert torch.equal(ours["stem.3.weight"], sd["conv2.weight"])
    assert torch.equal(ours["layer1.0.conv1.0.3.weight"], sd["layer1.0.conv1.conv2.weight"])
    assert torch.equal(ours["layer2.0.conv2.1.running_var"], sd["layer2.0.bn2.running_var"])


@pytest.mark.numerics
def test_piergiaj_i3d_converts_without_num_batches_tracked(tmp_path):
    ref = _randomise_bn(actionrec.create_model("i3d", in_channels=2))
    sd = {k: v for k, v in ref.state_dict().items() if not k.endswith("num_batches_tracked")}  # PyTorch 0.3 era
    torch.save(sd, tmp_path / "flow_imagenet.pt")
    model = convert_checkpoint(tmp_path / "flow_imagenet.pt", tmp_path / "ours.safetensors", source="piergiaj")
    assert model.meta.modality == "flow"
    x = torch.randn(1, 2, 8, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x), ref(x))


def test_misfit_checkpoint_names_keys_and_shapes():
    small = actionrec.create_model("r2plus1d_18", num_classes=10)
    other = actionrec.create_model("r3d_18", num_classes=400)
    with pytest.raises(CheckpointError) as e:
        load_state_dict_checked(small, other.state_dict(), source="x.pth")
    msg = str(e.value)
    assert "missing keys: layer1.0.conv1.0.0.weight" in msg and "in all)" in msg
    assert "fc.weight: checkpoint (400, 512) vs model (10, 512)" in msg


def test_wrong_source_is_a_clear_error(tmp_path):
    torch.save(actionrec.create_model("mc3_18").state_dict(), tmp_path / "tv.pth")
    with pytest.raises(ValueError, match="not piergiaj weights.*it looks like --from torchvision"):
        convert_checkpoint(tmp_path / "tv.pth", tmp_path / "o.safetensors", source="piergiaj")


def test_cli_convert_and_info(tmp_path):
    torch.save(actionrec.create_model("mc3_18").state_dict(), tmp_path / "tv.pth")
    run = lambda *a: subprocess.run([sys.executable, "-m", "actionrec.cli", *a], capture_output=True, text=True)
    ok = run("convert", str(tmp_path / "tv.pth"), "-o", str(tmp_path / "mc3.safetensors"), "--from", "torchvision")
    assert ok.returncode == 0, ok.stderr
    info = run("info", str(tmp_path / "mc3.safetensors"), "--json")
    assert info.returncode == 0 and '"params": 11695440' in info.stdout
    bad = run("convert", str(tmp_path / "missing.pth"), "-o", str(tmp_path / "x.safetensors"), "--from", "torchvision")
    assert bad.returncode == 2 and "missing.pth: no such file" in bad.stderr and "Traceback" not in bad.stderr


def test_info_gflops_match_torchvision():
    from actionrec.models.cli import model_info

    info = model_info(actionrec.create_model("r2plus1d_18"))
    assert re.match(r"40\.5", f"{info['gmacs']:.2f}")
