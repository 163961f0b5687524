"""Two CPU processes under torchrun (gloo): training, gathered evaluation, rank-0 checkpoints."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from actionrec.factory import load_model
from actionrec.config import save_config


def test_torchrun_two_processes(make_config, tmp_path: Path) -> None:  # noqa: ANN001
    cfg = make_config("ddp", train={"epochs": 2, "threads": 1}, eval={"start_epoch": 2, "every": 1})
    cfg_path = save_config(cfg, tmp_path / "ddp.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "actionrec.cli", "train", str(cfg_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained 2 epochs") == 1  # printed by rank 0 only
    out = Path(cfg.output_dir)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_0001.safetensors", "epoch_0002.safetensors"]
    assert not list(out.glob("**/.*.tmp")) and not list(out.glob("**/.epoch*"))  # no temp files left behind
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in records if r["type"] == "epoch"][-1]
    # evaluation was split over the two ranks and gathered: every one of the 4 val videos counted once
    assert "val_video_top1" in last and "val_skipped" not in last
    assert abs(last["val_video_top1"] * 4 - round(last["val_video_top1"] * 4)) < 1e-9
    assert load_model(out / "last.safetensors").meta.num_classes == 4


def test_torchrun_survives_a_batch_that_cannot_be_read(make_config, synth_root: Path, tmp_path: Path) -> None:  # noqa: ANN001
    # batches of one: the rank that draws the corrupt video has nothing to train on for that step; it must still
    # join the gradient reduction (a zero-weight pass), or both ranks wait for each other forever
    bad = tmp_path / "corrupt.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    lines = (synth_root / "train.txt").read_text().splitlines()
    lst = tmp_path / "train_with_bad.txt"
    lst.write_text("\n".join(lines[:8] + [f"{bad} 0"] + lines[8:]) + "\n")
    cfg = make_config("ddp_bad", data={"train_list": str(lst), "batch_size": 1}, train={"epochs": 1, "threads": 1}, eval={"every": 0})
    cfg_path = save_config(cfg, tmp_path / "ddp_bad.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "actionrec.cli", "train", str(cfg_path)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "corrupt.mp4" in proc.stderr  # the skipped video is named in the log
    model = load_model(Path(cfg.output_dir) / "last.safetensors")
    assert all(p.isfinite().all() for p in model.parameters())
