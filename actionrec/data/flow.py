"""Optical flow: computing it (TV-L1 on OpenCV or PyTorch, DIS, Farneback) and storing it as 8-bit images.

Storage convention (mmaction2 / denseflow, used by ``actionrec prep flow``): each component is
clipped to ``[-bound, bound]`` (bound = 20 px) and mapped linearly to ``[0, 255]``:
``v = round((f + 20) * 255 / 40)``, so 127.5 means no motion. Two JPEGs per frame pair,
``flow_x_00001.jpg`` and ``flow_y_00001.jpg`` (pair 1 = frames 1→2).

DeepMind's I3D convention truncates flow to ``[-20, 20]`` and divides by 20, giving ``[-1, 1]``.
The two agree: ``v / 255 * 2 - 1`` recovers DeepMind's input up to 8-bit quantisation, which is
what normalising with mean = std = 0.5 does. So I3D flow models expect stored flow with
``Preprocess(mean=(0.5,), std=(0.5,))``; the same images serve mmaction2-style models.

Algorithms are a registry, :data:`FLOW_ALGORITHMS` (name → :class:`FlowAlgorithm`); every one
computes a batch of grayscale pairs, uint8 ``(N, H, W)`` twice → float32 ``(N, H, W, 2)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING

from actionrec.errors import UsageError
from actionrec.registry import Registry

if TYPE_CHECKING:  # numpy is imported where used: `actionrec prep --help` lists the algorithms without it
    import numpy as np

FLOW_BOUND = 20.0

FlowFn = Callable[["np.ndarray", "np.ndarray"], "np.ndarray"]
"""``(prev, next)`` uint8 grayscale ``(N, H, W)`` → flow float32 ``(N, H, W, 2)`` in pixels (x, y)."""


@dataclasses.dataclass(frozen=True)
class FlowOptions:
    """What a flow algorithm may be configured with; each uses the fields that concern it."""

    tvl1_scales: int | None = None  # TV-L1 pyramid levels (None: OpenCV's default, 5)
    tvl1_warps: int | None = None  # TV-L1 warpings per level (None: OpenCV's default, 5)
    dis_preset: str = "medium"
    device: str = "cpu"  # torch algorithms: where to compute ("cpu", "cuda", "cuda:1")


@dataclasses.dataclass(frozen=True)
class FlowAlgorithm:
    """A registered flow algorithm: ``build(options) -> FlowFn``.

    ``batched``: it computes many pairs at once on a device (``actionrec prep flow`` feeds it
    batches of same-size pairs from one process); otherwise it computes one pair at a time on one
    core, and ``prep flow`` runs a pool of worker processes.
    """

    build: Callable[[FlowOptions], FlowFn]
    batched: bool
    summary: str


FLOW_ALGORITHMS: Registry[FlowAlgorithm] = Registry("flow algorithm", hint="see `actionrec prep flow --help`")


def register_flow(name: str, *, batched: bool, summary: str) -> Callable:
    """Decorator adding ``build(options) -> FlowFn`` to :data:`FLOW_ALGORITHMS` as ``name`` (a taken name raises)."""

    def add(build: Callable[[FlowOptions], FlowFn]) -> Callable[[FlowOptions], FlowFn]:
        FLOW_ALGORITHMS.register(name, FlowAlgorithm(build=build, batched=batched, summary=summary))
        return build

    return add


def quantize_flow(flow: np.ndarray, *, bound: float = FLOW_BOUND) -> np.ndarray:
    """float (..., 2) pixels → uint8 (..., 2) with ±bound → [0, 255]."""
    import numpy as np

    scaled = (np.clip(flow, -bound, bound) + bound) * (255.0 / (2 * bound))
    return np.round(scaled).astype(np.uint8)


def dequantize_flow(flow_u8: np.ndarray, *, bound: float = FLOW_BOUND) -> np.ndarray:
    """uint8 → float32 pixels in [-bound, bound]."""
    import numpy as np

    return flow_u8.astype(np.float32) * (2 * bound / 255.0) - bound


def to_deepmind_range(flow_u8: np.ndarray) -> np.ndarray:
    """uint8 stored flow → DeepMind's I3D input range [-1, 1] (truncated at ±20 px, divided by 20)."""
    import numpy as np

    return flow_u8.astype(np.float32) / 127.5 - 1.0


