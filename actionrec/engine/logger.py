"""Run logs: ``metrics.jsonl`` (step and epoch records), ``metrics.csv`` (epochs), optional TensorBoard."""

from __future__ import annotations

import csv
import io
import json
import logging
from pathlib import Path
from typing import Any

from actionrec.io import write_text_atomic

log = logging.getLogger(__name__)

__all__ = ["MetricsLogger", "read_records"]


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Records of a ``metrics.jsonl`` file (a torn last line from a kill is ignored)."""
    path = Path(path)
    out = []
    if not path.is_file():
        return out
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


class MetricsLogger:
    """Appends records to ``output_dir/metrics.jsonl`` and mirrors epoch records to ``metrics.csv``.

    On resume from epoch ``start_epoch`` (epochs counted from 1), records of later epochs left by
    the interrupted run are dropped, so the log reads like one uninterrupted run.
    """

    def __init__(self, output_dir: str | Path, *, start_epoch: int = 0, tensorboard: bool = False) -> None:
        self.dir = Path(output_dir)
        self.jsonl = self.dir / "metrics.jsonl"
        self.csv = self.dir / "metrics.csv"
        kept = [r for r in read_records(self.jsonl) if r.get("epoch", 0) <= start_epoch] if start_epoch else []
        write_text_atomic(self.jsonl, "".join(json.dumps(r) + "\n" for r in kept))
        self.epochs = [r for r in kept if r.get("type") == "epoch"]
        self._file = open(self.jsonl, "a")  # noqa: SIM115 - closed in close()
        self.tb = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise RuntimeError("train.tensorboard is true but tensorboard is not installed (pip install tensorboard)") from e
            self.tb = SummaryWriter(str(self.dir / "tb"))
        if self.epochs:
            self._write_csv()

    def step(self, *, epoch: int, step: int, **values: float) -> None:
        self._append({"type": "step", "epoch": epoch, "step": step, **values})
        if self.tb:
            for k, v in values.items():
                self.tb.add_scalar(f"step/{k}", v, step)

    def epoch(self, *, epoch: int, **values: float) -> None:
        rec = {"type": "epoch", "epoch": epoch, **values}
        self._append(rec)
        self.epochs.append(rec)
        self._write_csv()
        if self.tb:
            for k, v in values.items():
                if isinstance(v, (int, float)):
                    self.tb.add_scalar(f"epoch/{k}", v, epoch)

    def _append(self, rec: dict[str, Any]) -> None:
        self._file.write(json.dumps(rec) + "\n")
        self._file.flush()

    def _write_csv(self) -> None:
        cols: list[str] = []
        for r in self.epochs:
            cols += [k for k in r if k != "type" and k not in cols]
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore")
        w.writeheader()
        for r in self.epochs:
            w.writerow(r)
        write_text_atomic(self.csv, buf.getvalue())

    def close(self) -> None:
        self._file.close()
        if self.tb:
            self.tb.close()
