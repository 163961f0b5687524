"""Optical flow: computing it (TV-L1, DIS, Farneback) and storing it as 8-bit images.

Storage convention (mmaction2 / denseflow, used by ``actionrec prep flow``): each component is
clipped to ``[-bound, bound]`` (bound = 20 px) and mapped linearly to ``[0, 255]``:
``v = round((f + 20) * 255 / 40)``, so 127.5 means no motion. Two JPEGs per frame pair,
``flow_x_00001.jpg`` and ``flow_y_00001.jpg`` (pair 1 = frames 1→2).

DeepMind's I3D convention truncates flow to ``[-20, 20]`` and divides by 20, giving ``[-1, 1]``.
The two agree: ``v / 255 * 2 - 1`` recovers DeepMind's input up to 8-bit quantisation, which is
what normalising with mean = std = 0.5 does. So I3D flow models expect stored flow with
``Preprocess(mean=(0.5,), std=(0.5,))``; the same images serve mmaction2-style models.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from actionrec.errors import UsageError

FLOW_BOUND = 20.0
ALGOS = ("tvl1", "dis", "farneback")


def quantize_flow(flow: np.ndarray, *, bound: float = FLOW_BOUND) -> np.ndarray:
    """float (H, W, 2) pixels → uint8 (H, W, 2) with ±bound → [0, 255]."""
    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))
    return np.round(scaled).astype(np.uint8)


def dequantize_flow(flow_u8: np.ndarray, *, bound: float = FLOW_BOUND) -> np.ndarray:
    """uint8 → float32 pixels in [-bound, bound]."""
    return flow_u8.astype(np.float32) * (2 * bound / 255.0) - bound


def to_deepmind_range(flow_u8: np.ndarray) -> np.ndarray:
    """uint8 stored flow → DeepMind's I3D input range [-1, 1] (truncated at ±20 px, divided by 20)."""
    return flow_u8.astype(np.float32) / 127.5 - 1.0


def _c(a: np.ndarray) -> np.ndarray:
    if a.ndim != 2 or a.dtype != np.uint8:
        raise UsageError(f"flow needs grayscale uint8 frames (H, W), got {a.dtype} {a.shape}")
    return np.ascontiguousarray(a)


def make_flow_fn(algo: str = "tvl1", *, tvl1_scales: int | None = None, tvl1_warps: int | None = None,
                 dis_preset: str = "medium") -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """A function ``(prev_gray, next_gray) -> flow float32 (H, W, 2)`` for one uint8 frame pair.

    ``tvl1``: OpenCV's Dual TV-L1 (``cv2.optflow``, the I3D reference; ~1 pair/s per core at
    224²). ``tvl1_scales``/``tvl1_warps`` lower its cost (5/5 by default). ``dis``: DIS
    (``ultrafast``/``fast``/``medium``), 100-1000× faster, for demos and tests. ``farneback``.
    """
    import cv2

    if algo == "tvl1":
        if not hasattr(cv2, "optflow"):
            raise RuntimeError("TV-L1 needs opencv-contrib-python(-headless): cv2.optflow is missing")
        tv = cv2.optflow.DualTVL1OpticalFlow_create()
        if tvl1_scales is not None:
            tv.setScalesNumber(int(tvl1_scales))
        if tvl1_warps is not None:
            tv.setWarpingsNumber(int(tvl1_warps))
        return lambda a, b: tv.calc(_c(a), _c(b), None)
    if algo == "dis":
        presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                   "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
        if dis_preset not in presets:
            raise UsageError(f"dis_preset must be one of {sorted(presets)}, got {dis_preset!r}")
        dis = cv2.DISOpticalFlow_create(presets[dis_preset])
        return lambda a, b: dis.calc(_c(a), _c(b), None)
    if algo == "farneback":
        return lambda a, b: cv2.calcOpticalFlowFarneback(_c(a), _c(b), None, 0.5, 3, 15, 3, 5, 1.2, 0)
    raise UsageError(f"unknown flow algorithm {algo!r}; choose from {', '.join(ALGOS)}")
