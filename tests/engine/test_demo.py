"""`actionrec demo --fast`: the whole chain runs and leaves its files (accuracy is checked by the full demo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from actionrec.cli import main

pytestmark = pytest.mark.numerics  # rerun by .ci/run with another host's kernels (AVX2)


def test_demo_fast(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import torch

    from actionrec.runtime import resolve_runtime

    with resolve_runtime(threads=2).applied():
        assert main(["demo", "--fast", "--out", str(tmp_path / "demo"), "--threads", "1"]) == 0
        assert torch.get_num_threads() == 2  # the caller's threads are back after the demo
    text = capsys.readouterr().out
    assert "demo finished" in text and "video-level top-1" in text
    d = tmp_path / "demo"
    for rel in ("data/train.txt", "run/best.safetensors", "run/curves.png", "eval/confusion.png", "eval/predictions.npz", "demo_prediction.gif"):
        assert (d / rel).is_file(), rel
    # one thread count for the whole run: evaluation did not fall back to every core
    assert json.loads((d / "eval" / "metrics.json").read_text())["runtime"]["threads"] == 1
    from PIL import Image

    with Image.open(d / "demo_prediction.gif") as im:
        assert im.n_frames == 20 and min(im.size) >= 224  # 24 frames at 12 fps -> GIF frame-rate cap of 10 fps


def test_shipped_recipe_is_the_demos() -> None:
    """configs/demo_synthetic.yaml and `actionrec demo` train the same way (paths and threads aside)."""
    from actionrec.config import config_to_dict, load_config
    from actionrec.engine.demo import demo_config

    shipped = config_to_dict(load_config(Path(__file__).parents[2] / "configs" / "demo_synthetic.yaml"))
    demo = config_to_dict(demo_config(Path("somewhere")))
    for d in (shipped, demo):
        d.pop("output_dir")
        d["data"].pop("root")
        d["train"].pop("threads")
    assert shipped == demo
