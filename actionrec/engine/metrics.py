"""Classification metrics on numpy arrays of logits/scores (pure functions, no torch).

Terminology used across actionrec:

* **clip-level** accuracy scores every view (clip × crop) of a video on its own;
* **video-level** accuracy averages the softmax of all views of a video, then scores the video.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from actionrec.errors import UsageError

__all__ = [
    "softmax",
    "topk_correct",
    "topk_accuracy",
    "confusion_matrix",
    "per_class_accuracy",
    "EvalMetrics",
    "summarize",
    "agreement",
]


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax along ``axis`` (float64)."""
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=axis, keepdims=True)


def topk_correct(scores: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    """Boolean ``(N,)``: is the label among the ``k`` highest scores of ``scores (N, K)``.

    Ties are broken towards the lower class index (stable sort), so results are reproducible.
    """
    scores = np.asarray(scores)
    labels = np.asarray(labels).astype(np.int64)
    if scores.ndim != 2 or scores.shape[0] != labels.shape[0]:
        raise UsageError(f"scores must be (N, K) with N = len(labels); got {scores.shape} and {labels.shape}")
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return (order == labels[:, None]).any(axis=1)


def topk_accuracy(scores: np.ndarray, labels: np.ndarray, k: int = 1) -> float:
    """Share of rows whose label is in the top ``k`` (0.0 for an empty set)."""
    if len(labels) == 0:
        return 0.0
    return float(topk_correct(scores, labels, k).mean())


def confusion_matrix(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """``(K, K)`` int64 counts: row = true class, column = predicted class."""
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(labels, dtype=np.int64), np.asarray(pred, dtype=np.int64)), 1)
    return cm


def per_class_accuracy(cm: np.ndarray) -> np.ndarray:
    """Recall per class from a confusion matrix; NaN for classes without samples."""
    totals = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(totals > 0, np.diag(cm) / np.maximum(totals, 1), np.nan)


@dataclass
class EvalMetrics:
    """Metrics of one evaluation (accuracies in [0, 1])."""

    num_videos: int
    num_views: int  # views per video (clips × crops)
    clip_top1: float
    clip_top5: float
    video_top1: float
    video_top5: float
    mean_class_accuracy: float  # video-level, mean over classes present
    per_class: list[float]  # video-level recall per class (NaN: class absent)
    confusion: np.ndarray  # (K, K) video-level
    agreement: dict[str, float] | None = None  # with a reference model: see :func:`agreement`
    runtime: dict | None = None  # backend, device, threads, host: how the scores were computed
    left_out: dict | None = None  # listed videos not scored, by reason (unknown_labels, missing, empty, unreadable)

    def as_row(self) -> dict[str, float | int]:
        row: dict[str, float | int] = {
            "videos": self.num_videos,
            "views": self.num_views,
            "clip_top1": self.clip_top1,
            "clip_top5": self.clip_top5,
            "video_top1": self.video_top1,
            "video_top5": self.video_top5,
            "mean_class_acc": self.mean_class_accuracy,
        }
        return {**row, **(self.agreement or {})}


def summarize(view_logits: np.ndarray, labels: np.ndarray, num_classes: int | None = None) -> EvalMetrics:
    """Clip- and video-level metrics from ``view_logits (N, V, K)`` and ``labels (N,)``.

    Video scores are the mean of the views' softmax.
    """
    view_logits = np.asarray(view_logits, dtype=np.float64)
    if view_logits.ndim == 2:
        view_logits = view_logits[:, None]
    if view_logits.ndim != 3:
        raise UsageError(f"view_logits must be (N, V, K), got {view_logits.shape}")
    n, v, k = view_logits.shape
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (n,):
        raise UsageError(f"labels must be ({n},), got {labels.shape}")
    num_classes = num_classes or k
    clip_scores = view_logits.reshape(n * v, k)
    clip_labels = np.repeat(labels, v)
    video_scores = softmax(view_logits).mean(axis=1)
    cm = confusion_matrix(video_scores.argmax(axis=1) if n else np.zeros(0), labels, num_classes)
    pc = per_class_accuracy(cm)
    present = pc[~np.isnan(pc)]
    return EvalMetrics(
        num_videos=n,
        num_views=v,
        clip_top1=topk_accuracy(clip_scores, clip_labels, 1),
        clip_top5=topk_accuracy(clip_scores, clip_labels, 5),
        video_top1=topk_accuracy(video_scores, labels, 1),
        video_top5=topk_accuracy(video_scores, labels, 5),
        mean_class_accuracy=float(present.mean()) if present.size else 0.0,
        per_class=[float(x) for x in pc],
        confusion=cm,
    )


def agreement(view_logits: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """How far a deployed model is from its float reference on the same views ``(N, V, K)``.

    ``clip_top1_agreement``: share of views with the same top-1 class; ``video_top1_agreement``: the same
    for the video scores (mean softmax over views); ``max_abs_logit_diff``: the largest |Δlogit|.
    """
    a, b = np.asarray(view_logits, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 3:
        raise UsageError(f"agreement needs two (N, V, K) arrays of one shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return {"clip_top1_agreement": float("nan"), "video_top1_agreement": float("nan"), "max_abs_logit_diff": float("nan")}
    clip = float((a.argmax(axis=2) == b.argmax(axis=2)).mean())
    video = float((softmax(a).mean(axis=1).argmax(axis=1) == softmax(b).mean(axis=1).argmax(axis=1)).mean())
    return {"clip_top1_agreement": clip, "video_top1_agreement": video, "max_abs_logit_diff": float(np.abs(a - b).max())}
