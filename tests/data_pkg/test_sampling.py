"""Clip indices: one formula, one rule for short videos, the same clips everywhere."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from actionrec.data.annotations import Sample
from actionrec.data.dataset import VideoClipDataset
from actionrec.data.pipeline import ClipPipeline
from actionrec.data.sampling import RandomClipSampler, clip_indices, clip_span, uniform_clips, window_starts
from actionrec.meta import ModelMeta


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 3000), clip_len=st.integers(1, 64), stride=st.integers(1, 8), num_clips=st.integers(1, 12))
def test_any_frame_count_gives_ordered_in_range_clips_of_length_L(n, clip_len, stride, num_clips):
    clips = uniform_clips(n, num_clips=num_clips, clip_len=clip_len, stride=stride)
    assert len(clips) == num_clips
    for c in clips:
        assert c.shape == (clip_len,) and c.dtype == np.int64
        assert c.min() >= 0 and c.max() < n
        assert (np.diff(c) >= 0).all()
        if n >= clip_span(clip_len, stride):  # fits: exactly `stride` apart
            assert (np.diff(c) == stride).all()
    starts = [int(c[0]) for c in clips]
    assert starts == sorted(starts)
    (r,) = RandomClipSampler(clip_len, stride)(n, np.random.default_rng(n))
    assert len(r) == clip_len and 0 <= r.min() and r.max() < n and (np.diff(r) >= 0).all()


def test_span_formula_and_short_rule():
    assert clip_span(16, 2) == 31 and clip_span(1, 5) == 1
    assert clip_indices(0, 31, clip_len=16, stride=2).tolist() == list(range(0, 31, 2))  # exactly fits
    assert clip_indices(0, 30, clip_len=16, stride=2).tolist() == np.round(np.linspace(0, 29, 16)).astype(int).tolist()
    assert clip_indices(0, 5, clip_len=8, stride=2).tolist() == [0, 1, 1, 2, 2, 3, 3, 4]  # spread, in order
    assert [int(c[0]) for c in uniform_clips(100, num_clips=3, clip_len=4, stride=2)] == [15, 46, 77]
    assert list(window_starts(20, clip_len=4, stride=2, step=5)) == [0, 5, 10]
    assert list(window_starts(6, clip_len=4, stride=2, step=5)) == []
    with pytest.raises(ValueError, match="≥ 1"):
        clip_span(0, 1)
    with pytest.raises(ValueError, match="frames"):
        clip_indices(0, 0, clip_len=4, stride=1)


def test_dataset_predict_stream_and_calibration_use_the_same_clips(data_dir, monkeypatch):
    """For one meta: the eval dataset and predict load the same views; stream's windows and the int8
    calibration windows are the pipeline's windows; all frames come through the same transform."""
    from actionrec.deploy import clips as calib
    from actionrec.engine.stream import iter_frames, stream_predictions
    from actionrec.inference import Predictor
    from tests.deploy.conftest import tiny_model

    model = tiny_model("r2plus1d_18", clip_len=4, size=32)
    model.meta.preprocess.frame_stride = 3
    meta: ModelMeta = model.meta
    video = data_dir / "short.mp4"  # 32 frames
    pred = Predictor(model, threads=1, num_clips=3)
    loaded = pred.pipeline.load(video)
    ds = VideoClipDataset([Sample(str(video), 0)], preprocess=meta.preprocess, train=False, num_clips=3)
    assert torch.equal(ds[0][0], loaded.tensor)  # dataset == predict (same indices, same transform)
    assert [c.tolist() for c in loaded.indices] == [c.tolist() for c in uniform_clips(32, num_clips=3, clip_len=4, stride=3)]

    seen: list[list[int]] = []
    real_load = ClipPipeline._load

    def spy(self, video, sampler, *, fps):  # noqa: ANN001, ANN202
        out = real_load(self, video, sampler, fps=fps)
        seen.extend(c.tolist() for c in out.indices)
        return out

    monkeypatch.setattr(ClipPipeline, "_load", spy)
    x = calib.collect_clips([video], meta, step=5)
    windows = [pred.pipeline.window(s, 32).tolist() for s in window_starts(32, clip_len=4, stride=3, step=5)]
    assert seen == windows and len(x) == len(windows) == 5  # starts 0, 5, 10, 15, 20 (span 10)

    frames, fps = iter_frames(str(video))
    logits_at: list[int] = []
    real_forward = pred.forward

    def forward(t):  # noqa: ANN001, ANN202
        logits_at.append(len(logits_at))
        return real_forward(t)

    pred.forward = forward
    events = list(stream_predictions(pred, frames, fps=fps, step=5, smooth=1))
    assert [e.frame - 9 for e in events] == [w[0] for w in windows]  # window = frames start .. start + span - 1
    # the stream's window tensor equals calibration's window tensor
    all_frames = __import__("actionrec.data.video", fromlist=["open_video"]).open_video(video).read_all()
    assert torch.equal(pred.pipeline.transform(all_frames[windows[1]])[0], x[1])
