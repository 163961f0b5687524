"""Pictures: predictions drawn on frames, streaming GIF/MP4 writing, training curves and confusion matrices."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from actionrec.errors import UsageError
from actionrec.io import atomic_path

log = logging.getLogger(__name__)

__all__ = ["OUTPUT_SUFFIXES", "check_video_output", "draw_predictions", "VideoWriter", "write_video", "annotate_video",
           "plot_curves", "plot_confusion"]

OUTPUT_SUFFIXES = (".gif", ".mp4")
MIN_SHORT_SIDE = 256  # smaller frames are upscaled before drawing, so the text has pixels to live in
LINE_FRACTION = 1 / 16  # one text line is this fraction of the (drawn) frame height
GIF_MAX_WIDTH = 480
GIF_MAX_FPS = 10.0
GIF_MAX_FRAMES = 600  # Pillow holds a GIF's frames until it is written: 1 minute at 10 fps

TopK = Sequence[tuple[str, float]]


def check_video_output(path: str | Path) -> Path:
    """``path`` if it ends in .gif or .mp4 (checked before any work), else :class:`UsageError`."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise UsageError(f"{path}: the annotated video must end in .gif or .mp4")
    if path.is_dir():
        raise UsageError(f"{path}: is a directory")
    return path


def _put_text(img: np.ndarray, text: str, x: int, y: int, height: int, color=(255, 255, 255)) -> None:  # noqa: ANN001
    import cv2

    scale = height / 22.0  # FONT_HERSHEY_SIMPLEX at scale 1 is about 22 px from top to baseline
    thick = max(1, round(height / 12))
    cv2.putText(img, text, (x, y), cv2.FONT_HERSHEY_SIMPLEX, scale, color, thick, cv2.LINE_AA)


