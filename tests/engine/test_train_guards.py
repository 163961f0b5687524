"""A run owns its output directory: one writer at a time, stale temporaries removed, divergence stops it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actionrec.cli import main
from actionrec.engine.train import train
from actionrec.errors import LockedError, TrainingError


def _hold_lock(directory: Path) -> subprocess.Popen:
    """Another process that holds ``directory``'s output lock (as a live ``train`` would) until killed."""
    code = textwrap.dedent(f"""
        import time
        from actionrec.io import output_lock
        with output_lock({str(directory)!r}, purpose="train"):
            print("locked", flush=True)
            time.sleep(120)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_and_resume_of_a_live_run_stop(make_config) -> None:  # noqa: ANN001
    cfg = make_config(train={"epochs": 1}, eval={"every": 0})
    out = Path(cfg.output_dir)
    holder = _hold_lock(out)
    try:
        with pytest.raises(LockedError, match=rf"in use by train \(pid {holder.pid} "):
            train(cfg)
        with pytest.raises(LockedError, match=rf"pid {holder.pid}"):
            train(cfg, resume=True)
        assert not (out / "config.yaml").exists() and not (out / "checkpoints").exists()  # nothing written
    finally:
        holder.kill()
        holder.wait()
    assert train(cfg).epochs_done == 1  # the kernel released the killed holder's lock


def test_stale_temporaries_of_a_killed_run_are_removed(make_config) -> None:  # noqa: ANN001
    cfg = make_config(train={"epochs": 1}, eval={"every": 0})
    out = Path(cfg.output_dir)
    (out / "checkpoints").mkdir(parents=True)
    stale = [out / ".best.safetensors.k2j3h4g5.safetensors", out / ".metrics.csv.0ph0hn99.csv",
             out / "checkpoints" / ".epoch_0002.safetensors.uecnh8h2.safetensors"]
    kept = [out / ".notes.txt", out / "my.best.safetensors"]
    for p in stale + kept:
        p.write_bytes(b"x" * 100)
    train(cfg)
    assert [p for p in stale if p.exists()] == []
    assert all(p.exists() for p in kept)


def test_divergence_stops_the_run(make_config) -> None:  # noqa: ANN001
    cfg = make_config(optimizer={"lr": 1e30, "momentum": 0.0}, train={"epochs": 2}, eval={"every": 0})
    with pytest.raises(TrainingError, match=r"training diverged \(epoch 1.*lower optimizer.lr"):
        train(cfg)
    assert not (Path(cfg.output_dir) / "last.safetensors").exists()  # no checkpoint with non-finite weights


def test_repeated_set_accumulates(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("data:\n  format: list\n  train_list: train.txt\n")
    code = main(["train", str(cfg), "--set", f"data.root={tmp_path / 'nowhere'}", "--set", "optimizer.lr=0.5", "train.epochs=1",
                 "--output-dir", str(tmp_path / "run")])
    assert code == 2
    assert "data.root: no such directory" in capsys.readouterr().err  # the first --set was not dropped


def test_resume_from_an_incomplete_state(make_config, tmp_path: Path) -> None:  # noqa: ANN001
    from actionrec import load_model
    from actionrec.checkpoint import CheckpointError, save_state

    cfg = make_config(train={"epochs": 1}, eval={"every": 0})
    train(cfg)
    model = load_model(Path(cfg.output_dir) / "last.safetensors")
    bad = tmp_path / "incomplete.safetensors"
    save_state({"model": model.state_dict(), "epoch": 1}, bad, meta=model.meta)  # no optimizer, no RNG states
    with pytest.raises(CheckpointError, match=r"incomplete\.safetensors: not a complete training state \(KeyError"):
        train(make_config("other", train={"epochs": 2}, eval={"every": 0}), resume=str(bad))
