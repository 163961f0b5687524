"""``actionrec predict --segments``: labelled time segments of long videos, one output row per video; subtitles.

* :class:`SegmentFile`: the ``--output`` file, :class:`~actionrec.engine.predict.PredictionFile`'s machinery
  (locked, appended and synced video by video, resumable, one file per ``--shard``). ``.jsonl``: one
  :meth:`~actionrec.inference.segments.SegmentResult.to_dict` per video; ``.csv``: one row per segment,
  ``video,label,start,end,score,error`` (a video without a confident segment: one row with an empty label;
  an unreadable one: one row with its error).
* :func:`segment_collection`: the videos in order, a progress bar in seconds of video on a terminal.
* :func:`subtitles` / :func:`write_subtitles`: WebVTT or SRT cues ``label (0.87)``, written atomically.

The windows, scores and segments are :mod:`actionrec.inference.segments`'s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actionrec.engine.predict import PredictionFile, PredictSummary
from actionrec.errors import UsageError
from actionrec.io import write_text_atomic

log = logging.getLogger(__name__)

__all__ = ["SegmentFile", "SegmentError", "segment_collection", "subtitles", "write_subtitles", "SUBTITLE_SUFFIXES",
           "SEGMENT_OPTIONS", "params_from_args", "predict_segments"]

SUBTITLE_SUFFIXES = (".vtt", ".srt")
#: ``predict`` options that only mean something with ``--segments`` (argparse dest names)
SEGMENT_OPTIONS = ("window", "window_stride", "smooth", "threshold", "min_segment", "subtitles")


@dataclass
class SegmentError:
    """The row of a video that could not be read."""

    video: str
    error: str

    def to_dict(self, **_: Any) -> dict[str, Any]:
        return {"video": self.video, "error": self.error}


class SegmentFile(PredictionFile):
    """``--segments`` rows (see the module docstring); ``topk``: labels per window in ``.jsonl`` rows."""

    kind_name = "segments"
    multi_row = True

    def csv_columns(self) -> list[str]:
        return ["video", "label", "start", "end", "score", "error"]

    def accepts(self, row: dict) -> bool:
        return "segments" in row or "error" in row

    def row(self, item: Any) -> dict:
        return item.to_dict(topk=self.topk)

    def csv_rows(self, d: dict) -> list[list[object]]:
        if "error" in d:
            return [[d["video"], "", "", "", "", d["error"]]]
        rows = [[d["video"], s["label"], s["start"], s["end"], s["score"], ""] for s in d["segments"]]
        return rows or [[d["video"], "", "", "", "", ""]]


# --- subtitles -------------------------------------------------------------------------------
def _timestamp(seconds: float, sep: str) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def subtitles(segments: Sequence[Any], kind: str) -> str:
    """WebVTT (``kind="vtt"``) or SRT (``"srt"``) text with one cue ``label (score)`` per segment."""
    if kind not in ("vtt", "srt"):
        raise UsageError(f"subtitles must be vtt or srt, got {kind!r}")
    sep = "." if kind == "vtt" else ","
    out = ["WEBVTT", ""] if kind == "vtt" else []
    for i, seg in enumerate(segments, 1):
        text = " ".join(seg.label.split())
        if kind == "vtt":  # cue text is HTML-like and may not hold "-->"
            text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        out += [str(i), f"{_timestamp(seg.start_s, sep)} --> {_timestamp(seg.end_s, sep)}", f"{text} ({seg.score:.2f})", ""]
    return "\n".join(out) + ("\n" if out and out[-1] != "" else "")


def check_subtitles_path(path: str | Path) -> str:
    """The kind (``vtt``/``srt``) of a ``--subtitles`` path, or a usage error."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUBTITLE_SUFFIXES:
        raise UsageError(f"{path}: --subtitles must end in .vtt or .srt")
    return suffix[1:]


def write_subtitles(path: str | Path, segments: Sequence[Any]) -> None:
    """Write the cues of ``segments`` to ``path`` (``.vtt`` or ``.srt``), atomically."""
    write_text_atomic(path, subtitles(segments, check_subtitles_path(path)))


