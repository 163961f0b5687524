"""``actionrec.Predictor``: a model, its clip pipeline and a backend, for one video or a million.

    >>> p = actionrec.Predictor("i3d_k400.safetensors", threads=2)
    >>> p.predict("clip.mp4").topk                      # [("playing cricket", 0.98), ...]
    >>> for pred in p.predict_many(paths, workers=2):   # decoding in worker processes,
    ...     print(pred.to_dict())                       # clips batched across videos, input order

The steps are public so that other front ends (the CLI, the HTTP server) compose the same objects:
``pipeline.load(video)`` → :class:`~actionrec.data.pipeline.VideoClips`, ``forward(tensor)`` →
logits, ``postprocess(logits, clips)`` → :class:`Prediction` (softmax averaged over the views).
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from actionrec.data.pipeline import ClipPipeline, VideoClips
from actionrec.deploy.backends import load_backend
from actionrec.deploy.source import resolve_model
from actionrec.errors import ActionrecError, UsageError
from actionrec.meta import ModelMeta
from actionrec.runtime import Runtime, available_cores, resolve_runtime, worker_init

__all__ = ["Predictor", "Prediction", "ModelOutputError", "DecodeFailure", "load_clips", "error_line", "MAX_BATCH", "MAX_WORKERS", "default_workers"]

log = logging.getLogger(__name__)

MAX_BATCH = 1024
MAX_TOPK = 10_000
MAX_WORKERS = 64
# CPU: batch 1-2 is as fast per clip as larger batches (README bench tables) and keeps activations small
DEFAULT_BATCH_CPU = 2
DEFAULT_BATCH_GPU = 16
# what a bad video may raise while it is decoded; anything else is a bug and propagates
VIDEO_ERRORS = (ActionrecError, OSError, IndexError, ValueError)


class ModelOutputError(ActionrecError, RuntimeError):
    """The model produced non-finite scores (broken weights or export)."""


@dataclass
class Prediction:
    """The result for one video: ``topk`` ``(label, score)`` pairs, or ``error`` when it could not be read."""

    video: str | None
    topk: list[tuple[str, float]] = field(default_factory=list)
    clips: int = 0  # clips scored (views = clips × crops)
    duration: float = 0.0  # seconds of video that decoded
    truncated: bool = False  # the video ended (or broke) before its container said: scored on what decoded
    error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # decode_s, forward_s
    probs: np.ndarray | None = field(default=None, repr=False)  # (K,) mean softmax over views
    clip_len: int = 0
    runtime: dict[str, Any] | None = field(default=None, repr=False)  # backend, device, threads, precision

    def to_dict(self, *, timings: bool = False) -> dict[str, Any]:
        """The ``--output`` row; ``timings``: with the ``timings`` and the ``runtime`` they were measured with (``--json``)."""
        d: dict[str, Any] = {
            "video": self.video,
            "predictions": [{"label": lab, "score": round(float(s), 6)} for lab, s in self.topk],
            "clips": self.clips,
            "duration": round(float(self.duration), 3),
            "truncated": self.truncated,
        }
        if self.error is not None:
            d["error"] = self.error
        if timings and self.error is None:
            d["timings"] = {k: round(float(v), 4) for k, v in self.timings.items()}
            d["runtime"] = self.runtime
        return d


def default_workers() -> int:
    """Decoding processes for a collection: a quarter of the cores, 1 to 4."""
    return max(1, min(4, available_cores() // 4))


def _bounded(name: str, value: int, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= value <= high:
        raise UsageError(f"{name} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def _return_freed_memory() -> None:
    """Give the heap freed while loading (the checkpoint, the eager copy of an optimised model) back to the OS.

    glibc keeps freed blocks of up to 32 MB (a convolution's weights) in the heap; after a load that
    is several hundred MB of RSS that nothing uses. No-op elsewhere than glibc.
    """
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class Predictor:
    """Top-k actions of videos with one model (see the module docstring).

    Args:
        model: a MODEL (:func:`~actionrec.deploy.source.resolve_model`): a checkpoint, an ``.onnx`` file, a
            ``.pt2`` package, a known weight set's name, or a module with ``.meta``.
        backend: ``"auto"`` or a name of the backend registry (:data:`~actionrec.deploy.backends.BACKENDS`).
        device: ``"cpu"`` (default), ``"cuda[:i]"`` or ``"auto"``; ``threads``: intra-op threads (default: the
            cores this process may use); ``precision``: ``"fp32"``, ``"fp16"``, ``"bf16"``; or a whole ``runtime``.
        num_clips: clips per video (default: from its length, up to 10); ``num_crops``: 1 or 3.
        optimize: the backend's fast path (``None``: default, ``False``: plain model).
        batch_size: views per forward call (default 2 on the CPU, 16 on a GPU).
        calib: int8 backends on a float model: calibration videos (or an ``(N, C, T, H, W)`` tensor).
        overrides: ``clip_len``, ``frame_stride``, ``resize_short``, ``crop_size`` instead of the
            model's (a warning names each change).
    """

    def __init__(self, model: Any, *, backend: str = "auto", device: str | None = None, threads: int | None = None,
                 precision: str = "fp32", runtime: Runtime | None = None, num_clips: int | None = None,
                 num_crops: int = 1, optimize: bool | None = None, batch_size: int | None = None, calib: Any = None,
                 **overrides: int | None) -> None:
        self.source = resolve_model(model)
        self.name = self.source.spec
        self.runtime = (runtime or resolve_runtime(device=device, threads=threads, precision=precision)).apply()
        self.threads = self.runtime.threads
        if batch_size is None:
            batch_size = DEFAULT_BATCH_GPU if self.runtime.is_cuda else DEFAULT_BATCH_CPU
        self.batch_size = _bounded("batch_size", batch_size, 1, MAX_BATCH)
        self.backend = load_backend(self.source, backend=backend, runtime=self.runtime, optimize=optimize, calib=calib)
        _return_freed_memory()
        self.meta: ModelMeta = self.backend.meta
        if self.source.kind == "module":
            self.name = self.meta.arch
        self.pipeline = ClipPipeline.from_meta(self.meta, num_clips=num_clips, num_crops=num_crops, **overrides)
        fixed, clip_len = self.backend.fixed_clip_len, self.pipeline.preprocess.clip_len
        if fixed is not None and fixed != clip_len:
            raise UsageError(f"{self.name} was exported for clips of {fixed} frames and cannot take {clip_len}; "
                             f"drop the clip length override or export with another clip length")
        self._lock = threading.Lock()

    @property
    def runtime_info(self) -> dict[str, Any]:
        """How this predictor runs, as recorded beside timings."""
        rt = self.runtime
        return {"backend": self.backend.backend, "device": rt.device, "threads": rt.threads, "precision": rt.precision}

    def __repr__(self) -> str:
        return f"Predictor({self.name!r}, backend={self.backend.backend!r}, threads={self.threads}, pipeline={self.pipeline})"

    # --- the three steps -------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The backend alone: float32 ``(N, C, T, H, W)`` → float32 ``(N, K)`` logits (serialised by a lock)."""
        with self._lock:
            return self.backend(x)

    def _forward_views(self, views: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.forward(views[i : i + self.batch_size]) for i in range(0, len(views), self.batch_size)])

    def check_topk(self, topk: int) -> int:
        """``topk`` validated (1 to 10,000) and capped at the number of classes."""
        return min(_bounded("topk", topk, 1, MAX_TOPK), self.meta.num_classes)

    def softmax(self, logits: torch.Tensor, *, source: str | None = None) -> torch.Tensor:
        """float32 ``(N, K)`` logits → float64 ``(N, K)`` probabilities; non-finite logits raise :class:`ModelOutputError`."""
        if not torch.isfinite(logits).all():
            raise ModelOutputError(f"{self.name}: the model produced non-finite scores (NaN or inf) on "
                                   f"{source or 'the given frames'}; its weights or export are broken")
        return torch.softmax(logits.double(), dim=1)

    def postprocess(self, logits: torch.Tensor, clips: VideoClips, *, topk: int = 5) -> Prediction:
        """Mean softmax over the ``(V, K)`` view logits of one video → :class:`Prediction` (top ``topk``)."""
        topk = self.check_topk(topk)
        logits = torch.as_tensor(logits, dtype=torch.float32)
        if logits.dim() != 2 or logits.shape[1] != self.meta.num_classes or len(logits) != len(clips.tensor):
            raise UsageError(f"{self.name}: expected ({len(clips.tensor)}, {self.meta.num_classes}) logits, got {tuple(logits.shape)}")
        probs = self.softmax(logits, source=clips.path).mean(dim=0).numpy()
        order = np.argsort(-probs, kind="stable")[:topk]
        return Prediction(
            video=clips.path, topk=[(self.meta.label(int(k)), float(probs[k])) for k in order], clips=clips.num_clips,
            duration=clips.duration, truncated=clips.truncated, probs=probs, clip_len=self.pipeline.preprocess.clip_len,
            runtime=self.runtime_info,
        )

    # --- one video -------------------------------------------------------------------------
    def predict(self, video: str | os.PathLike | np.ndarray, *, topk: int = 5, fps: float = 0.0) -> Prediction:
        """Top-k of one video file, frame folder, or uint8 ``(T, H, W, 3)`` array (``fps`` gives it a duration).

        Raises ``FileNotFoundError`` / :class:`~actionrec.data.video.VideoDecodeError` for an unreadable video.
        """
        topk = self.check_topk(topk)
        t0 = time.perf_counter()
        clips = self.pipeline.load(video, fps=fps)
        t1 = time.perf_counter()
        logits = self._forward_views(clips.tensor)
        pred = self.postprocess(logits, clips, topk=topk)
        pred.timings = {"decode_s": t1 - t0, "forward_s": time.perf_counter() - t1}
        return pred

    # --- a long video: what happens when ----------------------------------------------------
    def segments(self, video: str | os.PathLike, params: Any = None, **kwargs: Any) -> Any:
        """Labelled time segments and per-window scores of ``video``: a
        :class:`~actionrec.inference.segments.SegmentResult` (``kwargs``: :class:`~actionrec.inference.segments.SegmentParams`
        fields such as ``window_s``, ``stride_frames``, ``threshold``; or ``progress``, ``batch_size``)."""
        from actionrec.inference.segments import segment_video

        return segment_video(self, video, params, **kwargs)

    # --- many videos -----------------------------------------------------------------------
    def predict_many(self, videos: Iterable[str | os.PathLike], *, topk: int = 5, workers: int | None = None,
                     batch_size: int | None = None) -> Iterator[Prediction]:
        """Predictions for ``videos`` in their order; an unreadable one gives a :class:`Prediction` with ``error``.

        Videos are decoded in ``workers`` processes (default :func:`default_workers`; 0: in this
        process) while the model runs; views of several videos share a batch of ``batch_size``.
        """
        from torch.utils.data import DataLoader

        workers = default_workers() if workers is None else _bounded("workers", workers, 0, MAX_WORKERS)
        paths = [str(v) for v in videos]
        if not paths:
            return
        loader = DataLoader(_DecodeSet(paths, self.pipeline), batch_size=None, num_workers=min(workers, len(paths)),
                            collate_fn=_identity, worker_init_fn=worker_init, prefetch_factor=2 if workers else None)
        yield from self.predict_decoded(loader, topk=topk, batch_size=batch_size)

    def predict_decoded(self, items: Iterable[VideoClips | DecodeFailure], *, topk: int = 5,
                        batch_size: int | None = None) -> Iterator[Prediction]:
        """Predictions for videos already decoded by :func:`load_clips` (elsewhere: worker processes, Ray
        tasks), in their order; views of consecutive videos share batches of ``batch_size``."""
        topk = self.check_topk(topk)
        batch = self.batch_size if batch_size is None else _bounded("batch_size", batch_size, 1, MAX_BATCH)
        run = _BatchRun(self, batch, topk)
        for item in items:
            run.add(item)
            yield from run.ready()
        run.flush()
        yield from run.ready()


