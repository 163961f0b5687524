"""tvl1-torch against OpenCV's DualTVL1OpticalFlow: its parts, ground-truth accuracy, agreement on real frames."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from actionrec.data import tvl1
from actionrec.data.flow import quantize_flow, to_gray
from actionrec.data.tvl1 import TVL1Params, tvl1_flow
from actionrec.data.video import VideoReader
from actionrec.errors import UsageError

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)

DATA = Path(__file__).resolve().parent.parent / "data"
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _opencv(a: np.ndarray, b: np.ndarray, **settings) -> np.ndarray:
    tv = cv2.optflow.DualTVL1OpticalFlow_create()
    for name, value in settings.items():
        getattr(tv, f"set{name}")(value)
    return np.stack([tv.calc(x, y, None) for x, y in zip(a, b)])


def _torch(a: np.ndarray, b: np.ndarray, **kw) -> np.ndarray:
    return tvl1_flow(torch.from_numpy(a), torch.from_numpy(b), **kw).numpy()


def _epe(f: np.ndarray, g: np.ndarray) -> np.ndarray:
    return np.linalg.norm(f - g, axis=-1)


@pytest.fixture(scope="module")
def real_pairs() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Two consecutive grayscale frames of two test clips at their own size: (prev, next), (1, H, W) uint8 each."""
    out = {}
    for name, start in (("h264.mp4", 120), ("xvid.avi", 60)):
        gray = np.stack([to_gray(f) for f in VideoReader(DATA / name).get_frames(range(start, start + 2))])
        out[name] = (gray[:-1], gray[1:])
    return out


def test_parameters_are_read_from_opencv():
    tv = cv2.optflow.DualTVL1OpticalFlow_create()
    p = TVL1Params.opencv()
    assert (p.tau, p.lambda_, p.theta, p.gamma, p.epsilon, p.scale_step) == (
        tv.getTau(), tv.getLambda(), tv.getTheta(), tv.getGamma(), tv.getEpsilon(), tv.getScaleStep())
    assert (p.scales_number, p.warpings_number, p.inner_iterations, p.outer_iterations, p.median_filtering) == (
        tv.getScalesNumber(), tv.getWarpingsNumber(), tv.getInnerIterations(), tv.getOuterIterations(),
        tv.getMedianFiltering())
    tv.setTau(0.2)
    tv.setWarpingsNumber(3)
    assert TVL1Params.opencv(tv) == dataclasses.replace(p, tau=0.2, warpings_number=3)


def test_image_operations_match_opencv():
    rng = np.random.default_rng(0)
    img = (rng.random((61, 83)) * 255).astype(np.float32)
    t = torch.from_numpy(img)[None, None]
    small = cv2.resize(img, None, fx=0.8, fy=0.8, interpolation=cv2.INTER_LINEAR)
    np.testing.assert_allclose(tvl1._downscale(t, 0.8)[0, 0].numpy(), small, atol=1e-3)
    np.testing.assert_allclose(tvl1._resize_to(torch.from_numpy(small)[None, None], (61, 83))[0, 0].numpy(),
                               cv2.resize(small, (83, 61), interpolation=cv2.INTER_LINEAR), atol=1e-3)
    flow = rng.normal(0, 3, (61, 83, 2)).astype(np.float32)  # reaches outside the image at the borders
    xs, ys = np.meshgrid(np.arange(83, dtype=np.float32), np.arange(61, dtype=np.float32))
    ref = cv2.remap(img, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_CUBIC)
    base = torch.stack([torch.from_numpy(xs), torch.from_numpy(ys)])[None]
    warped = tvl1._warp_cubic(t, torch.from_numpy(flow).permute(2, 0, 1)[None], base)[0, 0].numpy()
    np.testing.assert_allclose(warped, ref, atol=5e-3)
    for k in (3, 5):  # exactly OpenCV's median, borders included
        np.testing.assert_array_equal(tvl1._median(t, k)[0, 0].numpy(), cv2.medianBlur(img, k))


