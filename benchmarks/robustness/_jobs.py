"""The jobs the concurrency and kill trials run: prep frames, prep flow, and a tiny `actionrec train`."""

from __future__ import annotations

import json
from pathlib import Path

from tests.robustness import prep_trials as pt

TRAIN_EPOCHS = 3
TRAIN_YAML = """\
model: {{arch: r2plus1d_18, widths: [4, 8, 8, 8]}}
data: {{format: list, root: {root}, train_list: train.txt, val_list: val.txt, clip_len: 4, frame_stride: 2,
       resize_short: 32, crop_size: 28, hflip: false, batch_size: 4, num_workers: 0}}
optimizer: {{name: sgd, lr: 0.05, momentum: 0.9, weight_decay: 0.0}}
schedule: {{name: cosine, warmup_epochs: 0.5}}
train: {{epochs: {epochs}, keep_last: 2, log_every: 1, threads: 1}}
eval: {{start_epoch: 1, every: 1, num_clips: 1}}
output_dir: {out}
seed: 0
"""


class Inputs:
    """Inputs made once per campaign: videos, their frames and flow (references), a synthetic dataset."""

    def __init__(self, workdir: Path) -> None:
        from actionrec.cli import main
        from actionrec.data.synthetic import generate

        self.root = workdir / "inputs"
        if not (self.root / "flow").exists():
            vids = pt.make_videos(self.root)
            assert main(["prep", "frames", str(vids), str(self.root / "frames"), *pt.FRAMES_ARGS]) == 0
            assert main(["prep", "flow", str(self.root / "frames"), str(self.root / "flow"), *pt.FLOW_ARGS]) == 0
            generate(self.root / "synthetic", classes=2, per_class=5, seed=0, size=32, frames=8, fps=8)
        self.vids, self.frames, self.flow = self.root / "vids", self.root / "frames", self.root / "flow"

    def prep_cmd(self, step: str, out: Path) -> list[str]:
        return pt.frames_cmd(self.vids, out) if step == "frames" else pt.flow_cmd(self.frames, out)

    def reference(self, step: str) -> Path:
        return self.frames if step == "frames" else self.flow

    def train_cmd(self, out: Path, *extra: str) -> list[str]:
        cfg = out.parent / f"{out.name}.yaml"
        cfg.write_text(TRAIN_YAML.format(root=self.root / "synthetic", epochs=TRAIN_EPOCHS, out=out))
        return pt.cli("train", str(cfg), *extra)


def check_prep_output(inputs: Inputs, step: str, out: Path) -> str | None:
    """Why ``out`` is not exactly the undisturbed run's output (None if it is)."""
    left = pt.temp_entries(out)
    if left:
        return f"{len(left)} temporary entries left ({left[0]})"
    got, want = pt.tree(out), pt.tree(inputs.reference(step))
    if got != want:
        diff = sorted(set(got) ^ set(want)) or sorted(k for k in got if got[k] != want[k])
        return f"{len(diff)} file(s) lost, extra or different ({diff[0]})"
    return None


def check_train_output(out: Path) -> str | None:
    """Why the run folder ``out`` is not one complete, loadable training run (None if it is)."""
    from actionrec import load_model
    from actionrec.checkpoint import load_state

    left = pt.temp_entries(out)
    if left:
        return f"{len(left)} temporary files left ({left[0]})"
    try:
        records = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
        epochs = [r["epoch"] for r in records if r.get("type") == "epoch"]
        if not epochs or epochs[-1] != TRAIN_EPOCHS or set(epochs) != set(range(1, TRAIN_EPOCHS + 1)):
            return f"metrics.jsonl has epochs {epochs}"
        for name in ("best.safetensors", "last.safetensors"):
            load_model(out / name)
        for ckpt in sorted((out / "checkpoints").glob("*.safetensors")):
            load_state(ckpt)
        if not (out / "config.yaml").is_file():
            return "config.yaml is missing"
    except Exception as e:  # noqa: BLE001 - that is the finding
        return f"{type(e).__name__}: {e}"[:200]
    return None


def check_output(inputs: Inputs, job: str, out: Path) -> str | None:
    """``job`` is "prep frames", "prep flow" or "train"."""
    return check_train_output(out) if job == "train" else check_prep_output(inputs, job.split()[1], out)


def new_row(name: str) -> dict:
    """An empty campaign row (the columns of ``benchmarks/robustness_campaign.py``)."""
    return {"class": name, "tried": 0, "clean_errors": 0, "accepted_ok": 0, "tracebacks": 0, "hangs": 0,
            "crashes": 0, "silent_wrong": 0, "peak_rss_mb": 0.0, "notes": ""}


def record_output(row: dict, bad: str | None, trial: int, *, clean: bool = False) -> None:
    """Count one finished trial: ``bad`` (from :func:`check_output`) is a silent wrong result."""
    if bad:
        row["silent_wrong"] += 1
        row["notes"] += f"trial {trial}: {bad}; "
    else:
        row["clean_errors" if clean else "accepted_ok"] += 1