# --- the collection --------------------------------------------------------------------------
def segment_collection(predictor: Any, videos: Sequence[str], output: SegmentFile | None, params: Any, *,
                       on_result: Callable[[Any], None] | None = None, progress: bool | None = None,
                       raise_errors: bool = False) -> PredictSummary:
    """Segment every video not yet in ``output``; an unreadable video gets an error row (a warning names it),
    or (``raise_errors``) stops the run."""
    from tqdm import tqdm

    from actionrec.inference.predictor import VIDEO_ERRORS, error_line
    from actionrec.inference.segments import segment_video

    todo = [v for v in videos if output is None or v not in output.done]
    t0, errors = time.perf_counter(), 0
    bar = tqdm(total=1.0, unit="s", disable=None if progress is None else not progress, dynamic_ncols=True,
               bar_format="{desc}{percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s of video [{elapsed}<{remaining}]")
    try:
        for i, video in enumerate(todo):
            bar.set_description_str(f"{Path(video).name} ({i + 1}/{len(todo)}) ", refresh=False)
            bar.reset(total=1.0)

            def tick(done: float, total: float) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                item: Any = segment_video(predictor, video, params, progress=tick, compact=True)
            except VIDEO_ERRORS as e:
                if raise_errors:
                    raise
                item, errors = SegmentError(video, error_line(video, e)), errors + 1
                log.warning("%s", item.error)
            if output is not None:
                output.write(item)
            if on_result is not None:
                on_result(item)
    finally:
        bar.close()
    return PredictSummary(len(videos), len(videos) - len(todo), len(todo), errors, time.perf_counter() - t0)


def params_from_args(args: argparse.Namespace) -> Any:
    """The :class:`~actionrec.inference.segments.SegmentParams` of ``--window --window-stride --smooth --threshold --min-segment``."""
    from actionrec.inference.segments import SegmentParams

    kw: dict[str, Any] = {}
    for opt, name in (("window", "window"), ("window_stride", "stride")):
        if getattr(args, opt, None) is not None:
            value, unit = getattr(args, opt)
            kw[f"{name}_frames" if unit == "f" else f"{name}_s"] = value
    for opt, name in (("smooth", "smooth"), ("threshold", "threshold"), ("min_segment", "min_segment_s")):
        if getattr(args, opt, None) is not None:
            kw[name] = getattr(args, opt)
    return SegmentParams(**kw)


def check_segment_args(args: argparse.Namespace, *, single: bool) -> Any:
    """Usage errors of ``predict --segments`` before any work; the parameters."""
    if not args.segments:
        given = [o for o in SEGMENT_OPTIONS if getattr(args, o, None) is not None]
        if given:
            raise UsageError(f"--{given[0].replace('_', '-')} needs --segments")
        return None
    if args.out:
        raise UsageError("--out draws one top-k on a video; with --segments use --subtitles FILE.vtt|.srt")
    if args.clips:
        raise UsageError("--clips has no effect with --segments (every window is one clip); use --window/--window-stride")
    if args.subtitles:
        check_subtitles_path(args.subtitles)
        if not single:
            raise UsageError("--subtitles writes the segments of one video; give exactly one video file")
    return params_from_args(args)


def predict_segments(predictor: Any, videos: Sequence[str], params: Any, args: argparse.Namespace, *, single: bool,
                     output_path: Path | None) -> int:
    """The ``predict --segments`` command: one JSON object per video on stdout, or rows in ``--output``
    (a summary on stderr); ``--subtitles``. One video without ``--output``: an unreadable video is an error."""
    topk = predictor.check_topk(args.topk)
    results: list[Any] = []

    def show(item: Any) -> None:
        if args.subtitles and not isinstance(item, SegmentError):
            results.append(item)
        if output_path is None:
            print(json.dumps(item.to_dict(topk=topk), ensure_ascii=False), flush=True)

    with SegmentFile(output_path, topk=topk) if output_path else contextlib.nullcontext() as out:
        if out is not None and out.done:
            print(f"{output_path}: {len(out.done)} videos already done, skipping them", file=sys.stderr)
        r = segment_collection(predictor, videos, out, params, on_result=show, raise_errors=single and out is None)
    if output_path or not single:
        where = f" -> {output_path}" if output_path else ""
        print(f"{r.written} videos segmented ({r.errors} unreadable) in {r.seconds:.1f} s, "
              f"{r.skipped} skipped as already done{where}", file=sys.stderr)
    if args.subtitles:
        if results:
            write_subtitles(args.subtitles, results[0].segments)
            print(f"wrote {args.subtitles} ({len(results[0].segments)} cues)", file=sys.stderr)
        else:
            log.warning("%s: no subtitles written (the video was already done, or could not be read)", args.subtitles)
    return 0