def draw_predictions(frame: np.ndarray, topk: TopK, *, time_s: float | None = None) -> np.ndarray:
    """A copy of uint8 ``(H, W, 3)`` ``frame`` with the top-k as score bars and a time stamp.

    Frames with a short side under 256 px are upscaled first; a text line is 1/16 of the
    frame height, so the labels read the same at 112 px and at 1080p.
    """
    import cv2

    img = np.array(frame[..., :3] if frame.shape[-1] >= 3 else np.repeat(frame[..., :1], 3, axis=-1), dtype=np.uint8)
    h, w = img.shape[:2]
    if min(h, w) < MIN_SHORT_SIDE:
        s = MIN_SHORT_SIDE / min(h, w)
        img = cv2.resize(img, (round(w * s / 2) * 2, round(h * s / 2) * 2), interpolation=cv2.INTER_LINEAR)
        h, w = img.shape[:2]
    line = max(12, round(h * LINE_FRACTION))
    pad = max(2, line // 6)
    rows = list(topk) or [("...", 0.0)]
    band_h = min(h, len(rows) * line + 2 * pad)
    img[:band_h] = (img[:band_h].astype(np.uint16) * 2 // 5).astype(np.uint8)  # darken behind the text
    text_h = round(line * 0.55)
    bar_w = w - 2 * pad
    for i, (label, score) in enumerate(rows):
        y0 = pad + i * line
        filled = round(bar_w * min(max(float(score), 0.0), 1.0))
        color = (40, 170, 80) if i == 0 else (60, 110, 190)
        cv2.rectangle(img, (pad, y0 + 2), (pad + filled, y0 + line - 3), color, -1)
        _put_text(img, f"{100 * float(score):5.1f}%  {label}", pad + pad, y0 + (line + text_h) // 2, text_h)
    if time_s is not None:
        stamp = f"{time_s:7.2f} s"
        th = round(line * 0.5)
        tw = round(len(stamp) * th * 0.55)
        y = h - pad
        img[y - th - pad : h, max(0, w - tw - 3 * pad) :] //= 3
        _put_text(img, stamp, max(0, w - tw - 2 * pad), y - pad // 2, th)
    return img


class VideoWriter:
    """Frames written as they come (memory independent of length), published atomically on :meth:`close`.

    ``.mp4``: H.264 (PyAV). ``.gif``: at most 480 px wide and 10 frames/s (frames in between are
    dropped), looping, at most 600 frames (later ones are dropped with a warning).
    """

    def __init__(self, path: str | Path, *, fps: float) -> None:
        self.path = check_video_output(path)
        self.fps = float(fps) if fps and fps > 0 else 12.0
        self.gif = self.path.suffix.lower() == ".gif"
        self.out_fps = min(self.fps, GIF_MAX_FPS) if self.gif else self.fps
        self._ctx = atomic_path(self.path, suffix=self.path.suffix.lower())
        self._tmp = self._ctx.__enter__()
        self._n_in = self._n_out = 0
        self._images: list = []
        self._container = self._stream = None

    def write(self, frame: np.ndarray) -> None:
        i, self._n_in = self._n_in, self._n_in + 1
        if self.gif:
            r = self.out_fps / self.fps  # keep the first frame of every output frame slot
            if i == 0 or int(i * r) != int((i - 1) * r):
                self._write_gif(frame)
            return
        self._write_mp4(frame)

    def _write_gif(self, frame: np.ndarray) -> None:
        from PIL import Image

        if self._n_out >= GIF_MAX_FRAMES:
            if self._n_out == GIF_MAX_FRAMES:
                log.warning("%s: GIF stops after %d frames (%.0f s); write .mp4 for the whole video",
                            self.path, GIF_MAX_FRAMES, GIF_MAX_FRAMES / self.out_fps)
                self._n_out += 1
            return
        im = Image.fromarray(np.ascontiguousarray(frame))
        if im.width > GIF_MAX_WIDTH:
            im = im.resize((GIF_MAX_WIDTH, max(1, round(im.height * GIF_MAX_WIDTH / im.width))), Image.BILINEAR)
        self._images.append(im.quantize(colors=256, method=Image.Quantize.MEDIANCUT))
        self._n_out += 1

    def _write_mp4(self, frame: np.ndarray) -> None:
        import av

        if self._container is None:
            h, w = frame.shape[:2]
            self._container = av.open(str(self._tmp), "w", format="mp4")
            self._stream = self._container.add_stream("libx264", rate=max(1, round(self.fps)),
                                                      options={"preset": "veryfast", "crf": "23"})
            self._stream.width, self._stream.height, self._stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        s = self._stream
        f = np.ascontiguousarray(frame[: s.height, : s.width])
        for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
            self._container.mux(p)
        self._n_out += 1

    def close(self, error: BaseException | None = None) -> Path:
        """Finish the file and publish it (or discard it when ``error`` is given)."""
        try:
            if error is None:
                if not self._n_out:
                    raise UsageError(f"{self.path}: no frames to write")
                if self._container is not None:
                    for p in self._stream.encode():
                        self._container.mux(p)
                else:
                    self._images[0].save(self._tmp, format="GIF", save_all=True, append_images=self._images[1:],
                                         duration=max(20, round(1000 / self.out_fps)), loop=0)
        except BaseException as e:
            error = e
            raise
        finally:
            if self._container is not None:
                self._container.close()
                self._container = None
            self._images = []
            if error is None:
                self._ctx.__exit__(None, None, None)
            else:
                self._ctx.__exit__(type(error), error, error.__traceback__)
        return self.path

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:  # noqa: ANN001
        self.close(exc)


def write_video(frames: Iterable[np.ndarray], path: str | Path, *, fps: float = 12.0) -> Path:
    """Write uint8 RGB frames as ``.gif`` or ``.mp4`` (see :class:`VideoWriter`), atomically."""
    with VideoWriter(path, fps=fps) as w:
        for f in frames:
            w.write(f)
    return Path(path)


def annotate_video(src: str | Path, dst: str | Path, topk: TopK | Callable[[int, float], TopK], *,
                   fps: float | None = None) -> Path:
    """Stream ``src`` to ``dst`` (.gif/.mp4) with the predictions drawn on every frame.

    ``topk``: one list of ``(label, score)`` for the whole video, or ``topk(frame_index, time_s)``
    for predictions that change over time. Frames are decoded, drawn and encoded one at a time.
    """
    from actionrec.data.video import VideoReader

    dst = check_video_output(dst)
    reader = VideoReader(src)
    rate = fps or reader.fps or 12.0
    get = topk if callable(topk) else (lambda i, t: topk)
    with reader, VideoWriter(dst, fps=rate) as w:
        for i, frame in enumerate(reader.iter_frames()):
            t = i / rate
            w.write(draw_predictions(frame, get(i, t), time_s=t))
    return dst


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