def _identity(x: Any) -> Any:
    return x


@dataclass
class DecodeFailure:
    """A video :func:`load_clips` could not read: its path and the one-line reason (naming the path)."""

    path: str
    error: str


def error_line(path: str, e: BaseException) -> str:
    """The one-line reason a video could not be read, naming ``path`` (the error rows of every engine)."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return msg if path in msg else f"{path}: {msg}"


def load_clips(pipeline: ClipPipeline, path: str) -> VideoClips | DecodeFailure:
    """The :class:`VideoClips` of ``path`` (``extra["decode_s"]`` timed), or a :class:`DecodeFailure` saying why not."""
    t0 = time.perf_counter()
    try:
        clips = pipeline.load(path)
    except VIDEO_ERRORS as e:
        return DecodeFailure(path, error_line(path, e))
    clips.path = path  # as given (relative stays relative): the key of resumable outputs
    clips.extra["decode_s"] = time.perf_counter() - t0
    return clips


class _DecodeSet(torch.utils.data.Dataset):
    """Item ``i``: :func:`load_clips` of ``paths[i]``."""

    def __init__(self, paths: list[str], pipeline: ClipPipeline) -> None:
        self.paths, self.pipeline = paths, pipeline

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> VideoClips | DecodeFailure:
        return load_clips(self.pipeline, self.paths[i])


class _BatchRun:
    """Views of consecutive videos cut into batches; predictions released in input order."""

    def __init__(self, predictor: Predictor, batch: int, topk: int) -> None:
        self.p, self.batch, self.topk = predictor, batch, topk
        self.pending: collections.deque[list] = collections.deque()  # [item, logits parts, views left, forward_s]
        self.views: collections.deque[tuple[list, torch.Tensor]] = collections.deque()
        self.buffered = 0
        self.out: list[Prediction] = []

    def add(self, item: VideoClips | DecodeFailure) -> None:
        entry = [item, [], 0 if isinstance(item, DecodeFailure) else len(item.tensor), 0.0]
        self.pending.append(entry)
        if entry[2]:
            self.views.append((entry, item.tensor))
            self.buffered += entry[2]
        while self.buffered >= self.batch:
            self._run(self.batch)
        self._release()

    def flush(self) -> None:
        while self.buffered:
            self._run(min(self.batch, self.buffered))
        self._release()

    def _run(self, n: int) -> None:
        parts, owners = [], []
        while n:
            entry, t = self.views.popleft()
            take = min(n, len(t))
            parts.append(t[:take])
            owners.append((entry, take))
            if take < len(t):
                self.views.appendleft((entry, t[take:]))
            n -= take
            self.buffered -= take
        t0 = time.perf_counter()
        logits = self.p.forward(torch.cat(parts))
        per_view = (time.perf_counter() - t0) / len(logits)
        i = 0
        for entry, take in owners:
            entry[1].append(logits[i : i + take])
            entry[2] -= take
            entry[3] += per_view * take
            i += take

    def _release(self) -> None:
        while self.pending and self.pending[0][2] == 0:
            item, parts, _, forward_s = self.pending.popleft()
            if isinstance(item, DecodeFailure):
                self.out.append(Prediction(video=item.path, error=item.error))
                continue
            pred = self.p.postprocess(torch.cat(parts), item, topk=self.topk)
            pred.timings = {"decode_s": item.extra.get("decode_s", 0.0), "forward_s": forward_s}
            self.out.append(pred)

    def ready(self) -> Iterator[Prediction]:
        out, self.out = self.out, []
        yield from out
