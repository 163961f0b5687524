"""A synthetic action dataset whose class is in the motion, not in any one frame.

Each video shows one random polygon (random shape, colour, size, orientation) on a random
textured background with sensor noise, moving in one of these ways::

    move_left  move_right  move_up  move_down  grow  shrink  rotate_cw  rotate_ccw

The classes come in pairs (left/right, cw/ccw, grow/shrink, up/down) and the second of a pair
is made by drawing a video of the first and **playing it backwards**, with the motion
parameters drawn from the same distribution. So the set of frames of a video (ignoring their
order) has exactly the same distribution for both classes of a pair: a model that looks at
frames one at a time, or averages them, cannot tell the pair apart. Noise is drawn per frame
after the reversal, so it carries no time direction either.

The shape stands out from its background in every colour channel: the background (a gradient and
blobs, i.e. clutter) is drawn at half strength, and the shape's colour lies 90 to 150 levels above the
background's mean in each channel. The demo's learning speed hangs on this contrast. An earlier version
drew any colour at least 60 levels from the background's mean in *one* channel, over full-strength
clutter: in most videos some channel hardly changed where the shape passed, and the demo's model sat at
chance for 9 to 16 of its 30 epochs, for how long depending on the host's kernels (86.7% to 100% video
top-1 at the end). Measured with the demo's recipe (epochs 1-6, seed 0, AVX2): the old data stays at
chance throughout; the old colours on half-strength clutter leave chance in epoch 3 (83% at epoch 6);
strong contrast of either polarity leaves chance in epoch 2 (100% at epoch 6). Polarity does not matter;
the shapes are drawn brighter than their background only to keep one rule.

Files are real H.264 MP4s (PyAV/libx264), ``dst/<class>/<class>_<i>.mp4``, with
``dst/classes.txt`` and mmaction2-style lists ``dst/train.txt``/``dst/val.txt``
(``<relative path> <label>``). Output is deterministic for a seed.
"""

from __future__ import annotations

import logging
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from actionrec.errors import UsageError
from actionrec.io import atomic_path, write_text_atomic

log = logging.getLogger(__name__)

__all__ = ["CLASS_NAMES", "generate", "render_video", "write_mp4"]

# Ordered so that any even prefix is made of complete time-reversal pairs.
CLASS_NAMES: tuple[str, ...] = (
    "move_left",
    "move_right",
    "move_up",
    "move_down",
    "grow",
    "shrink",
    "rotate_cw",
    "rotate_ccw",
)

BACKGROUND_LEVEL = 0.5  # the background's brightness is scaled into [10, 118]
OBJECT_CONTRAST = (90.0, 150.0)  # per channel, added to the background's mean (the signal: module docstring)

# Unit polygons without rotational symmetry below 180°, so rotation is visible.
_SHAPES: tuple[np.ndarray, ...] = (
    np.array([[0.0, -1.0], [0.6, 0.8], [-0.6, 0.8]]),  # isosceles triangle
    np.array([[-1.0, -0.45], [1.0, -0.45], [1.0, 0.45], [-1.0, 0.45]]),  # bar
    np.array([[-0.8, -1.0], [-0.2, -1.0], [-0.2, 0.4], [0.8, 0.4], [0.8, 1.0], [-0.8, 1.0]]),  # L
    np.array([[-1.0, -0.9], [1.0, -0.9], [1.0, -0.3], [0.3, -0.3], [0.3, 1.0], [-0.3, 1.0], [-0.3, -0.3], [-1.0, -0.3]]),  # T
    np.array([[0.0, -1.0], [1.0, 0.0], [0.3, 0.0], [0.3, 1.0], [-0.3, 1.0], [-0.3, 0.0], [-1.0, 0.0]]),  # arrow
)


