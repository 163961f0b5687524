"""Weights and inputs drawn from a seed derived from each tensor's source key name and shape.

Shared by the tests and by the scripts that recorded the peers' outputs (``tools/record_*.py``):
the same key and shape give the same values in any install, so a test can rebuild a peer's
checkpoint from the recorded key list alone. Plain numpy (no RNG stream whose algorithm could
change between versions): ``sin`` of a seeded arithmetic sequence, or (``noise=True``) a counter hash.

``sin`` of an arithmetic sequence makes every weight matrix rank 2 (``sin(a + b·(i·n + j))`` splits into
two products of a function of ``i`` and one of ``j``) and a sinusoid of an input; a deep network of such
weights (X3D) gives logits that are almost the head's bias alone. ``noise=True`` gives full-rank values:
SplitMix64 of the element index (exact integer arithmetic, the same bits on any machine).
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


_M64 = (1 << 64) - 1


def _noise(key: str, shape: tuple[int, ...]) -> np.ndarray:
    """Values uniform in [-1, 1) from SplitMix64 of (seed, element index): full rank, bit-exact everywhere."""
    seed = zlib.crc32(f"{key}|{tuple(int(s) for s in shape)}".encode())
    z = np.arange(math.prod(shape), dtype=np.uint64) * np.uint64(0x9E3779B97F4A7C15) + np.uint64(seed * 0xD1B54A32D192ED03 & _M64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    return ((z >> np.uint64(11)).astype(np.float64) / float(1 << 53) * 2.0 - 1.0).reshape(shape)


def seeded_array(key: str, shape: tuple[int, ...], *, noise: bool = False) -> np.ndarray:
    """A float32 (int64 for ``num_batches_tracked``) array for parameter ``key`` of ``shape``.

    Roles follow the key's last part: BN variances in [0.5, 1.5], means and biases ±0.1,
    BN scales in [0.8, 1.2], weights of fan-in ``f`` uniform-like with std ≈ ``sqrt(1/f)``
    (with ``noise``: uniform, variance exactly ``1/f``).
    """
    leaf = key.rsplit(".", 1)[-1]
    if leaf == "num_batches_tracked":
        return np.zeros(shape, dtype=np.int64)
    s = _noise(key, shape) if noise else _wave(key, shape)
    if leaf in ("running_var", "moving_variance"):
        v = 1.0 + 0.5 * s
    elif leaf in ("running_mean", "moving_mean", "bias", "beta"):
        v = 0.1 * s
    elif len(shape) == 1:  # BN scale (weight / gamma)
        v = 1.0 + 0.2 * s
    else:
        v = s * math.sqrt((3.0 if noise else 1.5) / math.prod(shape[1:]))
    return v.astype(np.float32)


def seeded_input(shape: tuple[int, ...], seed: int = 0, *, noise: bool = False) -> np.ndarray:
    """A float32 input clip in about [-1, 1] (``noise``: uniform in [-1, 1))."""
    return (_noise if noise else _wave)(f"input{seed}", shape).astype(np.float32)
