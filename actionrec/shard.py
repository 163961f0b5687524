"""Splitting a collection over machines: ``--shard i/N`` or ``--shard auto`` (from the launcher).

Every job that walks a collection (``prep frames|flow``, ``predict`` over many videos) takes the
same option, so a collection too large for one machine is split the same way everywhere: the
items are sorted, and shard ``i`` of ``N`` takes every N-th item starting at ``i``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TypeVar

from actionrec.errors import UsageError

__all__ = ["parse_shard", "take_shard", "shard_from_env"]

T = TypeVar("T")

# (index variable, count variable), most specific first: SLURM array jobs, then torchrun, then SLURM tasks.
_LAUNCHER_VARS = (
    ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_COUNT"),
    ("RANK", "WORLD_SIZE"),
    ("SLURM_PROCID", "SLURM_NTASKS"),
)


def shard_from_env(env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """The shard a launcher assigned to this process: torchrun (``RANK``/``WORLD_SIZE``), SLURM tasks
    (``SLURM_PROCID``/``SLURM_NTASKS``) or SLURM array jobs (``SLURM_ARRAY_TASK_ID``/``SLURM_ARRAY_TASK_COUNT``,
    array indices assumed to start at ``SLURM_ARRAY_TASK_MIN``, default 0). ``(0, 1)`` when none is set."""
    env = os.environ if env is None else env
    for i_var, n_var in _LAUNCHER_VARS:
        if i_var in env and n_var in env:
            try:
                i, n = int(env[i_var]), int(env[n_var])
                if i_var == "SLURM_ARRAY_TASK_ID":
                    i -= int(env.get("SLURM_ARRAY_TASK_MIN", "0"))
            except ValueError:
                raise UsageError(f"--shard auto: {i_var}={env[i_var]!r}, {n_var}={env[n_var]!r} are not integers") from None
            if n < 1 or not 0 <= i < n:
                raise UsageError(f"--shard auto: {i_var}={env[i_var]} is not a shard of {n_var}={env[n_var]}")
            return i, n
    return 0, 1


def parse_shard(text: str | None, env: Mapping[str, str] | None = None) -> tuple[int, int]:
    """``"i/N"`` (0-based i) → (i, N); ``"auto"`` → :func:`shard_from_env`; ``None`` → (0, 1)."""
    if text is None:
        return 0, 1
    if text == "auto":
        return shard_from_env(env)
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise UsageError(f"--shard must look like i/N (e.g. 0/4) or 'auto', got {text!r}") from None
    if n < 1 or not 0 <= i < n:
        raise UsageError(f"--shard {text}: need N ≥ 1 and 0 ≤ i < N (shards are numbered from 0)")
    return i, n


def take_shard(items: Sequence[T], shard: tuple[int, int]) -> list[T]:
    """Every N-th item starting at i (items should be sorted, so all machines agree)."""
    i, n = shard
    return list(items[i::n])
