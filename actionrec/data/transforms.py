"""Clip transforms on uint8 frames ``(T, H, W, C)``, applied to the whole clip at once.

``build_transform`` makes the standard pipelines from a model's :class:`~actionrec.meta.Preprocess`:

- train: resize the short side to ``resize_short`` (or a random size in ``scale_jitter`` × that),
  random ``crop_size`` square crop, random horizontal flip, normalise.
- eval: resize, centre crop (``num_crops=1``) or three crops along the long side (``num_crops=3``),
  normalise.

Normalising maps ``x / 255`` through ``(x - mean) / std``; I3D's [-1, 1] range is mean = std = 0.5.
Flipping flow negates its x component: stored flow is 8-bit with 127.5 = 0, so x becomes ``255 - x``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from actionrec.errors import UsageError
from actionrec.meta import Preprocess


def _check_frames(frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.dtype != np.uint8:
        desc = f"{type(frames).__name__} {getattr(frames, 'dtype', '')} {getattr(frames, 'shape', '')}"
        raise UsageError(f"expected uint8 frames of shape (T, H, W, C), got {desc}")


def resize_short(frames: np.ndarray, size: int) -> np.ndarray:
    """Resize so that the short side is ``size`` (aspect kept, bilinear): (T, H, W, C) → (T, H', W', C)."""
    import cv2

    _check_frames(frames)
    t, h, w, c = frames.shape
    if min(h, w) == size:
        return frames
    if h <= w:
        nh, nw = size, max(1, int(round(w * size / h)))
    else:
        nh, nw = max(1, int(round(h * size / w))), size
    out = np.empty((t, nh, nw, c), dtype=np.uint8)
    for i in range(t):
        r = cv2.resize(frames[i], (nw, nh), interpolation=cv2.INTER_LINEAR)
        out[i] = r.reshape(nh, nw, c)
    return out


def _crop_check(frames: np.ndarray, size: int) -> tuple[int, int]:
    h, w = frames.shape[1:3]
    if h < size or w < size:
        raise UsageError(f"cannot crop {size}x{size} from frames of {h}x{w}: resize_short must be ≥ crop_size")
    return h, w


def center_crop(frames: np.ndarray, size: int) -> np.ndarray:
    h, w = _crop_check(frames, size)
    y, x = (h - size) // 2, (w - size) // 2
    return frames[:, y:y + size, x:x + size]


def random_crop(frames: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    h, w = _crop_check(frames, size)
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return frames[:, y:y + size, x:x + size]


def three_crop(frames: np.ndarray, size: int) -> list[np.ndarray]:
    """Start, centre and end squares along the long side (left/centre/right for landscape)."""
    h, w = _crop_check(frames, size)
    if w >= h:
        y = (h - size) // 2
        return [frames[:, y:y + size, x:x + size] for x in (0, (w - size) // 2, w - size)]
    x = (w - size) // 2
    return [frames[:, y:y + size, x:x + size] for y in (0, (h - size) // 2, h - size)]


def hflip(frames: np.ndarray, *, modality: str = "rgb") -> np.ndarray:
    """Mirror left-right; for flow (x, y) the x component changes sign (``255 - x`` in 8-bit storage)."""
    out = frames[:, :, ::-1]
    if modality == "flow":
        out = out.copy()
        out[..., 0] = 255 - out[..., 0]
    return out


def to_tensor(frames: np.ndarray, *, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """uint8 (T, H, W, C) → float32 (C, T, H, W), ``(x / 255 - mean) / std`` per channel."""
    c = frames.shape[-1]
    mean_t, std_t = _channel_stats(mean, std, c)
    t = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2).to(torch.float32).div_(255.0)
    return t.sub_(mean_t.view(c, 1, 1, 1)).div_(std_t.view(c, 1, 1, 1)).contiguous()


def _channel_stats(mean: Sequence[float], std: Sequence[float], c: int) -> tuple[torch.Tensor, torch.Tensor]:
    def fit(v: Sequence[float], name: str) -> torch.Tensor:
        v = list(v)
        if len(v) == c:
            return torch.tensor(v, dtype=torch.float32)
        if len(set(v)) == 1:  # one value for all channels (e.g. I3D's 0.5 for rgb and flow)
            return torch.full((c,), float(v[0]))
        if c == 2 and len(v) == 3:
            raise UsageError(f"{name} has 3 per-channel values {v} but flow has 2 channels: give 2 values or one")
        raise UsageError(f"{name} has {len(v)} values, frames have {c} channels")

    m, s = fit(mean, "mean"), fit(std, "std")
    if (s <= 0).any():
        raise UsageError(f"std must be positive, got {list(std)}")
    return m, s


class ClipTransform:
    """Callable: uint8 (T, H, W, C) → float32 (C, T, H, W), or (3, C, T, H, W) with three crops.

    Randomness (train) comes from the ``rng`` argument, or a fresh generator when it is omitted.
    """

    def __init__(self, preprocess: Preprocess, *, train: bool, modality: str = "rgb", num_crops: int = 1,
                 scale_jitter: tuple[float, float] | None = None, flip: bool = True) -> None:
        if modality not in ("rgb", "flow"):
            raise UsageError(f"modality must be 'rgb' or 'flow', got {modality!r}")
        if num_crops not in (1, 3):
            raise UsageError(f"num_crops must be 1 or 3, got {num_crops}")
        if preprocess.resize_short < preprocess.crop_size:
            raise UsageError(f"resize_short ({preprocess.resize_short}) must be ≥ crop_size ({preprocess.crop_size})")
        if scale_jitter is not None and not (0 < scale_jitter[0] <= scale_jitter[1]):
            raise UsageError(f"scale_jitter must be (low, high) with 0 < low <= high, got {scale_jitter}")
        self.p = preprocess
        self.train, self.modality, self.num_crops = train, modality, num_crops
        self.scale_jitter, self.flip = scale_jitter, flip
        self.channels = 2 if modality == "flow" else 3
        _channel_stats(preprocess.mean, preprocess.std, self.channels)  # fail early

    def __call__(self, frames: np.ndarray, rng: np.random.Generator | None = None) -> torch.Tensor:
        _check_frames(frames)
        if frames.shape[-1] != self.channels:
            raise UsageError(f"{self.modality} frames need {self.channels} channels, got shape {frames.shape}")
        p = self.p
        norm = dict(mean=p.mean, std=p.std)
        if not self.train:
            frames = resize_short(frames, p.resize_short)
            if self.num_crops == 1:
                return to_tensor(center_crop(frames, p.crop_size), **norm)
            return torch.stack([to_tensor(c, **norm) for c in three_crop(frames, p.crop_size)])
        rng = rng if rng is not None else np.random.default_rng()
        size = p.resize_short
        if self.scale_jitter is not None:
            lo, hi = self.scale_jitter
            size = max(p.crop_size, int(round(p.resize_short * rng.uniform(lo, hi))))
        frames = random_crop(resize_short(frames, size), p.crop_size, rng)
        if self.flip and rng.random() < 0.5:
            frames = hflip(frames, modality=self.modality)
        return to_tensor(frames, **norm)


def build_transform(preprocess: Preprocess, *, train: bool, modality: str = "rgb", num_crops: int = 1,
                    scale_jitter: tuple[float, float] | None = None, flip: bool = True) -> ClipTransform:
    """The standard train or eval transform for a model's preprocessing (see the module docstring)."""
    return ClipTransform(preprocess, train=train, modality=modality, num_crops=num_crops,
                         scale_jitter=scale_jitter, flip=flip)
