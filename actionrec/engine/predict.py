"""``actionrec predict`` over collections: which videos, and one resumable output row per video.

* :func:`collect_videos`: files, folders (recursive; a file is a video if its extension says so
  or, for other extensions, if FFmpeg finds a video stream in it), glob patterns, list files.
* :class:`PredictionFile`: ``.jsonl`` or ``.csv`` rows appended and flushed one by one; a rerun
  reads the rows already there (a torn last line from a killed run is cut off) and skips them.
* :func:`predict_collection`: the loop, with a progress bar (videos/s, ETA).

The model, clips and batching are :class:`actionrec.Predictor`'s (``predict_many``).
"""

from __future__ import annotations

import csv
import glob
import io
import json
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from actionrec.data.video import VIDEO_EXTENSIONS
from actionrec.errors import LockedError, UsageError
from actionrec.inference.predictor import Prediction, Predictor

log = logging.getLogger(__name__)

__all__ = ["collect_videos", "is_video_file", "PredictionFile", "shard_output", "predict_collection", "PredictSummary"]

VIDEO_SUFFIXES = frozenset((*VIDEO_EXTENSIONS, ".gif"))
# never probed: frames of extracted folders, our own outputs, text, models
NOT_VIDEO_SUFFIXES = frozenset((".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".txt", ".json", ".jsonl",
                                ".csv", ".md", ".yaml", ".yml", ".npz", ".npy", ".py", ".safetensors", ".onnx", ".pt",
                                ".pth", ".lock", ".tmp", ".html", ".xml", ".pdf", ".zip", ".tar", ".gz"))
OUTPUT_SUFFIXES = (".jsonl", ".csv")


def is_video_file(path: str | os.PathLike) -> bool:
    """True if ``path`` has a video extension, or FFmpeg opens it and finds a video stream (not a still image)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix in VIDEO_SUFFIXES:
        return True
    if suffix in NOT_VIDEO_SUFFIXES or p.name.startswith("."):
        return False
    import av

    try:
        with av.open(str(p)) as c:
            formats = c.format.name.split(",")
            if any(f == "image2" or f.endswith("_pipe") for f in formats):
                return False
            return bool(c.streams.video)
    except Exception:  # noqa: BLE001 - anything FFmpeg cannot open is not a video for this purpose
        return False


def _walk(folder: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [os.path.join(root, f) for f in sorted(files) if is_video_file(os.path.join(root, f))]
    return found


def read_list(path: str | os.PathLike) -> list[str]:
    """Paths in a list file: one per line; blank lines and ``#`` comments ignored."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"list file not found: {p}")
    return [s for line in p.read_text(encoding="utf-8").splitlines() if (s := line.strip()) and not s.startswith("#")]


def collect_videos(inputs: Sequence[str], *, list_file: str | None = None) -> list[str]:
    """The videos named by ``inputs`` and ``list_file``, in order, without duplicates.

    A folder is searched recursively (hidden entries skipped), a pattern with ``*``/``?``/``[`` is
    expanded (``**`` recursive). A named file that does not exist is an error; entries of a list
    file are taken as given (a missing one becomes an error row).
    """
    out: list[str] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = _walk(p)
            if not found:
                log.warning("%s: no videos found", item)
            out += found
        elif p.exists():
            out.append(item)
        elif glob.has_magic(item):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise UsageError(f"{item}: no file matches the pattern")
            for m in matches:
                out += _walk(Path(m)) if Path(m).is_dir() else [m] if is_video_file(m) else []
        else:
            raise FileNotFoundError(f"video not found: {item}")
    if list_file:
        out += read_list(list_file)
    return list(dict.fromkeys(out))


def shard_output(path: str | os.PathLike, shard: tuple[int, int]) -> Path:
    """``preds.jsonl`` → ``preds.part-3-of-16.jsonl`` for shard 3 of 16 (unchanged for one shard)."""
    p = Path(path)
    i, n = shard
    return p if n == 1 else p.with_name(f"{p.stem}.part-{i}-of-{n}{p.suffix}")


