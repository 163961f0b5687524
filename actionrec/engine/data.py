"""From a :class:`~actionrec.config.DataConfig` to samples, datasets and deterministic loaders."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Subset
from torch.utils.data.distributed import DistributedSampler

from actionrec.config import ConfigError, DataConfig
from actionrec.errors import UsageError
from actionrec.meta import OVERRIDABLE, Preprocess
from actionrec.runtime import worker_init

log = logging.getLogger(__name__)

__all__ = ["preprocess_changes", "load_split", "build_dataset", "train_loader", "eval_loader"]


def preprocess_changes(data: DataConfig) -> dict[str, int | None]:
    """The preprocessing a recipe's data section sets (for :meth:`~actionrec.meta.Preprocess.override`)."""
    return {name: getattr(data, name) for name in OVERRIDABLE}


def _resolve_path(value: str | None, root: Path, field: str) -> str | None:
    if value is None:
        return None
    p = Path(value).expanduser()
    if p.exists():
        return str(p)
    if not p.is_absolute() and (root / p).exists():
        return str(root / p)
    raise ConfigError(f"{field}: no such file or directory {value!r} (also tried {str(root / p)!r})")


def load_split(data: DataConfig, subset: str, *, classes: list[str] | None = None,
               left_out: Any = None) -> tuple[list[Any], list[str]]:
    """``(samples, class_names)`` of ``subset`` ("train" | "val" | "test"); clear errors for bad paths.

    ``classes``: the model's class names, which label-name formats (``csv``) match their labels to;
    ``left_out``: a :class:`~actionrec.data.annotations.LeftOut` to record what was left out.
    """
    from actionrec.data.annotations import load_samples
    from actionrec.data.formats import FORMATS

    if not data.root:
        raise ConfigError("data.root is not set (the directory holding the videos)")
    root = Path(data.root).expanduser()
    if not root.is_dir():
        raise ConfigError(f"data.root: no such directory {data.root!r}")
    annotations = data.annotations
    if FORMATS.get(data.format).list_files:
        field = "data.train_list" if subset == "train" else "data.val_list"
        annotations = data.train_list if subset == "train" else data.val_list
        if annotations is None:
            raise ConfigError(f"{field} is not set (data.format is {data.format!r})")
        annotations = _resolve_path(annotations, root, field)
    else:
        annotations = _resolve_path(annotations, root, "data.annotations")
    samples, class_names = load_samples(
        data.format,
        root=str(root),
        annotations=annotations,
        split=data.split,
        subset=subset,
        val_fraction=data.val_fraction,
        classes=classes,
        left_out=left_out,
    )
    if not samples:
        raise UsageError(f"empty dataset: no {subset} videos found (format {data.format!r}, root {data.root!r}, list {annotations!r})")
    return list(samples), list(class_names)


def build_dataset(
    samples: list[Any], preprocess: Preprocess, data: DataConfig, *, train: bool, num_clips: int = 1, num_crops: int = 1, seed: int = 0
) -> Dataset:
    from actionrec.data.dataset import VideoClipDataset

    return VideoClipDataset(
        samples,
        preprocess=preprocess,
        modality=data.modality,
        train=train,
        num_clips=num_clips,
        num_crops=num_crops,
        root=data.root,
        seed=seed,
        flip=data.hflip,
    )


def _collate(batch: list[Any]) -> tuple[Any, int]:
    """``(batch or None, n_skipped)`` where batch is ``(clips, labels)`` or ``(views, labels, indices)``."""
    from actionrec.data.dataset import collate_skip_bad

    out = collate_skip_bad(batch)
    *items, n_bad = out
    if len(items) == 1 and items[0] is None:
        return None, int(n_bad)
    return tuple(items), int(n_bad)


def train_loader(
    dataset: Dataset, *, batch_size: int, num_workers: int, seed: int, epoch: int, rank: int = 0, world_size: int = 1
) -> DataLoader:
    """A loader whose order and augmentation depend only on ``(seed, epoch, rank)``.

    The sampler shuffles with ``seed + epoch``; worker processes get seeds drawn from a generator
    seeded the same way, so a resumed run sees exactly the batches of an uninterrupted one.
    """
    sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=False)
    sampler.set_epoch(epoch)
    if hasattr(dataset, "set_epoch"):
        dataset.set_epoch(epoch)
    gen = torch.Generator()
    gen.manual_seed(seed * 100_003 + epoch * 1_009 + rank)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=_collate,
        generator=gen,
        drop_last=False,
        persistent_workers=False,
        worker_init_fn=worker_init,  # one thread each: the processes are the parallelism
    )


def eval_loader(dataset: Dataset, *, batch_size: int, num_workers: int, rank: int = 0, world_size: int = 1) -> DataLoader:
    """Sequential loader over this rank's share (``rank::world_size``) of ``dataset``."""
    part = Subset(dataset, list(range(rank, len(dataset), world_size))) if world_size > 1 else dataset
    return DataLoader(part, batch_size=batch_size, shuffle=False, num_workers=num_workers, collate_fn=_collate,
                      worker_init_fn=worker_init)
