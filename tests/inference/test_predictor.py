"""actionrec.Predictor: one video and many, torch and ONNX Runtime, fixed-length exports, bad output."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

import actionrec
from actionrec.checkpoint import save_model
from actionrec.data.video import open_video
from actionrec.deploy.onnx_export import export_onnx
from actionrec.inference import ModelOutputError
from tests.deploy.conftest import tiny_model

DATA = Path(__file__).resolve().parents[1] / "data"
CLIPS = ["h264.mp4", "short.mp4", "xvid.avi", "rot90.mov", "cricket_rgb.gif"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("predictor")
    model = tiny_model("r2plus1d_18", clip_len=8, size=32)
    ckpt = save_model(model, d / "m.safetensors")
    fixed = d / "fixed.onnx"  # clip length fixed at 8, as I3D's export is
    export_onnx(model, fixed, example=torch.randn(1, 3, 8, 32, 32), dynamic_time=False)
    return model, ckpt, fixed


def test_torch_and_onnxruntime_agree_on_real_videos(files):
    model, ckpt, fixed = files
    pt = actionrec.Predictor(ckpt, threads=1)
    ort = actionrec.Predictor(fixed, threads=1)
    assert pt.backend.backend == "torch" and ort.backend.backend == "onnxruntime" and ort.backend.fixed_clip_len == 8
    for name in CLIPS:  # every clip, whatever its length, gets clips of the exported length
        a, b = pt.predict(DATA / name, topk=5), ort.predict(DATA / name, topk=5)
        assert a.error is None and a.clips >= 1 and a.duration > 0 and not a.truncated
        assert np.abs(a.probs - b.probs).max() < 1e-4, name
        assert [lab for lab, _ in a.topk] == [lab for lab, _ in b.topk]
        assert a.topk[0][1] >= a.topk[-1][1] and abs(a.probs.sum() - 1) < 1e-6
    d = a.to_dict()
    assert set(d) == {"video", "predictions", "clips", "duration", "truncated"} and len(d["predictions"]) == 5


def test_steps_compose_and_arrays_equal_files(files):
    model, ckpt, _ = files
    p = actionrec.Predictor(model, threads=1, num_clips=2)
    clips = p.pipeline.load(DATA / "short.mp4")
    assert clips.tensor.shape == (2, 3, 8, 32, 32) and clips.n_frames == 32 and len(clips.indices) == 2
    logits = p.forward(clips.tensor)
    assert logits.shape == (2, 5) and logits.dtype == torch.float32
    by_steps = p.postprocess(logits, clips, topk=2)
    frames = open_video(DATA / "short.mp4").read_all()
    by_array = p.predict(frames, topk=2)
    assert np.allclose(by_steps.probs, by_array.probs, atol=1e-6) and by_array.video is None
    assert by_steps.topk == p.predict(DATA / "short.mp4", topk=2).topk


def test_predict_many_batches_across_videos_keeps_order_and_reports_errors(files, tmp_path):
    model, ckpt, _ = files
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.mp4").write_text("not a video")
    paths = [DATA / "h264.mp4", tmp_path / "empty.mp4", DATA / "short.mp4", tmp_path / "missing.mp4",
             DATA / "corrupt.mp4", tmp_path / "text.mp4", DATA / "xvid.avi"]
    p = actionrec.Predictor(ckpt, threads=1)
    alone = {str(v): p.predict(v) for v in (DATA / "h264.mp4", DATA / "short.mp4", DATA / "xvid.avi")}
    for workers, batch in ((0, 3), (1, 7)):
        preds = list(p.predict_many(paths, workers=workers, batch_size=batch))
        assert [r.video for r in preds] == [str(v) for v in paths]
        errors = {r.video: r.error for r in preds if r.error}
        assert set(errors) == {str(tmp_path / n) for n in ("empty.mp4", "missing.mp4", "text.mp4")}
        assert all(Path(v).name in e for v, e in errors.items())  # each error names its file
        for r in preds:
            if r.video in alone:
                assert np.allclose(r.probs, alone[r.video].probs, atol=1e-5)
        corrupt = preds[4]  # decoding breaks after 28 frames: scored on what decodes
        assert corrupt.error is None and corrupt.truncated and corrupt.clips >= 1


def test_bad_values_and_non_finite_output(files, caplog):
    model, ckpt, fixed = files
    with pytest.raises(ValueError, match="exported for clips of 8 frames"):
        actionrec.Predictor(fixed, clip_len=16, threads=1)
    with caplog.at_level(logging.WARNING):
        p = actionrec.Predictor(ckpt, threads=1, resize_short=48, crop_size=40)
    assert "resize_short=48 overrides the model's resize_short=37" in caplog.text
    assert p.pipeline.load(DATA / "short.mp4").tensor.shape[-1] == 40
    for kwargs, match in (({"num_clips": 0}, "num_clips"), ({"num_clips": 10**6}, "num_clips"), ({"num_crops": 2}, "num_crops"),
                          ({"threads": 0}, "threads"), ({"batch_size": 0}, "batch_size"), ({"crop_size": 64}, "resize_short"),
                          ({"backend": "tf"}, "unknown backend"), ({"stride": 2}, "unknown preprocessing")):
        with pytest.raises(ValueError, match=match):
            actionrec.Predictor(ckpt, **{"threads": 1, **kwargs})
    p = actionrec.Predictor(ckpt, threads=1)
    with pytest.raises(ValueError, match=r"topk must be an integer in \[1, 10000\]"):
        p.predict(DATA / "short.mp4", topk=0)
    assert len(p.predict(DATA / "short.mp4", topk=9).topk) == 5  # capped at the number of classes
    with pytest.raises(ValueError, match="workers"):
        list(p.predict_many([DATA / "short.mp4"], workers=-1))
    with pytest.raises(FileNotFoundError, match="missing.mp4"):
        p.predict(DATA / "missing.mp4")
    with pytest.raises(FileNotFoundError, match="model file not found: nothere.onnx"):
        actionrec.Predictor("nothere.onnx")
    broken = tiny_model("r2plus1d_18", clip_len=8, size=32)
    with torch.no_grad():
        broken.fc.weight.fill_(float("nan"))
    with pytest.raises(ModelOutputError, match=r"r2plus1d_18: the model produced non-finite scores .*short\.mp4"):
        actionrec.Predictor(broken, threads=1, optimize=False).predict(DATA / "short.mp4")