@dataclass
class _Job:
    path: Path
    label: int
    seed: tuple[int, int, int]
    size: int
    frames: int
    fps: int


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth random colour field with a few blobs: (H, W, 3) float in [0, 255]."""
    base = rng.uniform(20, 235, size=3)
    gy, gx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    grad = rng.uniform(-60, 60, size=(2, 3))
    img = base + gx[..., None] * grad[0] + gy[..., None] * grad[1]
    for _ in range(int(rng.integers(1, 4))):  # soft static blobs (distractors that never move)
        cy, cx = rng.uniform(0, 1, size=2)
        r = rng.uniform(0.08, 0.3)
        w = np.exp(-((gx - cx) ** 2 + (gy - cy) ** 2) / (2 * r * r))
        img = img + w[..., None] * rng.uniform(-70, 70, size=3)
    return np.clip(img, 0, 255).astype(np.float32)


def render_video(cls: str, rng: np.random.Generator, *, size: int = 64, frames: int = 24) -> np.ndarray:
    """Draw one video of class ``cls``: uint8 ``(frames, size, size, 3)`` RGB."""
    import cv2

    if cls not in CLASS_NAMES:
        raise UsageError(f"unknown synthetic class {cls!r}; known: {', '.join(CLASS_NAMES)}")
    index = CLASS_NAMES.index(cls)
    base_cls, reverse = CLASS_NAMES[index - index % 2], index % 2 == 1

    bg = _background(rng, size) * BACKGROUND_LEVEL
    shape = _SHAPES[int(rng.integers(len(_SHAPES)))]
    # 90-150 levels above the background's mean in every channel (see the module docstring: contrast)
    color = np.clip(bg.mean(axis=(0, 1)) + rng.uniform(*OBJECT_CONTRAST, size=3), 0, 255)
    t = np.linspace(0.0, 1.0, frames)
    scale = np.full(frames, rng.uniform(0.14, 0.22) * size)
    angle = np.full(frames, rng.uniform(0, 2 * math.pi))
    cx = np.full(frames, rng.uniform(0.3, 0.7) * size)
    cy = np.full(frames, rng.uniform(0.3, 0.7) * size)
    if base_cls in ("move_left", "move_up"):
        dist = rng.uniform(0.45, 0.65) * size
        start = rng.uniform(0.35, 0.65) * size + dist / 2
        path = start - dist * t
        if base_cls == "move_left":
            cx = path
        else:
            cy = path
    elif base_cls == "rotate_cw":
        # image y points down, so increasing angle turns clockwise on screen
        angle = angle[0] + rng.uniform(1.0, 1.6) * math.pi * t
    elif base_cls == "grow":
        ratio = rng.uniform(2.4, 3.2)
        s0 = rng.uniform(0.08, 0.11) * size
        scale = s0 * ratio**t
    jitter = rng.normal(0, 0.15, size=(frames, 2))  # small hand-held shake
    out = np.empty((frames, size, size, 3), dtype=np.float32)
    for f in range(frames):
        c, s = math.cos(angle[f]), math.sin(angle[f])
        rot = np.array([[c, -s], [s, c]])
        pts = shape @ rot.T * scale[f] + np.array([cx[f], cy[f]]) + jitter[f]
        img = bg.copy()
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], color.tolist(), lineType=cv2.LINE_AA, shift=4)
        out[f] = img
    if reverse:
        out = out[::-1]
    out += rng.normal(0, rng.uniform(2, 6), size=out.shape).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def write_mp4(frames: np.ndarray, path: str | Path, *, fps: int = 12, crf: int = 18) -> Path:
    """Write uint8 ``(T, H, W, 3)`` RGB frames as an H.264 MP4 (yuv420p), atomically."""
    import av

    path = Path(path)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise UsageError(f"{path}: expected uint8 frames (T, H, W, 3), got {frames.dtype} {frames.shape}")
    h, w = frames.shape[1:3]
    if h % 2 or w % 2:
        raise UsageError(f"{path}: H.264 yuv420p needs even sizes, got {w}x{h}")
    with atomic_path(path, suffix=".mp4") as tmp:
        with av.open(str(tmp), "w", format="mp4") as container:
            stream = container.add_stream("libx264", rate=fps)
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
            # mbtree off: on frames this small, x264's macroblock-tree pass reads memory it never wrote, so the
            # same frames gave different files depending on what the process had allocated before (test order)
            stream.options = {"crf": str(crf), "preset": "fast", "threads": "1", "x264-params": "mbtree=0"}
            for img in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path


def _make(job: _Job) -> Path:
    rng = np.random.default_rng(list(job.seed))
    cls = CLASS_NAMES[job.label]
    write_mp4(render_video(cls, rng, size=job.size, frames=job.frames), job.path, fps=job.fps)
    return job.path


def generate(
    dst: str | Path,
    *,
    classes: int = 6,
    per_class: int = 30,
    seed: int = 0,
    size: int = 64,
    frames: int = 24,
    fps: int = 12,
    workers: int = 1,
    val_per_class: int | None = None,
) -> Path:
    """Generate the synthetic dataset under ``dst`` and return ``dst``.

    Args:
        classes: number of classes, 2..8 (the first ``classes`` of :data:`CLASS_NAMES`).
        per_class: videos per class; the last ``val_per_class`` of each class go to ``val.txt``.
        seed: the same seed gives the same files.
        size: frame width and height (even, >= 16).
        frames: frames per video (>= 2); ``fps``: frame rate written in the file.
        workers: processes used to render and encode.
        val_per_class: validation videos per class (default: ``max(1, per_class // 5)``).

    Existing files with the expected name are kept (re-running resumes an interrupted run).
    """
    dst = Path(dst)
    if not 2 <= classes <= len(CLASS_NAMES):
        raise UsageError(f"classes must be in 2..{len(CLASS_NAMES)}, got {classes}")
    if size < 16 or size % 2:
        raise UsageError(f"size must be even and >= 16, got {size}")
    if frames < 2:
        raise UsageError(f"frames must be >= 2, got {frames}")
    n_val = max(1, per_class // 5) if val_per_class is None else val_per_class
    if per_class < 2 or not 1 <= n_val < per_class:
        raise UsageError(f"per_class ({per_class}) must leave at least one training and one validation video (val_per_class={n_val})")
    names = CLASS_NAMES[:classes]
    jobs: list[_Job] = []
    for label, name in enumerate(names):
        for i in range(per_class):
            jobs.append(_Job(dst / name / f"{name}_{i:03d}.mp4", label, (seed, label, i), size, frames, fps))
    todo = [j for j in jobs if not j.path.is_file()]
    log.info("synthetic dataset: %d classes x %d videos (%d to write) -> %s", classes, per_class, len(todo), dst)
    if workers > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            list(pool.map(_make, todo, chunksize=4))
    else:
        for job in todo:
            _make(job)
    train_lines, val_lines = [], []
    for job in jobs:
        line = f"{job.path.relative_to(dst).as_posix()} {job.label}"
        (val_lines if int(job.path.stem.rsplit('_', 1)[1]) >= per_class - n_val else train_lines).append(line)
    write_text_atomic(dst / "classes.txt", "\n".join(names) + "\n")
    write_text_atomic(dst / "train.txt", "\n".join(train_lines) + "\n")
    write_text_atomic(dst / "val.txt", "\n".join(val_lines) + "\n")
    return dst
