"""Long videos: what happens when. The model's clip slid over the whole video, then labelled time segments.

    >>> r = predictor.segments("match.mp4", window_s=2.0, stride_s=1.0)   # = segment_video(predictor, ...)
    >>> [(s.label, s.start_s, s.end_s, s.score) for s in r.segments]
    >>> for w in iter_windows(predictor, "match.mp4", SegmentParams(), start_window=k): ...   # resumable

* windows (:func:`plan_windows`, :mod:`actionrec.inference.windows`): placed from the frame index, times
  from the stream's timestamps; defaults from the model's clip (window = its span, stride = half of it).
* scores (:func:`iter_windows`): one forward decode (a seek to ``start_window`` where the container
  allows), each frame a clip uses transformed once and kept only while an open window needs it; a helper
  thread decodes the next windows while :meth:`Predictor.forward` scores batches. Memory does not grow
  with the video's length.
* segments (:func:`segments_from_windows`, pure): a centred moving average of ``smooth`` windows' scores;
  each window gets its best class, or "no confident action" below ``threshold``; runs of equal labels are
  joined; a run shorter than ``min_segment_s`` joins the neighbour whose class scores higher on it (a gap
  counts as ``threshold``: a short run between gaps is dropped). Boundaries lie halfway between window
  centres; the first segment may start at the first window's start, the last end at the last one's end.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from actionrec.data.video import open_video
from actionrec.errors import UsageError, VideoDecodeError
from actionrec.inference.windows import MAX_WINDOWS, ClipAssembler, WindowPlan, plan_windows

if TYPE_CHECKING:
    from actionrec.inference.predictor import Predictor

__all__ = ["Window", "Segment", "SegmentParams", "SegmentResult", "plan_windows", "iter_windows",
           "segments_from_windows", "segment_video", "WindowPlan"]

log = logging.getLogger(__name__)

PREFETCH = 8  # window clips decoded ahead of the model
MAX_SECONDS = 86_400.0 * 7
MAX_FRAMES = 10**8
Progress = Callable[[float, float], None]


@dataclass
class Window:
    """One scored window: ``scores`` is the softmax over the model's classes ``(K,)`` (mean over crops)."""

    index: int
    start_s: float
    end_s: float
    scores: list[float]

    def to_dict(self, class_names: Sequence[str] | None = None, *, topk: int = 5) -> dict[str, Any]:
        """With ``class_names``: ``{"index", "start", "end", "top": [{"label", "score"}, ...]}`` (rounded);
        without: ``{"index", "start", "end", "scores"}``, exact (:meth:`from_dict` reads it back)."""
        if class_names is None:
            return {"index": self.index, "start": self.start_s, "end": self.end_s, "scores": [float(s) for s in self.scores]}
        s = np.asarray(self.scores, dtype=np.float64)
        order = np.argsort(-s, kind="stable")[: max(1, topk)]
        return {"index": self.index, "start": round(self.start_s, 3), "end": round(self.end_s, 3),
                "top": [{"label": class_names[k], "score": round(float(s[k]), 6)} for k in order]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Window:
        return cls(int(d["index"]), float(d["start"]), float(d["end"]), [float(x) for x in d["scores"]])


@dataclass
class Segment:
    """A labelled stretch of the video (gaps without a confident action are simply absent)."""

    label: str
    start_s: float
    end_s: float
    score: float  # mean smoothed score of ``label`` over the segment's windows

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "start": round(self.start_s, 3), "end": round(self.end_s, 3),
                "score": round(self.score, 6)}


def _number(name: str, value: Any, low: float, high: float, *, open_low: bool = False) -> float:
    ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < low or value > high or (open_low and value == low):
        raise UsageError(f"{name} must be a number {'>' if open_low else '>='} {low:g} and <= {high:g}, got {value!r}")
    return float(value)


