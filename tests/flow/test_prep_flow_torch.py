"""`actionrec prep flow --algo tvl1-torch` end to end on a real clip: from frames and straight from the video."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from actionrec.cli import main
from actionrec.data.flow import dequantize_flow, make_flow_fn, quantize_flow
from actionrec.data.frames import FrameFolderReader, list_frames

DATA = Path(__file__).resolve().parent.parent / "data"


def _jpeg(q: np.ndarray) -> np.ndarray:
    """What storing one 8-bit flow component as a quality-95 JPEG gives back."""
    ok, buf = cv2.imencode(".jpg", q, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def _check_against_opencv(stored: FrameFolderReader, gray: list[np.ndarray], pairs: list[int]) -> None:
    """Stored flow of ``pairs`` vs OpenCV's TV-L1 on the same frames, stored the same way."""
    opencv = make_flow_fn("tvl1")
    for k in pairs:
        ours = stored.get_frames([k])[0].astype(int)  # (H, W, 2) uint8 from the JPEGs
        q = quantize_flow(opencv(gray[k][None], gray[k + 1][None])[0])
        theirs = np.stack([_jpeg(q[..., 0]), _jpeg(q[..., 1])], -1).astype(int)
        within = (np.abs(ours - theirs) <= 2).all(-1).mean()
        epd = np.linalg.norm(dequantize_flow(ours.astype(np.uint8)) - dequantize_flow(theirs.astype(np.uint8)), axis=-1)
        assert within >= 0.95, f"pair {k + 1}: {within:.2%} of pixels within ±2 levels of OpenCV's"
        assert epd.mean() <= 0.1, f"pair {k + 1}: mean end-point difference {epd.mean():.3f} px"


def test_prep_flow_tvl1_torch_from_frames_and_videos(tmp_path, capsys):
    vids = tmp_path / "vids" / "cls"
    vids.mkdir(parents=True)
    shutil.copy(DATA / "short.mp4", vids / "short.mp4")
    fr, fl = tmp_path / "frames", tmp_path / "flow"
    assert main(["prep", "frames", str(tmp_path / "vids"), str(fr), "--short-side", "64", "--no-progress"]) == 0
    clip = fr / "cls" / "short"
    for p in list_frames(clip)[9:]:  # keep 9 frames (8 pairs): bounded time
        p.unlink()
    (clip / "n_frames").write_text("9\n")
    args = ["--algo", "tvl1-torch", "--device", "cpu", "--batch-size", "5", "--workers", "2", "--no-progress"]
    assert main(["prep", "flow", str(fr), str(fl), *args]) == 0
    assert "1 done" in capsys.readouterr().out
    out = fl / "cls" / "short"
    assert (out / "n_flow").read_text().strip() == "8"
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted([f"flow_{c}_{k:05d}.jpg" for c in "xy" for k in range(1, 9)] + ["n_flow"])
    stored = FrameFolderReader(out, modality="flow")
    assert len(stored) == 8 and stored.get_frames([0]).shape == (1, 64, 85, 2)
    gray = [cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in list_frames(clip)]
    _check_against_opencv(stored, gray, [0, 4, 7])  # in the first and in the second (partial) batch

    before = {p: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["prep", "flow", str(fr), str(fl), *args]) == 0
    assert "0 done, 1 already done" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in out.iterdir()} == before

    # straight from videos, decoded once, no frame folder: a rotated phone clip (3 frames)
    shutil.copy(DATA / "rot90.mov", vids / "rot90.mov")
    (vids / "short.mp4").unlink()
    fl2 = tmp_path / "flow2"
    assert main(["prep", "flow", str(tmp_path / "vids"), str(fl2), *args, "--short-side", "64"]) == 0
    assert "1 done" in capsys.readouterr().out
    assert (fl2 / "cls" / "rot90" / "n_flow").read_text().strip() == "2"
    from actionrec.data.flow import to_gray
    from actionrec.data.video import VideoReader
    from actionrec.prep.flow import _resize_short

    gray = [_resize_short(to_gray(f), 64) for f in VideoReader(vids / "rot90.mov").get_frames([0, 1, 2])]
    stored = FrameFolderReader(fl2 / "cls" / "rot90", modality="flow")
    assert stored.get_frames([0]).shape == (1, 114, 64, 2)  # portrait, as displayed
    _check_against_opencv(stored, gray, [0, 1])


def test_prep_flow_device_errors(tmp_path, capsys):
    (tmp_path / "v").mkdir()
    shutil.copy(DATA / "short.mp4", tmp_path / "v" / "short.mp4")
    assert main(["prep", "flow", str(tmp_path / "v"), str(tmp_path / "f"), "--algo", "tvl1", "--device", "cuda"]) == 2
    assert "runs on the CPU only" in capsys.readouterr().err
    assert main(["prep", "flow", str(tmp_path / "v"), str(tmp_path / "f"), "--algo", "tvl1-torch", "--device", "npu:0"]) == 2
    assert "--device" in capsys.readouterr().err
    if not torch.cuda.is_available():
        assert main(["prep", "flow", str(tmp_path / "v"), str(tmp_path / "f"), "--algo", "tvl1-torch", "--device", "cuda"]) == 2
        err = capsys.readouterr().err
        assert "--device" in err and "no CUDA device" in err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_prep_flow_on_cuda_from_video(tmp_path, capsys):
    (tmp_path / "v").mkdir()
    shutil.copy(DATA / "short.mp4", tmp_path / "v" / "short.mp4")
    assert main(["prep", "flow", str(tmp_path / "v"), str(tmp_path / "f"), "--algo", "tvl1-torch", "--device", "cuda",
                 "--batch-size", "32", "--no-progress"]) == 0
    assert (tmp_path / "f" / "short" / "n_flow").read_text().strip() == "31"
    from actionrec.data.flow import to_gray
    from actionrec.data.video import VideoReader

    gray = [to_gray(f) for f in VideoReader(tmp_path / "v" / "short.mp4").get_frames([0, 1])]
    _check_against_opencv(FrameFolderReader(tmp_path / "f" / "short", modality="flow"), gray, [0])
