"""Clip sampling and transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from actionrec.data.sampling import RandomClipSampler, UniformClipSampler
from actionrec.data.transforms import build_transform, hflip, resize_short, three_crop
from actionrec.meta import Preprocess


def test_random_clip_stays_inside_and_varies():
    s = RandomClipSampler(16, 2)
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(50):
        (c,) = s(100, rng)
        assert len(c) == 16 and c.min() >= 0 and c.max() < 100 and (np.diff(c) == 2).all()
        starts.add(int(c[0]))
    assert len(starts) > 10


def test_short_videos_spread_the_clip_over_the_video():
    (c,) = RandomClipSampler(8, 2)(5, np.random.default_rng(0))
    assert c.tolist() == [0, 1, 1, 2, 2, 3, 3, 4]


def test_uniform_clips_are_spread_and_deterministic():
    clips = UniformClipSampler(3, 4, 2)(100)
    assert [int(c[0]) for c in clips] == [15, 46, 77]
    assert [c.tolist() for c in clips] == [c.tolist() for c in UniformClipSampler(3, 4, 2)(100)]
    (centre,) = UniformClipSampler(1, 16)(116)
    assert centre[0] == 50


def test_resize_and_crops():
    f = np.random.default_rng(0).integers(0, 256, (4, 240, 320, 3), dtype=np.uint8)
    r = resize_short(f, 128)
    assert r.shape == (4, 128, 171, 3)
    crops = three_crop(r, 112)
    assert [c.shape for c in crops] == [(4, 112, 112, 3)] * 3
    np.testing.assert_array_equal(crops[2], r[:, 8:120, 59:171])


def test_eval_transform_shapes_and_normalisation():
    pre = Preprocess(clip_len=4, resize_short=128, crop_size=112, mean=(0.5,), std=(0.5,))
    f = np.full((4, 240, 320, 3), 255, np.uint8)
    t = build_transform(pre, train=False)(f)
    assert t.shape == (3, 4, 112, 112) and t.dtype == torch.float32 and torch.allclose(t, torch.ones(()))
    t3 = build_transform(pre, train=False, num_crops=3)(f)
    assert t3.shape == (3, 3, 4, 112, 112)
    default = build_transform(Preprocess(), train=False)(np.zeros((16, 128, 171, 3), np.uint8))
    assert torch.allclose(default[0], torch.tensor(-0.43216 / 0.22803))


def test_train_transform_is_seeded_and_flips():
    pre = Preprocess(clip_len=2, resize_short=64, crop_size=56)
    f = np.random.default_rng(1).integers(0, 256, (2, 64, 80, 3), dtype=np.uint8)
    tr = build_transform(pre, train=True, scale_jitter=(1.0, 1.25))
    a = tr(f, np.random.default_rng(5))
    b = tr(f, np.random.default_rng(5))
    assert a.shape == (3, 2, 56, 56) and torch.equal(a, b)
    outs = {tuple(tr(f, np.random.default_rng(s)).flatten()[:5].tolist()) for s in range(10)}
    assert len(outs) > 3


def test_flow_flip_negates_x():
    f = np.zeros((1, 2, 3, 2), np.uint8)
    f[..., 0] = [[0, 100, 200], [10, 20, 30]]
    f[..., 1] = 77
    out = hflip(f, modality="flow")
    assert out[0, 0, :, 0].tolist() == [55, 155, 255]  # 255 - x, mirrored
    assert (out[..., 1] == 77).all()
    pre = Preprocess(clip_len=1, resize_short=3, crop_size=2, mean=(0.5, 0.5), std=(0.5, 0.5))
    t = build_transform(pre, train=False, modality="flow")(np.full((1, 3, 4, 2), 255, np.uint8))
    assert t.shape == (2, 1, 2, 2)
    with pytest.raises(ValueError, match="flow has 2 channels"):
        build_transform(Preprocess(), train=True, modality="flow")


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="uint8"):
        build_transform(Preprocess(), train=False)(np.zeros((2, 128, 128, 3), np.float32))
    with pytest.raises(ValueError, match="resize_short"):
        build_transform(Preprocess(resize_short=100, crop_size=112), train=False)
