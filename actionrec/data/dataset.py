"""A PyTorch dataset of clips from videos or frame folders, robust to bad files.

Train items: ``(clip float32 (C, T, H, W), label)``, one random clip per video and visit.
Eval items: ``(views float32 (V, C, T, H, W), label, index)`` with ``V = num_clips * num_crops``,
the same views every time. A missing, unreadable or empty video logs a warning naming the
file and yields ``None``; :func:`collate_skip_bad` drops such items and counts them.
"""

from __future__ import annotations

import itertools
import logging
import os

import numpy as np
import torch
from torch.utils.data import Dataset, default_collate

from actionrec.data.annotations import Sample
from actionrec.data.frames import FrameFolderError
from actionrec.data.pipeline import ClipPipeline
from actionrec.data.sampling import RandomClipSampler
from actionrec.data.transforms import build_transform
from actionrec.data.video import VideoDecodeError, open_video
from actionrec.errors import UsageError
from actionrec.meta import Preprocess

log = logging.getLogger(__name__)

BAD_ITEM_ERRORS = (VideoDecodeError, FrameFolderError, FileNotFoundError, IndexError, OSError, ValueError)


class VideoClipDataset(Dataset):
    """Clips of ``samples`` prepared for a model with ``preprocess`` (see the module docstring).

    ``root`` is joined to relative sample paths. ``seed`` fixes the random clips and crops
    together with torch's seed (so a seeded DataLoader run is reproducible); call
    :meth:`set_epoch` at the start of every epoch so that a resumed run draws the same ones.
    ``flip=False`` turns off the random horizontal flip of training clips (for classes that a
    mirror image changes, e.g. "move left").
    """

    def __init__(self, samples: list[Sample], *, preprocess: Preprocess, modality: str = "rgb", train: bool,
                 num_clips: int = 1, num_crops: int = 1, root: str | None = None, seed: int = 0,
                 scale_jitter: tuple[float, float] | None = None,
                 flip: bool = True) -> None:
        if not samples:
            raise UsageError("VideoClipDataset needs at least one sample")
        self.samples = list(samples)
        self.preprocess = preprocess
        self.modality, self.train, self.root, self.seed = modality, train, root, seed
        self.num_clips, self.num_crops = (1, 1) if train else (num_clips, num_crops)
        p = preprocess
        if train:
            self.sampler = RandomClipSampler(p.clip_len, p.frame_stride)
            self.transform = build_transform(p, train=True, modality=modality, scale_jitter=scale_jitter, flip=flip)
        else:  # the clip pipeline predict/stream/serve use: the same views for the same video
            self.pipeline = ClipPipeline(p, modality=modality, num_clips=num_clips, num_crops=num_crops)
        self.epoch = 0
        self._calls = itertools.count()
        self.bad: set[str] = set()  # paths that failed in this process

    def set_epoch(self, epoch: int) -> None:
        """Draw this epoch's random clips (also restarts the per-process draw counter)."""
        self.epoch = epoch
        self._calls = itertools.count()

    def __len__(self) -> int:
        return len(self.samples)

    def path_of(self, index: int) -> str:
        p = self.samples[index].path
        return os.path.join(self.root, p) if self.root and not os.path.isabs(p) else p

    def _rng(self, index: int) -> np.random.Generator:
        if not self.train:
            return np.random.default_rng([self.seed, index])
        # torch.initial_seed() differs per DataLoader worker and epoch; the counter per call
        return np.random.default_rng(
            [self.seed, self.epoch, torch.initial_seed() % (1 << 63), index, next(self._calls)]
        )

    def __getitem__(self, index: int):  # noqa: ANN204 - tuple or None
        sample = self.samples[index]
        path = self.path_of(index)
        try:
            return self._load(index, sample, path)
        except BAD_ITEM_ERRORS as e:
            if path not in self.bad:
                log.warning("skipping %s: %s", path, e)
                self.bad.add(path)
            return None

    def _load(self, index: int, sample: Sample, path: str):  # noqa: ANN202
        if not self.train:
            return self.pipeline.load(path).tensor, int(sample.label), int(index)
        rng = self._rng(index)
        with open_video(path, modality=self.modality) as reader:
            n = len(reader)
            if n < 1:
                raise VideoDecodeError(path, "no frames")
            (clip,) = self.sampler(n, rng)
            try:
                frames = reader.get_frames(clip)
            except IndexError:  # fewer frames decode than the container said: sample again
                (clip,) = self.sampler(len(reader), rng)
                frames = reader.get_frames(clip)
        return self.transform(frames, rng), int(sample.label)


def collate_skip_bad(batch: list):  # noqa: ANN201
    """Default-collate the good items and append the count of skipped (``None``) ones.

    Returns ``(clips, labels, n_skipped)`` (train), ``(views, labels, indices, n_skipped)`` (eval),
    or ``(None, n_skipped)`` when every item was bad.
    """
    good = [b for b in batch if b is not None]
    n_bad = len(batch) - len(good)
    if not good:
        return None, n_bad
    return (*default_collate(good), n_bad)
