"""Distributed training helpers: set up from ``torchrun`` environment variables, gather results.

Launched plainly (``actionrec train cfg.yaml``) everything runs in one process. Launched with
``torchrun --nproc_per_node=N [--nnodes=M --node_rank=R --rdzv_endpoint=HOST:PORT]``, the
variables ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` are set and a process group is created:
NCCL on CUDA (one GPU per process, ``cuda:LOCAL_RANK``), gloo on CPU.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)

__all__ = ["DistInfo", "init_distributed", "shutdown", "all_gather_objects", "all_reduce_mean", "barrier", "resolve_device"]


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(name: str, local_rank: int = 0) -> torch.device:
    """The training device (see :func:`actionrec.runtime.resolve_device`: ``cuda``/``auto`` → ``cuda:LOCAL_RANK``)."""
    from actionrec.runtime import resolve_device as pick

    return torch.device(pick(name, local_rank=local_rank))


def init_distributed(device: str = "auto") -> DistInfo:
    """Create the process group if launched by torchrun; return this process's :class:`DistInfo`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device, local_rank)
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(backend=backend)
        log.info("distributed: rank %d/%d (local %d), backend %s, device %s", rank, world, local_rank, backend, dev)
    elif dev.type == "cuda":
        torch.cuda.set_device(dev)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def all_gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj`` (picklable, produced by this program), in rank order; ``[obj]`` alone."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def all_reduce_mean(values: list[float], device: torch.device) -> list[float]:
    """Mean of each value over ranks (identity when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(values)
    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return (t / dist.get_world_size()).tolist()