class PredictionFile:
    """Rows of predictions in ``.jsonl`` or ``.csv``, appended and flushed one at a time (see module docstring).

    Holds an exclusive ``flock`` on the file while open: a second writer fails with
    :class:`~actionrec.errors.LockedError` (shards write separate files, so they never collide).
    Subclasses (``--segments``: :class:`actionrec.engine.segments.SegmentFile`) change what a row holds
    through :meth:`row`, :meth:`csv_columns`, :meth:`csv_rows` and :meth:`accepts`.
    """

    kind_name = "prediction"
    multi_row = False  # CSV: several rows per video (a torn block is redone whole)

    def __init__(self, path: str | os.PathLike, *, topk: int) -> None:
        self.path = Path(path)
        self.kind = self.path.suffix.lower()
        if self.kind not in OUTPUT_SUFFIXES:
            raise UsageError(f"{self.path}: --output must end in .jsonl or .csv")
        self.topk = topk
        self.columns = self.csv_columns()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "a+", encoding="utf-8", newline="")  # noqa: SIM115 - closed in close()
        import fcntl

        try:
            fcntl.flock(self._f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._f.close()
            raise LockedError(f"{self.path}: another actionrec predict is writing this file") from None
        self.done = self._read_done()

    def _read_done(self) -> set[str]:
        self._f.seek(0)
        text = self._f.read()
        if text and not text.endswith("\n"):  # a run killed mid-row: drop the torn row
            keep = text.rfind("\n") + 1
            log.warning("%s: dropping an incomplete last row (%d bytes) from an interrupted run", self.path, len(text) - keep)
            if self.kind == ".csv" and self.multi_row:
                keep = _start_of_last_video(text, keep)
            self._f.truncate(keep)
            text = text[:keep]
        if not text:
            if self.kind == ".csv":
                self._append(",".join(self.columns) + "\n")
            return set()
        if self.kind == ".jsonl":
            done = set()
            for n, line in enumerate(text.splitlines(), 1):
                if line.strip():
                    try:
                        row = json.loads(line)
                        done.add(row["video"])
                    except (ValueError, KeyError, TypeError) as e:
                        raise UsageError(f"{self.path}:{n}: not a {self.kind_name} row ({e}); choose another --output") from None
                    if not self.accepts(row):
                        raise UsageError(f"{self.path}:{n}: not a {self.kind_name} row (written by another kind of run); "
                                         "choose another --output")
            return done
        rows = list(csv.reader(io.StringIO(text)))
        if rows[0] != self.columns:
            raise UsageError(f"{self.path}: its columns ({len(rows[0])}) are not those of this run's {self.kind_name} rows "
                             f"({len(self.columns)}: {', '.join(self.columns[:4])}, ...); use the options it was written "
                             "with (--topk, --segments), or another --output")
        return {r[0] for r in rows[1:] if r}

    def _append(self, text: str) -> None:
        self._f.seek(0, os.SEEK_END)
        self._f.write(text)
        self._f.flush()
        os.fsync(self._f.fileno())

    def csv_columns(self) -> list[str]:
        return ["video"] + [f"{k}_{i}" for i in range(1, self.topk + 1) for k in ("label", "score")] + \
            ["clips", "duration", "truncated", "error"]

    def accepts(self, row: dict) -> bool:
        """Whether a JSONL row read back was written by this kind of run."""
        return "predictions" in row or "error" in row

    def row(self, item: Prediction) -> dict:
        """The JSONL object of one video."""
        return item.to_dict()

    def csv_rows(self, d: dict) -> list[list[object]]:
        """The CSV rows of one video's :meth:`row`."""
        cells: list[object] = [d["video"]]
        for i in range(self.topk):
            p = d["predictions"][i] if i < len(d["predictions"]) else {"label": "", "score": ""}
            cells += [p["label"], p["score"]]
        return [cells + [d.get("clips", 0), d.get("duration", 0.0), int(d.get("truncated", False)), d.get("error", "")]]

    def write(self, item: Prediction) -> bool:
        """Append one video's row(s) in one write, flushed and synced; see :meth:`write_row`."""
        return self.write_row(self.row(item))

    def write_row(self, d: dict) -> bool:
        """Append the row(s) of one :meth:`row` dict; a video already in the file is not written again
        (False): an engine that retries lost work may hand a video over twice."""
        if d["video"] in self.done:
            log.warning("%s: %s is already in the file; not written twice", self.path, d["video"])
            return False
        if self.kind == ".jsonl":
            self._append(json.dumps(d, ensure_ascii=False) + "\n")
        else:
            buf = io.StringIO()
            csv.writer(buf, lineterminator="\n").writerows(self.csv_rows(d))
            self._append(buf.getvalue())
        self.done.add(d["video"])
        return True

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> PredictionFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _start_of_last_video(text: str, keep: int) -> int:
    """Where the rows of the last video before ``keep`` start (a torn multi-row block: redo that video whole)."""
    lines = text[:keep].splitlines(keepends=True)
    if len(lines) < 2:
        return keep
    video = next(csv.reader([lines[-1]]), [""])[0]
    while len(lines) > 1 and next(csv.reader([lines[-1]]), [""])[0] == video:
        keep -= len(lines.pop())
    return keep


@dataclass
class PredictSummary:
    videos: int  # in this shard
    skipped: int  # already in the output
    written: int
    errors: int
    seconds: float


def predict_collection(predictor: Predictor, videos: Iterable[str], output: PredictionFile | None, *, topk: int,
                       workers: int | None = None, batch_size: int | None = None, progress: bool | None = None,
                       on_result=None) -> PredictSummary:  # noqa: ANN001
    """Predict every video not yet in ``output``; each row is written as soon as it is known."""
    from tqdm import tqdm

    videos = list(videos)
    todo = [v for v in videos if output is None or v not in output.done]
    t0 = time.perf_counter()
    errors = written = 0
    bar = tqdm(total=len(todo), unit="video", desc="predict", disable=None if progress is None else not progress,
               dynamic_ncols=True)
    try:
        for pred in predictor.predict_many(todo, topk=topk, workers=workers, batch_size=batch_size):
            if pred.error:
                errors += 1
                log.warning("%s", pred.error)
            if output is not None:
                output.write(pred)
            if on_result is not None:
                on_result(pred)
            written += 1
            bar.update(1)
            if errors:
                bar.set_postfix(errors=errors, refresh=False)
    finally:
        bar.close()
    return PredictSummary(len(videos), len(videos) - len(todo), written, errors, time.perf_counter() - t0)