def _integer(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise UsageError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


@dataclass
class SegmentParams:
    """How windows are placed and scores become segments (see the module docstring).

    ``window_*``/``stride_*``: at most one of each pair (default: window = the model's clip span in
    frames, stride = half the window). Bad values raise one-line :class:`UsageError`\\s naming the field.
    """

    window_s: float | None = None
    window_frames: int | None = None
    stride_s: float | None = None
    stride_frames: int | None = None
    smooth: int = 3
    threshold: float = 0.3
    min_segment_s: float = 1.0

    def __post_init__(self) -> None:
        for a, b in (("window_s", "window_frames"), ("stride_s", "stride_frames")):
            if getattr(self, a) is not None and getattr(self, b) is not None:
                raise UsageError(f"give {a} or {b}, not both")
        for name in ("window_s", "stride_s"):
            if getattr(self, name) is not None:
                setattr(self, name, _number(name, getattr(self, name), 0.0, MAX_SECONDS, open_low=True))
        for name in ("window_frames", "stride_frames"):
            if getattr(self, name) is not None:
                setattr(self, name, _integer(name, getattr(self, name), 1, MAX_FRAMES))
        self.smooth = _integer("smooth", self.smooth, 1, 1000)
        self.threshold = _number("threshold", self.threshold, 0.0, 1.0)
        self.min_segment_s = _number("min_segment_s", self.min_segment_s, 0.0, MAX_SECONDS)

    @classmethod
    def from_kwargs(cls, params: SegmentParams | None, kwargs: dict[str, Any]) -> SegmentParams:
        """``params`` (or the defaults) with the fields named in ``kwargs`` replaced (they are removed from it)."""
        names = {f.name for f in fields(cls)}
        given = {k: kwargs.pop(k) for k in list(kwargs) if k in names}
        return replace(params, **given) if params is not None else cls(**given)


@dataclass
class SegmentResult:
    """Segments and per-window scores of one video. ``params``: the parameters used (defaults filled in)."""

    video: str
    duration_s: float
    fps: float
    class_names: list[str]
    windows: list[Window]
    segments: list[Segment]
    params: SegmentParams
    truncated: bool = False  # the video stopped decoding before its index said: the windows past it are missing

    def to_dict(self, *, windows: bool = True, topk: int = 5) -> dict[str, Any]:
        """JSON-ready: video, duration, fps, params, segments and (``windows``) each window's top ``topk``."""
        d: dict[str, Any] = {"video": self.video, "duration": round(self.duration_s, 3), "fps": round(self.fps, 3),
                             "truncated": self.truncated, "params": asdict(self.params),
                             "segments": [s.to_dict() for s in self.segments]}
        if windows:
            k = min(max(1, topk), len(self.class_names))
            d["windows"] = [w.to_dict(self.class_names, topk=k) for w in self.windows]
        return d


# --- scores ----------------------------------------------------------------------------------
def _background(items: Iterator[Any], depth: int) -> Iterator[Any]:
    """``items`` produced by a helper thread, at most ``depth`` ahead (decoding overlaps the model)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(x: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(x, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for x in items:
                if not put((x, None)):
                    return
            put((done, None))
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, raised there
            put((done, e))
        finally:
            items.close()

    t = threading.Thread(target=run, name="actionrec-windows", daemon=True)
    t.start()
    try:
        while True:
            x, err = q.get()
            if x is done:
                if err is not None:
                    raise err
                return
            yield x
    finally:
        stop.set()
        t.join()


def _window_clips(pipeline: Any, reader: Any, plan: WindowPlan, start: int, state: dict) -> Iterator[tuple[int, torch.Tensor]]:
    """``(k, (crops, C, T, H, W))`` for windows ``start`` on, from one forward decode of ``reader``."""
    asm = ClipAssembler(pipeline, ((k, int(plan.first[k]), plan.clip(k)) for k in range(start, len(plan))))
    if hasattr(reader, "iter_selected"):
        frames = reader.iter_selected(asm.wanted())
    else:  # frame folders: random access
        frames = ((i, reader.get_frames([i])[0]) for i in asm.wanted())
    try:
        for i, frame in frames:
            yield from asm.add(i, frame)
    except VideoDecodeError as e:  # a damaged end (or middle): keep the windows before it
        state.update(truncated=True, error=e)
        log.warning("%s; the windows from there on are left out", e)


def _score(predictor: Predictor, plan: WindowPlan, batch: list[tuple[int, torch.Tensor]], source: str) -> list[Window]:
    x = torch.cat([clip for _, clip in batch])  # (n·crops, C, T, H, W)
    logits = torch.as_tensor(predictor.forward(x), dtype=torch.float32)
    k = predictor.meta.num_classes
    if tuple(logits.shape) != (len(x), k):
        raise UsageError(f"{predictor.name}: expected ({len(x)}, {k}) logits, got {tuple(logits.shape)}")
    probs = predictor.softmax(logits, source=source).view(len(batch), -1, k).mean(dim=1)  # (n, K)
    return [Window(i, plan.start_s(i), plan.end_s(i), p.tolist()) for (i, _), p in zip(batch, probs)]


def _reader(video: Any, pipeline: Any) -> tuple[Any, bool]:
    """``(reader, opened here)`` for a path or an already open reader."""
    if isinstance(video, (str, os.PathLike)):
        return open_video(video, modality=pipeline.modality, threads=pipeline.decode_threads), True
    if hasattr(video, "get_frames") and hasattr(video, "__len__"):
        return video, False
    raise UsageError(f"expected a video file or frame folder, got {type(video).__name__}")


def iter_windows(predictor: Predictor, video: Any, params: SegmentParams | None = None, *, start_window: int = 0,
                 progress: Progress | None = None, batch_size: int | None = None, plan: WindowPlan | None = None,
                 state: dict | None = None) -> Iterator[Window]:
    """Scored :class:`Window`\\s of ``video`` (a path or an open reader) in order, from ``start_window`` on.

    Yields exactly what an uninterrupted run yields from that window on (same times; scores to float
    tolerance: batches may differ). ``progress(done_s, total_s)`` after each window; ``batch_size``: views
    per forward (default the predictor's); ``plan``: reuse a :func:`plan_windows` of this video; ``state``:
    receives ``"plan"``, and ``"truncated"``/``"error"`` when decoding fails part-way (the windows before the
    failure are yielded, the rest are not; with none, the error is raised). Memory: the frames of the open
    windows only.
    """
    params = params if params is not None else SegmentParams()
    start_window = _integer("start_window", start_window, 0, MAX_WINDOWS)
    pipe = predictor.pipeline
    per_batch = max(1, (batch_size or predictor.batch_size) // pipe.num_crops)
    state = state if state is not None else {}
    reader, owned = _reader(video, pipe)
    clips = None
    try:
        plan = plan if plan is not None else plan_windows(reader, params, pipe.preprocess)
        state.update(plan=plan, truncated=False)
        if start_window > len(plan):
            raise UsageError(f"start_window {start_window} is past the last window ({len(plan) - 1}) of {reader.path}")
        clips = _background(_window_clips(pipe, reader, plan, start_window, state), PREFETCH)
        batch: list[tuple[int, torch.Tensor]] = []
        scored = 0
        for item in clips:
            batch.append(item)
            if len(batch) == per_batch:
                yield from _report(_score(predictor, plan, batch, reader.path), plan, progress)
                scored, batch = scored + len(batch), []
        if batch:
            yield from _report(_score(predictor, plan, batch, reader.path), plan, progress)
        elif not scored and state.get("error") is not None:  # nothing decoded: the video is unreadable
            raise state["error"]
    finally:
        if clips is not None:
            clips.close()  # stops the decoding thread before the reader closes under it
        if owned:
            reader.close()


def _report(windows: list[Window], plan: WindowPlan, progress: Progress | None) -> Iterator[Window]:
    for w in windows:
        yield w
        if progress is not None:
            progress(min(w.end_s, plan.duration_s), plan.duration_s)


# --- segments --------------------------------------------------------------------------------
def _smooth(rows: Sequence[Any], width: int, chunk: int = 1024) -> np.ndarray:
    """Centred moving average over ``width`` of ``n`` score rows ``(K,)`` (fewer at the ends) → float64 ``(n, K)``.

    Memory: two ``(n, K)`` arrays (hours of windows × hundreds of classes are tens of MB each).
    """
    n = len(rows)
    if width <= 1 or n <= 1:
        return np.asarray([np.asarray(r, dtype=np.float64) for r in rows])
    c = np.zeros((n + 1, len(rows[0])))
    for j, r in enumerate(rows, 1):
        c[j] = r
    np.cumsum(c, axis=0, out=c)
    i = np.arange(n)
    lo, hi = np.maximum(i - (width - 1) // 2, 0), np.minimum(i + width // 2 + 1, n)
    out = np.empty_like(c[1:])
    for a in range(0, n, chunk):  # bounded temporaries
        b = min(n, a + chunk)
        np.subtract(c[hi[a:b]], c[lo[a:b]], out=out[a:b])
        out[a:b] /= (hi[a:b] - lo[a:b])[:, None]
    return out


def _merge_short(runs: list[list[int]], bounds: np.ndarray, sm: np.ndarray, params: SegmentParams) -> list[list[int]]:
    """Runs ``[label, first window, end window]`` shorter than ``min_segment_s`` joined to a neighbour, shortest first."""
    n = len(runs)
    prev, nxt, alive = list(range(-1, n - 1)), [*range(1, n), -1], [True] * n

    def length(r: int) -> float:
        return float(bounds[runs[r][2]] - bounds[runs[r][1]])

    def score(r: int, over: int) -> float:  # how well run r's label fits run `over`'s windows
        lab, (_, a, b) = runs[r][0], runs[over]
        return params.threshold if lab < 0 else float(sm[a:b, lab].mean())

    def join(r: int, into: int) -> None:  # neighbours r and into become one run, labelled as `into`
        runs[into][1], runs[into][2] = min(runs[into][1], runs[r][1]), max(runs[into][2], runs[r][2])
        alive[r] = False
        p, q = prev[r], nxt[r]
        if p >= 0:
            nxt[p] = q
        if q >= 0:
            prev[q] = p

    heap = [(length(r), r) for r in range(n) if length(r) < params.min_segment_s]
    heapq.heapify(heap)
    while heap:
        d, r = heapq.heappop(heap)
        if not alive[r] or d != length(r):
            continue
        sides = [s for s in (prev[r], nxt[r]) if s >= 0]
        if not sides:
            continue
        into = max(sides, key=lambda s: (score(s, r), length(s), s == prev[r]))
        join(r, into)
        other = nxt[into] if into == prev[r] else prev[into]
        if other >= 0 and runs[other][0] == runs[into][0]:
            join(other, into)
        if length(into) < params.min_segment_s:
            heapq.heappush(heap, (length(into), into))
    return [runs[r] for r in range(n) if alive[r]]


def segments_from_windows(windows: Sequence[Window], class_names: Sequence[str],
                          params: SegmentParams | None = None) -> list[Segment]:
    """Segments from scored windows (any order; a pure function, see the module docstring)."""
    params = params if params is not None else SegmentParams()
    if not windows:
        return []
    windows = sorted(windows, key=lambda w: w.index)
    k = {len(w.scores) for w in windows}
    if k != {len(class_names)}:
        raise UsageError(f"windows have {sorted(k)} scores but there are {len(class_names)} class names")
    sm = _smooth([w.scores for w in windows], params.smooth)  # (n, K)
    labels = np.where(sm.max(axis=1) >= params.threshold, sm.argmax(axis=1), -1)
    starts = np.array([w.start_s for w in windows])
    ends = np.array([w.end_s for w in windows])
    centres = (starts + ends) / 2
    bounds = np.concatenate([[starts[0]], (centres[:-1] + centres[1:]) / 2, [ends[-1]]])
    cut = np.flatnonzero(np.diff(labels)) + 1
    edges = [0, *cut.tolist(), len(labels)]
    runs = [[int(labels[a]), a, b] for a, b in zip(edges[:-1], edges[1:])]
    runs = _merge_short(runs, bounds, sm, params)
    return [Segment(class_names[lab], float(bounds[a]), float(bounds[b]), float(sm[a:b, lab].mean()))
            for lab, a, b in runs if lab >= 0]


def segment_video(predictor: Predictor, video: Any, params: SegmentParams | None = None, *,
                  progress: Progress | None = None, batch_size: int | None = None, compact: bool = False,
                  **kwargs: Any) -> SegmentResult:
    """:func:`iter_windows` over the whole video, then :func:`segments_from_windows`.

    ``kwargs``: :class:`SegmentParams` fields (override ``params``). ``compact``: keep each window's scores as
    a float64 array (8 bytes a score instead of a list's 32; what the CLI keeps for hours of video).
    """
    params = SegmentParams.from_kwargs(params, kwargs)
    if kwargs:
        raise UsageError(f"unknown segment parameter {next(iter(kwargs))!r}; "
                         f"choose from {', '.join(f.name for f in fields(SegmentParams))}")
    state: dict[str, Any] = {}
    windows = []
    for w in iter_windows(predictor, video, params, progress=progress, batch_size=batch_size, state=state):
        windows.append(replace(w, scores=np.asarray(w.scores, dtype=np.float64)) if compact else w)
    plan: WindowPlan = state["plan"]
    names = [predictor.meta.label(k) for k in range(predictor.meta.num_classes)]
    return SegmentResult(video=str(video), duration_s=plan.duration_s, fps=plan.fps, class_names=names, windows=windows,
                         segments=segments_from_windows(windows, names, plan.params), params=plan.params,
                         truncated=bool(state["truncated"]))