def _smooth_field(h: int, w: int) -> np.ndarray:
    """A smooth displacement field (H, W, 2): a translation plus a rotation-like swirl and waves, up to ~4 px."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = (w - 1) / 2, (h - 1) / 2
    fx = 1.5 + 0.012 * (ys - cy) + 0.8 * np.sin(2 * np.pi * ys / h)
    fy = -0.7 - 0.012 * (xs - cx) + 0.6 * np.cos(2 * np.pi * xs / w)
    return np.stack([fx, fy], -1).astype(np.float32)


@pytest.mark.parametrize("size", [(224, 224), pytest.param((256, 340), marks=pytest.mark.slow)], ids=["224x224", "256x340"])
def test_accuracy_on_a_known_displacement(size):
    """A real frame I1 and I0(x) = I1(x + f(x)): the true flow from I0 to I1 is f."""
    h, w = size
    rgb = VideoReader(DATA / "h264.mp4").get_frames([150])[0]
    i1 = cv2.resize(to_gray(rgb), (w, h), interpolation=cv2.INTER_AREA)
    f = _smooth_field(h, w)
    xs, ys = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    i0 = cv2.remap(i1, xs + f[..., 0], ys + f[..., 1], cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
    inner = (slice(8, -8), slice(8, -8))  # the border, where I0 had no source, is left out
    ours = _epe(_torch(i0[None], i1[None])[0], f)[inner].mean()
    theirs = _epe(_opencv(i0[None], i1[None])[0], f)[inner].mean()
    assert ours <= 1.1 * theirs, f"average end-point error {ours:.4f} px, OpenCV {theirs:.4f} px"
    assert ours < 0.5


def test_agreement_with_opencv_on_real_frames(real_pairs):
    motion = []
    for name, (a, b) in real_pairs.items():
        ours, theirs = _torch(a, b), _opencv(a, b)
        epd = _epe(ours, theirs).mean()
        levels = np.abs(quantize_flow(ours).astype(int) - quantize_flow(theirs).astype(int))
        within = (levels <= 2).all(-1).mean()
        assert epd <= 0.05, f"{name}: mean end-point difference {epd:.4f} px"
        assert within >= 0.99, f"{name}: {within:.2%} of pixels within ±2 levels"
        motion.append(np.linalg.norm(theirs, axis=-1).mean())
    assert max(motion) > 0.5  # there is motion to agree on (h264.mp4: 1.1 px on average; xvid.avi: a still pair)


@pytest.mark.slow
def test_batch_members_are_independent(real_pairs, monkeypatch):
    """Each pair stops on its own: in a batch (also with the GPU's masked steps) it gets its flow alone."""
    (a0, b0), (a1, b1) = (tuple(x[:, :64, :80] for x in real_pairs[n]) for n in ("h264.mp4", "xvid.avi"))
    a, b = np.concatenate([a0, b0, a1]), np.concatenate([b0, a0, b1])
    p = dataclasses.replace(TVL1Params.opencv(), scales_number=3, warpings_number=2)
    alone = np.concatenate([_torch(a[i:i + 1], b[i:i + 1], params=p) for i in range(len(a))])
    np.testing.assert_allclose(_torch(a, b, params=p), alone, atol=1e-5)
    monkeypatch.setitem(tvl1._CHECK_EVERY, "cpu", 7)  # look every 7 steps, masking finished pairs in between
    np.testing.assert_allclose(_torch(a, b, params=p), alone, atol=1e-5)


def test_options_as_opencv(real_pairs):
    """Other settings, the illumination term (gamma) and an initial flow give OpenCV's results too."""
    a, b = (x[:1, ::2, ::2].copy() for x in real_pairs["xvid.avi"])
    p = dataclasses.replace(TVL1Params.opencv(), gamma=0.1, scales_number=3, warpings_number=2, median_filtering=3)
    ours = _torch(a, b, params=p)
    theirs = _opencv(a, b, Gamma=0.1, ScalesNumber=3, WarpingsNumber=2, MedianFiltering=3)
    assert _epe(ours, theirs).mean() < 0.05

    init = np.full((1, *a.shape[1:], 2), 0.5, np.float32)
    tv = cv2.optflow.DualTVL1OpticalFlow_create()
    tv.setUseInitialFlow(True)
    tv.setScalesNumber(2)
    theirs = tv.calc(a[0], b[0], init[0].copy())[None]
    ours = _torch(a, b, params=dataclasses.replace(TVL1Params.opencv(), scales_number=2), init_flow=torch.from_numpy(init))
    assert _epe(ours, theirs).mean() < 0.05


def test_small_frames_and_bad_input():
    rng = np.random.default_rng(1)
    a = cv2.GaussianBlur((rng.random((20, 24)) * 255).astype(np.uint8), (5, 5), 1)
    b = np.roll(a, 1, axis=1)
    # 20x24 → 16x19 → 13x15: OpenCV stops at the first level under 16 px
    assert _epe(_torch(a[None], b[None]), _opencv(a[None], b[None])).mean() < 0.05
    with pytest.raises(UsageError, match="same shape"):
        tvl1_flow(torch.zeros(1, 8, 8, dtype=torch.uint8), torch.zeros(1, 8, 9, dtype=torch.uint8))
    with pytest.raises(UsageError, match="uint8"):
        tvl1_flow(torch.zeros(1, 8, 8, dtype=torch.int32), torch.zeros(1, 8, 8, dtype=torch.int32))
    with pytest.raises(UsageError, match="3×3"):
        tvl1_flow(torch.zeros(1, 2, 8, dtype=torch.uint8), torch.zeros(1, 2, 8, dtype=torch.uint8))
    with pytest.raises(UsageError, match="median_filtering"):
        tvl1_flow(torch.zeros(1, 8, 8, dtype=torch.uint8), torch.zeros(1, 8, 8, dtype=torch.uint8),
                  params=dataclasses.replace(TVL1Params.opencv(), median_filtering=4))


@pytest.mark.gpu
@cuda
def test_cuda_matches_the_cpu(real_pairs):
    a, b = real_pairs["h264.mp4"]
    on_gpu = tvl1_flow(torch.from_numpy(a).cuda(), torch.from_numpy(b).cuda()).cpu().numpy()
    assert _epe(on_gpu, _torch(a, b)).mean() < 0.05
    assert _epe(on_gpu, _opencv(a, b)).mean() < 0.05
