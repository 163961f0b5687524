"""The real-weight case: DeepMind's I3D (converted) exported to ONNX ranks the cricket clip as DeepMind did."""

import pytest
import torch

from actionrec.factory import load_model
from actionrec.deploy.onnx_export import export_onnx, read_onnx_meta
from actionrec.deploy.backends import load_backend


def test_converted_i3d_onnx_gives_deepminds_ranking(tmp_path, i3d_kinetics_ckpt, cricket_clip, cricket_expected):
    model = load_model(i3d_kinetics_ckpt)
    out = tmp_path / "i3d.onnx"
    report = export_onnx(model, out, example=cricket_clip)  # the real input: 79 frames, 224², [-1, 1]
    assert report.max_abs_diff <= 1e-3
    assert read_onnx_meta(out).class_names[:2] == ["abseiling", "air drumming"]

    pred = load_backend(out, backend="onnxruntime")
    assert pred.backend == "onnxruntime"
    logits = pred(cricket_clip)[0]
    top5 = [pred.meta.label(i) for i in logits.topk(5).indices.tolist()]
    assert top5 == [label for _, _, label in cricket_expected[:5]]
    # the GIF's palette costs a little: DeepMind's top-1 logit is 19.49 from the float input, ours 17.64
    assert float(logits.max()) == pytest.approx(17.64, abs=0.05)
    assert float(torch.softmax(logits, 0).max()) == pytest.approx(0.989, abs=3e-3)
