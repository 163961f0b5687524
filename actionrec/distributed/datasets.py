"""Ray Data pipelines over videos: ``predict_dataset`` and ``segment_dataset`` take and return a ``ray.data.Dataset``.

    >>> import ray, actionrec.distributed as ad
    >>> ds = ray.data.read_parquet("s3://bucket/videos.parquet")          # a "video" column of paths or URLs
    >>> out = ad.predict_dataset(ds, "i3d_kinetics400", topk=5, options=ad.RayOptions(workers=(1, 8)))
    >>> out.write_parquet("s3://bucket/predictions/")                    # video, label, score, error, result

``predict_dataset``: the clips of each video are decoded and sampled in CPU tasks (our
:class:`~actionrec.data.pipeline.ClipPipeline`, exactly as ``actionrec predict`` does) and scored in a pool of
actors, each holding one :class:`~actionrec.inference.Predictor` (its CPUs, or a GPU, reserved through Ray).
``segment_dataset``: each long video is decoded and scored window by window inside an actor (memory does
not grow with the video; see :mod:`actionrec.inference.segments`).

Rows out, one per input row (in completion order, not input order):

=========  ====================================================================================
video      the input path, as given
error      "" or why the video could not be read (one line naming it)
result     the JSON of the row ``actionrec predict --output x.jsonl`` writes for it (``--segments``: its
           segments row), so that a Ray run and a local run of one job give the same rows
label      predict only: top-1 label ("" on error)
score      predict only: top-1 mean softmax score (0.0 on error)
=========  ====================================================================================

Ray's fault tolerance applies: a task or actor lost with its worker process or node is run again elsewhere
(actors restart), and the rows of lost work are produced once.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import numpy as np

from actionrec.distributed.cluster import RayOptions, check_fits, require_ray
from actionrec.errors import UsageError

__all__ = ["predict_dataset", "segment_dataset", "VIDEO_COLUMN"]

log = logging.getLogger(__name__)

VIDEO_COLUMN = "video"
_NO_CLIPS = np.zeros((0, 0, 0, 0, 0), np.float32)
_NO_INDICES = np.zeros((0, 0), np.int64)


def _predictor(model: Any, options: RayOptions, predictor_kwargs: dict[str, Any]) -> Any:
    """A :class:`~actionrec.inference.Predictor` inside a worker: its threads and device from the Ray resources."""
    from actionrec.inference import Predictor
    from actionrec.runtime import resolve_runtime

    runtime = resolve_runtime(device=options.device, threads=options.threads,
                              precision=predictor_kwargs.pop("precision", "fp32"))
    return Predictor(model, runtime=runtime, **predictor_kwargs)


def _actors(ray: Any, options: RayOptions) -> Any:
    lo, hi = options.workers
    return ray.data.ActorPoolStrategy(min_size=lo, max_size=hi)


def _setup(what: str, ds: Any, model: Any, options: RayOptions | None, topk: int) -> tuple[Any, RayOptions, Any, int]:
    """(ray, options, the model's metadata, topk capped at its classes), after checking the cluster, ``ds`` and ``topk``."""
    from actionrec.deploy.source import resolve_model

    ray = require_ray(what)
    options = options or RayOptions()
    check_fits(ray, options)
    _check_input(ds)
    if not 1 <= topk <= 10_000:
        raise UsageError(f"topk must be 1..10000, got {topk}")
    meta = resolve_model(model).meta  # from the file's header: the driver loads no weights
    return ray, options, meta, min(topk, meta.num_classes)


# --- predict: decode in tasks, score in actors --------------------------------------------------
class _Decode:
    """Ray task: a row's video → its clips (or why they could not be read), as plain columns."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from actionrec.inference.predictor import DecodeFailure, load_clips
        from actionrec.runtime import worker_init

        worker_init()  # one thread: the tasks are the parallelism
        video = str(row[VIDEO_COLUMN])
        item = load_clips(self.pipeline, video)
        if isinstance(item, DecodeFailure):
            return {VIDEO_COLUMN: video, "error": item.error, "clips": _NO_CLIPS, "indices": _NO_INDICES, "n_frames": 0,
                    "fps": 0.0, "truncated": False, "num_crops": 1, "decode_s": 0.0}
        return {VIDEO_COLUMN: video, "error": "", "clips": item.tensor.numpy(), "indices": np.stack(item.indices),
                "n_frames": int(item.n_frames), "fps": float(item.fps), "truncated": bool(item.truncated),
                "num_crops": int(item.num_crops), "decode_s": float(item.extra.get("decode_s", 0.0))}


def _clips_of(batch: dict[str, Any], i: int) -> Any:
    import torch

    from actionrec.data.pipeline import VideoClips
    from actionrec.inference.predictor import DecodeFailure

    video = str(batch[VIDEO_COLUMN][i])
    if batch["error"][i]:
        return DecodeFailure(video, str(batch["error"][i]))
    clips = VideoClips(torch.from_numpy(np.ascontiguousarray(batch["clips"][i])), indices=list(batch["indices"][i]),
                       n_frames=int(batch["n_frames"][i]), fps=float(batch["fps"][i]), path=video,
                       truncated=bool(batch["truncated"][i]), num_crops=int(batch["num_crops"][i]))
    clips.extra["decode_s"] = float(batch["decode_s"][i])
    return clips


class _Score:
    """Ray actor: one Predictor; a batch of decoded videos → their prediction rows (views batched across videos)."""

    def __init__(self, model: Any, options: RayOptions, predictor_kwargs: dict[str, Any], topk: int) -> None:
        self.predictor = _predictor(model, options, dict(predictor_kwargs))
        self.topk = topk

    def __call__(self, batch: dict[str, Any]) -> dict[str, list[Any]]:
        items = [_clips_of(batch, i) for i in range(len(batch[VIDEO_COLUMN]))]
        out: dict[str, list[Any]] = {VIDEO_COLUMN: [], "error": [], "result": [], "label": [], "score": []}
        for pred in self.predictor.predict_decoded(items, topk=self.topk):
            out[VIDEO_COLUMN].append(pred.video)
            out["error"].append(pred.error or "")
            out["result"].append(json.dumps(pred.to_dict(), ensure_ascii=False))
            out["label"].append(pred.topk[0][0] if pred.topk else "")
            out["score"].append(float(pred.topk[0][1]) if pred.topk else 0.0)
        return out


def _check_input(ds: Any) -> None:
    columns = ds.columns(fetch_if_missing=False)
    if columns is not None and VIDEO_COLUMN not in columns:
        raise UsageError(f"the dataset has no {VIDEO_COLUMN!r} column (it has: {', '.join(columns)}); "
                         f"rename the column of video paths to {VIDEO_COLUMN!r}")


def predict_dataset(ds: Any, model: Any, *, topk: int = 5, options: RayOptions | None = None, num_clips: int | None = None,
                    num_crops: int = 1, backend: str = "auto", optimize: bool | None = None, precision: str = "fp32",
                    calib: Any = None, videos_per_batch: int = 4, batch_size: int | None = None,
                    **overrides: int | None) -> Any:
    """Top-k of every video of ``ds`` (a ``ray.data.Dataset`` with a ``video`` column); see the module docstring.

    Args:
        model: a MODEL (checkpoint, ``.onnx``, ``.pt2``, weight-set name) readable on every node, or a module.
        options: actors (``workers``), CPUs or GPUs per actor (:class:`RayOptions`).
        num_clips, num_crops, backend, optimize, precision, calib, batch_size, overrides: as
            :class:`~actionrec.inference.Predictor` (an int8 backend calibrates in each actor).
        videos_per_batch: decoded videos handed to an actor per call (their views share forward batches).
    """
    from actionrec.data.pipeline import ClipPipeline

    ray, options, meta, topk = _setup("predict_dataset", ds, model, options, topk)
    pipeline = ClipPipeline.from_meta(meta, num_clips=num_clips, num_crops=num_crops, **overrides)
    kwargs = {"num_clips": num_clips, "num_crops": num_crops, "backend": backend, "optimize": optimize,
              "precision": precision, "calib": calib, "batch_size": batch_size, **overrides}
    decoded = ds.map(_Decode(pipeline), num_cpus=1)  # tasks: CPU-bound decoding scales with the cluster's CPUs
    return decoded.map_batches(_Score, fn_constructor_args=(model, options, kwargs, topk),
                               batch_size=videos_per_batch, batch_format="numpy", compute=_actors(ray, options),
                               num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker or None)


# --- segments: one long video per actor call -----------------------------------------------------
class _Segment:
    """Ray actor: one Predictor; a video → its segments row (decoded and scored window by window)."""

    def __init__(self, model: Any, options: RayOptions, predictor_kwargs: dict[str, Any], params: Any, topk: int) -> None:
        self.predictor = _predictor(model, options, dict(predictor_kwargs))
        self.params, self.topk = params, topk

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        from actionrec.inference.predictor import VIDEO_ERRORS, error_line
        from actionrec.inference.segments import segment_video

        video = str(row[VIDEO_COLUMN])
        try:
            result = segment_video(self.predictor, video, self.params, compact=True)
        except VIDEO_ERRORS as e:
            msg = error_line(video, e)
            return {VIDEO_COLUMN: video, "error": msg, "result": json.dumps({"video": video, "error": msg}, ensure_ascii=False)}
        return {VIDEO_COLUMN: video, "error": "", "result": json.dumps(result.to_dict(topk=self.topk), ensure_ascii=False)}


def segment_dataset(ds: Any, model: Any, params: Any = None, *, topk: int = 5, options: RayOptions | None = None,
                    num_crops: int = 1, backend: str = "auto", optimize: bool | None = None, precision: str = "fp32",
                    calib: Any = None, batch_size: int | None = None, **overrides: int | None) -> Any:
    """Labelled time segments of every video of ``ds`` (a ``video`` column); ``params``: a
    :class:`~actionrec.inference.segments.SegmentParams` (default: the model's window). Rows: ``video``, ``error``, ``result``."""
    from actionrec.inference.segments import SegmentParams

    ray, options, _, topk = _setup("segment_dataset", ds, model, options, topk)
    kwargs = {"num_crops": num_crops, "backend": backend, "optimize": optimize, "precision": precision,
              "calib": calib, "batch_size": batch_size, **overrides}
    return ds.map(_Segment, fn_constructor_args=(model, options, kwargs, params or SegmentParams(), topk),
                  compute=_actors(ray, options), num_cpus=options.cpus_per_worker,
                  num_gpus=options.gpus_per_worker or None)
