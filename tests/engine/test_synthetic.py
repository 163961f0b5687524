"""The synthetic dataset: real H.264 files, lists, determinism, and classes that only motion separates."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from actionrec.data.synthetic import CLASS_NAMES, generate, render_video


def test_files_and_lists(synth_root: Path) -> None:
    assert (synth_root / "classes.txt").read_text().split() == list(CLASS_NAMES[:4])
    train = (synth_root / "train.txt").read_text().splitlines()
    val = (synth_root / "val.txt").read_text().splitlines()
    assert len(train) == 16 and len(val) == 4
    assert val[0] == "move_left/move_left_004.mp4 0" and not set(train) & set(val)
    from actionrec.data.video import open_video

    with open_video(synth_root / "move_down" / "move_down_002.mp4") as r:
        frames = r.get_frames(range(len(r)))
    assert frames.shape == (8, 32, 32, 3) and r.fps == pytest.approx(8)
    import av

    with av.open(str(synth_root / "move_up" / "move_up_000.mp4")) as c:
        assert c.streams.video[0].codec_context.name == "h264"


def _dirty_heap(seed: int) -> None:
    """Leave garbage in freed heap memory (as earlier tests do): output must not depend on it."""
    import ctypes

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    rng = np.random.default_rng(seed)
    blocks = []
    for size in rng.integers(1_000, 400_000, 60):
        p = libc.malloc(int(size))
        ctypes.memset(p, int(rng.integers(1, 255)), int(size))
        blocks.append(p)
    for p in blocks:
        libc.free(ctypes.c_void_p(p))


def test_deterministic(tmp_path: Path, synth_root: Path) -> None:
    _dirty_heap(0)
    again = generate(tmp_path / "again", classes=4, per_class=5, seed=0, size=32, frames=8, fps=8, workers=2)
    from actionrec.data.video import open_video

    for rel in ("move_left/move_left_000.mp4", "move_down/move_down_004.mp4"):  # same decoded frames
        np.testing.assert_array_equal(open_video(again / rel).read_all(), open_video(synth_root / rel).read_all())
    _dirty_heap(1)
    again1 = generate(tmp_path / "again1", classes=4, per_class=5, seed=0, size=32, frames=8, fps=8)
    for p in sorted(again1.rglob("*.mp4")):  # byte for byte, in this process too
        assert p.read_bytes() == (synth_root / p.relative_to(again1)).read_bytes(), p
    other = generate(tmp_path / "other", classes=2, per_class=2, seed=1, size=32, frames=8, val_per_class=1)
    assert (other / "move_left/move_left_000.mp4").read_bytes() != (synth_root / "move_left/move_left_000.mp4").read_bytes()


@pytest.mark.parametrize(("a", "b"), [("move_left", "move_right"), ("grow", "shrink"), ("rotate_cw", "rotate_ccw")])
def test_pair_is_time_reversed(a: str, b: str) -> None:
    """Same random draws: class b is class a played backwards (up to per-frame noise)."""
    def pooled(v: np.ndarray) -> np.ndarray:  # 4x4 block means: averages the noise away
        return v.astype(float).reshape(v.shape[0], 12, 4, 12, 4, 3).mean(axis=(2, 4))

    va = pooled(render_video(a, np.random.default_rng(3), size=48, frames=12))
    vb = pooled(render_video(b, np.random.default_rng(3), size=48, frames=12))
    reversed_diff = np.abs(va - vb[::-1]).mean()
    forward_diff = np.abs(va - vb).mean()
    assert reversed_diff < 2.0 and forward_diff > 1.5 * reversed_diff


def test_single_frames_do_not_reveal_the_class() -> None:
    """The mean image over all frames is the same for both classes of a pair (same draws)."""
    va = render_video("move_up", np.random.default_rng(5), size=32, frames=10).astype(float)
    vb = render_video("move_down", np.random.default_rng(5), size=32, frames=10).astype(float)
    assert np.abs(va.mean(0) - vb.mean(0)).mean() < 2.5  # only noise differs


def test_the_moving_shape_stands_out_in_every_channel() -> None:
    """The signal the demo learns from (module docstring): where the shape passes, every colour channel changes a lot.

    Statistic: per video, the 95th percentile over pixels of each pixel's change over time (max - min), in the
    weakest channel. The earlier generator, on which the demo sat at chance for 9-16 epochs, gave 14 to 55
    (median) over 160 videos; this one gives 93 to 120.
    """
    for seed in range(10):
        for cls in ("move_left", "move_up", "grow", "rotate_cw"):
            v = render_video(cls, np.random.default_rng(seed), size=32, frames=24).astype(float)
            change = (v.max(axis=0) - v.min(axis=0)).reshape(-1, 3)
            assert np.percentile(change, 95, axis=0).min() > 80, (cls, seed)


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="classes must be in 2..8"):
        generate(tmp_path, classes=9)
    with pytest.raises(ValueError, match="size must be even"):
        generate(tmp_path, size=33)
    with pytest.raises(ValueError, match="unknown synthetic class"):
        render_video("jump", np.random.default_rng(0))
