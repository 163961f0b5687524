"""VideoClipDataset on real clips, including bad files in the middle of a batch."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import DataLoader

from actionrec.data.annotations import Sample
from actionrec.data.dataset import VideoClipDataset, collate_skip_bad
from actionrec.meta import Preprocess

PRE = Preprocess(clip_len=8, frame_stride=2, resize_short=64, crop_size=56)


def test_train_items_and_bad_videos_skipped(data_dir, tmp_path, caplog):
    (tmp_path / "empty.mp4").write_bytes(b"")
    samples = [Sample(str(data_dir / "xvid.avi"), 0), Sample(str(tmp_path / "missing.avi"), 1),
               Sample(str(tmp_path / "empty.mp4"), 2), Sample("short.mp4", 3)]
    ds = VideoClipDataset(samples, preprocess=PRE, train=True, root=str(data_dir))
    with caplog.at_level(logging.WARNING):
        loader = DataLoader(ds, batch_size=4, collate_fn=collate_skip_bad)
        clips, labels, n_bad = next(iter(loader))
    assert clips.shape == (2, 3, 8, 56, 56) and labels.tolist() == [0, 3] and n_bad == 2
    assert "missing.avi" in caplog.text and "empty.mp4" in caplog.text
    assert collate_skip_bad([None, None]) == (None, 2)


def test_eval_views_are_deterministic(data_dir):
    ds = VideoClipDataset([Sample(str(data_dir / "h264.mp4"), 5)], preprocess=PRE, train=False, num_clips=2, num_crops=3)
    views, label, index = ds[0]
    assert views.shape == (6, 3, 8, 56, 56) and label == 5 and index == 0
    assert torch.equal(views, ds[0][0])
    assert not torch.equal(views[0], views[3])  # different clips


def test_train_clips_vary_between_visits(data_dir):
    ds = VideoClipDataset([Sample(str(data_dir / "xvid.avi"), 0)], preprocess=PRE, train=True)
    a, b = ds[0][0], ds[0][0]
    assert not torch.equal(a, b)