def to_gray(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB (H, W, 3) → uint8 luma (H, W): BT.601 weights, rounded as OpenCV (and JPEG decoders) do."""
    import cv2

    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


def _pairs(prev: np.ndarray, nxt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    import numpy as np

    a, b = np.asarray(prev), np.asarray(nxt)
    if a.ndim != 3 or a.dtype != np.uint8 or a.shape != b.shape or b.dtype != np.uint8:
        raise UsageError(f"flow needs two uint8 grayscale batches (N, H, W) of one shape, got {a.dtype} {a.shape} "
                         f"and {b.dtype} {b.shape}")
    return np.ascontiguousarray(a), np.ascontiguousarray(b)


def _per_pair(calc: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> FlowFn:
    def fn(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        import numpy as np

        a, b = _pairs(prev, nxt)
        return np.stack([calc(x, y) for x, y in zip(a, b)]) if len(a) else np.zeros((*a.shape, 2), np.float32)

    return fn


@register_flow("tvl1", batched=False, summary="OpenCV's Dual TV-L1 (the I3D reference), one pair per core")
def _tvl1_opencv(opts: FlowOptions) -> FlowFn:
    import cv2

    if not hasattr(cv2, "optflow"):
        raise RuntimeError("TV-L1 needs opencv-contrib-python(-headless): cv2.optflow is missing")
    tv = cv2.optflow.DualTVL1OpticalFlow_create()
    scales = tv.getScalesNumber() if opts.tvl1_scales is None else int(opts.tvl1_scales)
    if opts.tvl1_warps is not None:
        tv.setWarpingsNumber(int(opts.tvl1_warps))

    def calc(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        tv.setScalesNumber(scales)  # OpenCV lowers it for good after a frame too small for all levels
        return tv.calc(a, b, None)

    return _per_pair(calc)


@register_flow("tvl1-torch", batched=True,
               summary="the same TV-L1 in PyTorch, batches of pairs on a GPU (--device cuda) or the CPU")
def _tvl1_torch(opts: FlowOptions) -> FlowFn:
    import numpy as np
    import torch

    from actionrec.data.tvl1 import TVL1Params, tvl1_flow

    params = TVL1Params.opencv()
    if opts.tvl1_scales is not None:
        params = dataclasses.replace(params, scales_number=int(opts.tvl1_scales))
    if opts.tvl1_warps is not None:
        params = dataclasses.replace(params, warpings_number=int(opts.tvl1_warps))
    params.validate()
    device = torch.device(opts.device)

    def fn(prev: np.ndarray, nxt: np.ndarray) -> np.ndarray:
        a, b = _pairs(prev, nxt)
        if not len(a):
            return np.zeros((*a.shape, 2), np.float32)
        flow = tvl1_flow(torch.from_numpy(a).to(device), torch.from_numpy(b).to(device), params=params)
        return flow.cpu().numpy()

    return fn


@register_flow("dis", batched=False, summary="OpenCV's DIS: 100-1000x faster than TV-L1, for demos and tests")
def _dis(opts: FlowOptions) -> FlowFn:
    import cv2

    presets = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
               "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}
    if opts.dis_preset not in presets:
        raise UsageError(f"dis_preset must be one of {sorted(presets)}, got {opts.dis_preset!r}")
    dis = cv2.DISOpticalFlow_create(presets[opts.dis_preset])
    return _per_pair(lambda a, b: dis.calc(a, b, None))


@register_flow("farneback", batched=False, summary="OpenCV's Farneback")
def _farneback(opts: FlowOptions) -> FlowFn:
    import cv2

    return _per_pair(lambda a, b: cv2.calcOpticalFlowFarneback(a, b, None, 0.5, 3, 15, 3, 5, 1.2, 0))


def make_flow_fn(algo: str = "tvl1", options: FlowOptions | None = None, **kwargs) -> FlowFn:
    """The batch function of a registered algorithm (see :data:`FLOW_ALGORITHMS`).

    Options come as a :class:`FlowOptions` or as its fields (``make_flow_fn("tvl1", tvl1_scales=3)``).
    ``tvl1``: OpenCV's Dual TV-L1 (``cv2.optflow``, the I3D reference; ~1 pair/s per core at
    224²). ``tvl1-torch``: the same algorithm in PyTorch (:mod:`actionrec.data.tvl1`).
    ``tvl1_scales``/``tvl1_warps`` lower TV-L1's cost (5/5 by default). ``dis``: DIS
    (``ultrafast``/``fast``/``medium``). ``farneback``.
    """
    return FLOW_ALGORITHMS.get(algo).build(dataclasses.replace(options or FlowOptions(), **kwargs))
