"""Fixtures of the engine tests: a tiny synthetic dataset and a tiny training recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from actionrec.config import Config, config_from_dict


@pytest.fixture(scope="session")
def synth_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 classes x 5 videos (4 train, 1 val each), 32x32 pixels, 8 frames."""
    from actionrec.data.synthetic import generate

    return generate(tmp_path_factory.mktemp("synth"), classes=4, per_class=5, seed=0, size=32, frames=8, fps=8)


def tiny_config(root: Path, out: Path, **sections: dict) -> Config:
    """A recipe that trains a very narrow R(2+1)D-18 on ``root`` in a few seconds."""
    data = {
        "format": "list",
        "root": str(root),
        "train_list": "train.txt",
        "val_list": "val.txt",
        "clip_len": 4,
        "frame_stride": 2,
        "resize_short": 32,
        "crop_size": 28,
        "hflip": False,
        "batch_size": 4,
        "num_workers": 0,
    }
    base = {
        "model": {"arch": "r2plus1d_18", "widths": [4, 8, 8, 8]},
        "data": data,
        "optimizer": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 0.0},
        "schedule": {"name": "cosine", "warmup_epochs": 0.5},
        "train": {"epochs": 3, "keep_last": 2, "log_every": 1, "threads": 1},
        "eval": {"start_epoch": 1, "every": 1, "num_clips": 1},
        "output_dir": str(out),
        "seed": 0,
    }
    for name, values in sections.items():
        if isinstance(values, dict):
            base.setdefault(name, {}).update(values)
        else:
            base[name] = values
    return config_from_dict(base)


@pytest.fixture
def make_config(synth_root: Path, tmp_path: Path):  # noqa: ANN201
    def make(out: str = "run", **sections: dict) -> Config:
        return tiny_config(synth_root, tmp_path / out, **sections)

    return make
