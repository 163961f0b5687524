"""Weights and inputs drawn from a seed derived from each tensor's source key name and shape.

Shared by the tests and by the scripts that recorded the peers' outputs (``tools/record_*.py``):
the same key and shape give the same values in any install, so a test can rebuild a peer's
checkpoint from the recorded key list alone. Plain numpy (no RNG stream whose algorithm could
change between versions): ``sin`` of a seeded arithmetic sequence.
"""

from __future__ import annotations

import math
import zlib

import numpy as np


def _wave(key: str, shape: tuple[int, ...]) -> np.ndarray:
    seed = zlib.crc32(f"{key}|{tuple(int(s) for s in shape)}".encode())
    step = 1.0 + (seed % 9973) / 9973.0  # in [1, 2): consecutive values decorrelate
    phase = (seed >> 8) / float(1 << 24) * 2 * math.pi
    return np.sin(np.arange(math.prod(shape), dtype=np.float64) * step * 7.3 + phase).reshape(shape)


def seeded_array(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """A float32 (int64 for ``num_batches_tracked``) array for parameter ``key`` of ``shape``.

    Roles follow the key's last part: BN variances in [0.5, 1.5], means and biases ±0.1,
    BN scales in [0.8, 1.2], weights of fan-in ``f`` uniform-like with std ≈ ``sqrt(1/f)``.
    """
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return np.zeros(shape, dtype=np.int64)
    s = _wave(key, shape)
    if leaf in ("running_var", "moving_variance"):
        v = 1.0 + 0.5 * s
    elif leaf in ("running_mean", "moving_mean", "bias", "beta"):
        v = 0.1 * s
    elif len(shape) == 1:  # BN scale (weight / gamma)
        v = 1.0 + 0.2 * s
    else:
        v = s * math.sqrt(1.5 / math.prod(shape[1:]))
    return v.astype(np.float32)


def seeded_input(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    """A float32 input clip in about [-1, 1]."""
    return _wave(f"input{seed}", shape).astype(np.float32)
