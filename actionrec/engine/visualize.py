"""Pictures: labels drawn on frames, GIF/MP4 writing, training curves and confusion matrices."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from actionrec.errors import UsageError
from actionrec.io import atomic_path

log = logging.getLogger(__name__)

__all__ = ["draw_label", "write_video", "plot_curves", "plot_confusion"]


def draw_label(frame: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """Return a copy of uint8 ``(H, W, 3)`` RGB ``frame`` with ``lines`` written on a dark band at the top.

    Small frames are upscaled (short side 224) first, so the text stays legible.
    """
    import cv2

    img = np.ascontiguousarray(frame[..., :3] if frame.shape[-1] >= 3 else np.repeat(frame[..., :1], 3, axis=-1))
    h, w = img.shape[:2]
    if min(h, w) < 224:
        s = 224 / min(h, w)
        img = cv2.resize(img, (round(w * s / 2) * 2, round(h * s / 2) * 2), interpolation=cv2.INTER_NEAREST)
        h, w = img.shape[:2]
    scale = max(0.4, min(w, 640) / 640)
    thick = 1 if scale < 0.8 else 2
    line_h = int(22 * scale) + 6
    band = img[: line_h * len(lines) + 6].astype(np.float32)
    img[: line_h * len(lines) + 6] = (band * 0.35).astype(np.uint8)
    for i, text in enumerate(lines):
        y = 4 + line_h * (i + 1) - 6
        cv2.putText(img, text, (6, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6 * scale, (255, 255, 255), thick, cv2.LINE_AA)
    return img


def write_video(frames: Sequence[np.ndarray] | np.ndarray, path: str | Path, *, fps: float = 12.0) -> Path:
    """Write uint8 RGB frames as ``.gif`` (Pillow, looping) or ``.mp4`` (PyAV, H.264), atomically."""
    path = Path(path)
    frames = [np.ascontiguousarray(f) for f in frames]
    if not frames:
        raise UsageError(f"{path}: no frames to write")
    suffix = path.suffix.lower()
    if suffix == ".gif":
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        with atomic_path(path, suffix=".gif") as tmp:
            images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=max(20, int(1000 / fps)), loop=0)
    elif suffix == ".mp4":
        import av

        h, w = frames[0].shape[:2]
        h2, w2 = h - h % 2, w - w % 2
        with atomic_path(path, suffix=".mp4") as tmp:
            with av.open(str(tmp), "w", format="mp4") as c:
                s = c.add_stream("libx264", rate=max(1, round(fps)))
                s.width, s.height, s.pix_fmt = w2, h2, "yuv420p"
                for f in frames:
                    for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f[:h2, :w2]), format="rgb24")):
                        c.mux(p)
                for p in s.encode():
                    c.mux(p)
    else:
        raise UsageError(f"{path}: output must end in .gif or .mp4")
    return path


def _figure():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def plot_curves(records: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Training loss (per step and per epoch), learning rate and validation accuracy vs epoch, as PNG."""
    steps = [r for r in records if r.get("type") == "step"]
    epochs = [r for r in records if r.get("type") == "epoch"]
    if not epochs and not steps:
        return None
    plt = _figure()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    ax = axes[0]
    if steps:
        ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], lw=0.8, alpha=0.6, label="step loss")
    ax.set_xlabel("step"), ax.set_ylabel("loss"), ax.set_title("training loss")
    if epochs and steps and "train_loss" in epochs[0]:
        last_step = {r["epoch"]: r["step"] for r in steps}
        xs = [last_step.get(r["epoch"]) for r in epochs]
        if all(x is not None for x in xs):
            ax.plot(xs, [r["train_loss"] for r in epochs], "o-", label="epoch mean")
    ax.legend()
    ax = axes[1]
    ax.plot([r["epoch"] for r in epochs], [r.get("lr", np.nan) for r in epochs], "o-")
    ax.set_xlabel("epoch"), ax.set_title("learning rate (end of epoch)")
    ax = axes[2]
    for key in ("train_top1", "val_clip_top1", "val_video_top1"):
        pts = [(r["epoch"], r[key]) for r in epochs if key in r]
        if pts:
            ax.plot(*zip(*pts), "o-", label=key)
    ax.set_xlabel("epoch"), ax.set_ylim(0, 1), ax.set_title("accuracy"), ax.legend()
    return _save_png(plt, fig, path)


def _save_png(plt, fig, path: str | Path) -> Path:  # noqa: ANN001
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=90, format="png")
    plt.close(fig)
    return path


def plot_confusion(cm: np.ndarray, class_names: Sequence[str], path: str | Path, *, title: str = "") -> Path:
    """Row-normalised confusion matrix as PNG (rows: true class, columns: predicted)."""
    plt = _figure()
    k = cm.shape[0]
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = min(max(4.0, 0.35 * k + 2), 40.0)
    fig, ax = plt.subplots(figsize=(size, size))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    if k <= 60:
        ax.set_xticks(range(k), labels=list(class_names), rotation=90, fontsize=7 if k > 20 else 9)
        ax.set_yticks(range(k), labels=list(class_names), fontsize=7 if k > 20 else 9)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if cm[i, j]:
                    ax.text(j, i, str(cm[i, j]), ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted"), ax.set_ylabel("true"), ax.set_title(title or "confusion matrix (video-level)")
    fig.colorbar(im, ax=ax, fraction=0.046)
    return _save_png(plt, fig, path)
