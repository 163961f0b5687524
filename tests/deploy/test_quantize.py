import json

import onnx
import pytest
import torch

from actionrec.data.transforms import build_transform
from actionrec.data.video import open_video
from actionrec.deploy.clips import collect_clips
from actionrec.deploy.onnx_export import export_onnx
from actionrec.deploy.backends import load_backend
from actionrec.deploy.quantize import quantize_onnx, quantize_torch, stem_convs, top1_agreement
from tests.deploy.conftest import tiny_model

# `numerics` (rerun by .ci/run with another host's kernels, AVX2) marks the tests whose figures come from torch; the
# ONNX Runtime int8 test is not rerun: those variables do not switch ONNX Runtime's kernels.

DATA = __import__("pathlib").Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def model_and_clips():
    model = tiny_model("r2plus1d_18", clip_len=8, size=32)
    clips = collect_clips([DATA / "short.mp4", DATA / "xvid.avi"], model.meta, step=8)
    return model, clips


@pytest.mark.numerics
def test_real_clips_are_preprocessed_like_meta_says(model_and_clips):
    model, clips = model_and_clips
    frames = open_video(DATA / "short.mp4").read_all()
    assert frames.shape == (32, 256, 340, 3) and frames.dtype.name == "uint8"
    # 32 frames → 4 windows; the 164-frame AVI → 20 windows of 8
    assert clips.shape == (4 + 20, 3, 8, 32, 32)
    video = build_transform(model.meta.preprocess, train=False)(frames[:8])  # as predict/eval prepare clips
    assert torch.equal(video, clips[0])
    p = model.meta.preprocess
    lo = (0 - max(p.mean)) / min(p.std)
    hi = (1 - min(p.mean)) / min(p.std)
    assert lo - 1e-5 <= float(clips.min()) and float(clips.max()) <= hi + 1e-5
    assert float(clips.std()) > 0.1  # real content, not a constant


def test_onnx_int8_is_calibrated_and_reports_agreement(tmp_path, model_and_clips):
    model, clips = model_and_clips
    fp32 = tmp_path / "m.onnx"
    export_onnx(model, fp32, example=clips[:1])
    report = quantize_onnx(fp32, tmp_path / "m.int8.onnx", clips=clips, max_calib=6)
    assert report.calib_windows == 6 and report.eval_windows == 24 and report.heldout_windows == 18
    assert 0.0 <= report.top1_agreement <= 1.0
    assert 0 < report.max_abs_diff < 0.2  # int8 changes the logits, but not wildly (measured ~0.05)
    assert "top-1 agrees" in report.summary()
    m = onnx.load(str(tmp_path / "m.int8.onnx"))
    ops = {n.op_type for n in m.graph.node}
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    # the stem convolution reads the raw input and stays fp32; every other convolution is quantised
    stem = stem_convs(onnx.load(str(fp32)).graph)
    assert len(stem) == 1
    dq_out = {o for n in m.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
    convs = {n.name: n for n in m.graph.node if n.op_type == "Conv"}
    assert not dq_out.intersection(convs[stem[0]].input)
    assert all(dq_out.intersection(c.input) for name, c in convs.items() if name != stem[0])
    props = {p.key: p.value for p in m.metadata_props}
    assert json.loads(props["int8"])["top1_agreement"] == report.top1_agreement
    q = load_backend(tmp_path / "m.int8.onnx")
    assert q.meta.arch == "r2plus1d_18"
    agree, diff, same = top1_agreement(load_backend(fp32), q, clips)
    assert agree == pytest.approx(report.top1_agreement) and same.shape == (24,)
    qo = q(clips)
    assert float(qo.std(0).max()) > 0.02  # the int8 output still follows its input (not a constant)


@pytest.mark.numerics
def test_torch_int8(model_and_clips):
    model, clips = model_and_clips
    qmodel, report = quantize_torch(model, clips=clips, max_calib=4)
    assert any("quantized" in type(m).__module__ for m in qmodel.modules())
    assert report.eval_windows == 24 and 0 < report.max_abs_diff < 0.2
    out = load_backend(qmodel, optimize=False)(clips)
    assert out.shape == (24, 5) and float(out.std(0).max()) > 0.02


@pytest.mark.numerics
def test_torch_int8_traces_i3d():
    """I3D's shape-dependent "SAME" padding stays an opaque call under FX, so I3D quantises too."""
    model = tiny_model("i3d", clip_len=16, size=64)
    clips = collect_clips([DATA / "short.mp4"], model.meta, step=8)[:4]
    qmodel, report = quantize_torch(model, clips=clips, max_calib=2, batch=2)
    assert sum("quantized" in type(m).__module__ for m in qmodel.modules()) > 50  # the convolutions
    assert report.eval_windows == len(clips) == 3 and report.max_abs_diff < 0.1
    with torch.inference_mode():
        assert torch.allclose(qmodel(clips[:1]), model(clips[:1]), atol=0.1)


def test_flow_models_need_precomputed_inputs():
    model = tiny_model("i3d", in_channels=2)
    with pytest.raises(ValueError, match="flow models"):
        collect_clips([DATA / "short.mp4"], model.meta)
