"""``actionrec demo``: synthetic data → a small model trained on the CPU → evaluation → an annotated prediction.

Nothing is downloaded. The synthetic classes differ only in their motion (see
:mod:`actionrec.data.synthetic`), so the accuracy reached shows that the model learned motion.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from actionrec.config import Config, config_from_dict
from actionrec.runtime import Runtime, available_cores

log = logging.getLogger(__name__)

__all__ = ["DemoResult", "demo_config", "run_demo"]


@dataclass
class DemoResult:
    output_dir: Path
    seconds: float
    video_top1: float
    clip_top1: float
    prediction_gif: Path
    predicted: str
    true_label: str


def demo_config(out: Path, *, fast: bool = False, threads: int | None = None) -> Config:
    """The demo's recipe: a narrow R(2+1)D-18 on 32-pixel synthetic clips (8 frames, every 3rd)."""
    # one compute thread per core left after the data-loading worker: with 2 cores, 1 thread + 1 worker
    # (two compute threads on two busy cores stall each other: measured 2.8 s vs 0.6 s per step)
    threads = threads or max(1, available_cores() - 1)
    return config_from_dict(
        {
            "model": {"arch": "r2plus1d_18", "widths": [16, 32, 64, 128], "channels_last": False},
            "data": {
                "format": "list",
                "root": str(out / "data"),
                "train_list": "train.txt",
                "val_list": "val.txt",
                "clip_len": 8,
                "frame_stride": 3,
                "resize_short": 32,
                "crop_size": 28,
                "hflip": False,  # mirroring would turn "move_left" into "move_right"
                "batch_size": 16,
                "num_workers": 1,
            },
            "optimizer": {"name": "adamw", "lr": 0.002, "weight_decay": 0.01},
            "schedule": {"name": "cosine", "warmup_epochs": 1.0, "warmup_factor": 0.1},
            "train": {"epochs": 4 if fast else 15, "checkpoint_every": 1, "keep_last": 1, "log_every": 5, "threads": threads},
            "eval": {"start_epoch": 2 if fast else 5, "every": 2 if fast else 5, "num_clips": 1},
            "output_dir": str(out / "run"),
            "seed": 0,
        }
    )


def run_demo(out: str | Path = "actionrec-demo", *, fast: bool = False, threads: int | None = None) -> DemoResult:
    """Run the whole demo under ``out``; returns times, accuracies and the prediction GIF's path."""
    from actionrec.runtime import resolve_runtime

    out = Path(out)
    t0 = time.perf_counter()
    cfg = demo_config(out, fast=fast, threads=threads)
    # the same numbers on every run on one machine: one thread count for every step (training, evaluation,
    # prediction), deterministic kernels where torch has a choice; restored afterwards (an API call)
    with resolve_runtime(threads=cfg.train.threads, deterministic=True).applied() as runtime:
        return _run(out, cfg, fast, t0, runtime)


def _run(out: Path, cfg: Config, fast: bool, t0: float, runtime: Runtime) -> DemoResult:
    from actionrec.data.synthetic import generate
    from actionrec.engine.evaluate import evaluate_checkpoint, write_report
    from actionrec.engine.visualize import annotate_video
    from actionrec.inference import Predictor
    from actionrec.engine.train import train

    per_class = 20 if fast else 80
    log.info("1/4 generating the synthetic dataset in %s", out / "data")
    generate(out / "data", classes=6, per_class=per_class, seed=0, size=32, frames=24, fps=12, workers=min(2, available_cores()), val_per_class=10 if not fast else 4)
    log.info("2/4 training %s (%d epochs) in %s", cfg.model.arch, cfg.train.epochs, cfg.output_dir)
    train(cfg)
    best = Path(cfg.output_dir) / "best.safetensors"
    log.info("3/4 evaluating %s on the validation videos", best)
    # the demo's thread count, given explicitly: a default would reset torch to every core mid-run
    preds, metrics = evaluate_checkpoint(best, cfg.data, num_clips=2, num_crops=1, batch_size=16, backend="torch", optimize=False,
                                         threads=runtime.threads)
    write_report(out / "eval", preds, metrics, name="demo")
    # show a validation video the model gets right (the first one, if it gets none right)
    correct = (preds.probs.argmax(axis=1) == preds.labels).nonzero()[0]
    pick = int(correct[0]) if len(correct) else 0
    video = Path(preds.videos[pick])
    log.info("4/4 predicting %s", video)
    predictor = Predictor(best, backend="torch", optimize=False, threads=runtime.threads)
    result = predictor.predict(video, topk=3)
    gif = annotate_video(video, out / "demo_prediction.gif", result.topk)
    label = predictor.meta.label(int(preds.labels[pick]))
    return DemoResult(out, time.perf_counter() - t0, metrics.video_top1, metrics.clip_top1, gif, result.topk[0][0], label)
