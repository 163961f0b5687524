"""Video and frame-folder readers against full sequential decodes of real clips."""

from __future__ import annotations

import shutil

import av
import numpy as np
import pytest

from actionrec.data.frames import FrameFolderError, FrameFolderReader
from actionrec.data.video import VideoDecodeError, VideoReader, open_video


def _sequential(path) -> np.ndarray:
    """Reference: every frame PyAV's plain decode loop yields, in order."""
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(c.streams.video[0])])


@pytest.mark.parametrize("name,frames,fps,size", [("xvid.avi", 164, 25.0, (240, 320)), ("h264.mp4", 300, 30.0, (256, 340)),
                                                   ("short.mp4", 32, 30.0, (256, 340))])
def test_counts_fps_and_sizes_of_real_clips(data_dir, name, frames, fps, size):
    with VideoReader(data_dir / name) as r:
        assert len(r) == frames
        assert r.fps == pytest.approx(fps)
        assert r.duration == pytest.approx(frames / fps)
        assert r.get_frames([0]).shape == (1, *size, 3)


@pytest.mark.parametrize("name", ["xvid.avi", "h264.mp4"])
def test_sampled_frames_equal_full_decode_real(data_dir, name):
    path = data_dir / name
    full = _sequential(path)
    rng = np.random.default_rng(0)
    for _ in range(4):
        start = int(rng.integers(0, len(full) - 32))
        idx = np.arange(start, start + 32, 2)
        np.testing.assert_array_equal(VideoReader(path).get_frames(idx), full[idx])
    idx = rng.integers(0, len(full), size=12)  # unsorted, with possible repeats
    np.testing.assert_array_equal(VideoReader(path).get_frames(idx), full[idx])


@pytest.mark.parametrize("kind", ["mp4", "mkv", "avi", "trim"])
def test_seeking_is_frame_accurate_with_many_key_frames(gop_videos, kind):
    path = gop_videos[kind]
    full = _sequential(path)
    r = VideoReader(path)
    assert len(r) == len(full)  # the trimmed file's header over-counts; the index must not
    assert len(r._kf_index) > 2  # several key frames, so seeking is exercised
    rng = np.random.default_rng(1)
    for _ in range(8):
        idx = np.sort(rng.choice(len(full), size=min(8, len(full)), replace=False))
        np.testing.assert_array_equal(r.get_frames(idx), full[idx])
    np.testing.assert_array_equal(r.get_frames(idx[::-1]), full[idx[::-1]])  # backwards on one reader


def test_edit_list_header_lies_but_count_is_what_decodes(gop_videos):
    with av.open(str(gop_videos["trim"])) as c:
        header = c.streams.video[0].frames
    n = len(_sequential(gop_videos["trim"]))
    assert header > n  # the situation the reader must handle
    assert len(VideoReader(gop_videos["trim"])) == n


def test_rotation_metadata_is_applied(data_dir):
    base = VideoReader(data_dir / "rot0.mov").get_frames([0, 2]).astype(np.int16)
    assert base.shape == (2, 320, 568, 3)
    # each file holds the same picture, stored rotated; displayed upright after applying the metadata
    for deg in (90, 180, 270):
        r = VideoReader(data_dir / f"rot{deg}.mov")
        out = r.get_frames([0, 2]).astype(np.int16)
        assert out.shape == ((2, 568, 320, 3) if deg in (90, 270) else (2, 320, 568, 3))
        assert r.rotation % 360 == (-deg) % 360
        assert len(r) == 3


def test_rotation_turns_the_stored_picture(data_dir):
    with av.open(str(data_dir / "rot90.mov")) as c:
        stored = next(c.decode(video=0)).to_ndarray(format="rgb24")
    shown = VideoReader(data_dir / "rot90.mov").get_frames([0])[0]
    np.testing.assert_array_equal(shown, np.rot90(stored, -1))  # rotate 90° clockwise for display


def test_corrupt_file_raises_one_clear_error(data_dir):
    with pytest.raises(VideoDecodeError, match="corrupt.mp4"):
        r = VideoReader(data_dir / "corrupt.mp4")
        r.get_frames(range(len(r)))


def test_truncated_and_empty_files(data_dir, tmp_path):
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((data_dir / "short.mp4").read_bytes()[: 40_000])  # moov atom at the end is lost
    with pytest.raises(VideoDecodeError, match="cut.mp4"):
        VideoReader(cut).get_frames([0])
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(VideoDecodeError, match="empty.avi.*empty"):
        VideoReader(empty)
    with pytest.raises(FileNotFoundError, match="nope.mp4"):
        open_video(tmp_path / "nope.mp4")


def test_truncated_avi_reads_what_decodes(data_dir, tmp_path):
    cut = tmp_path / "cut.avi"
    cut.write_bytes((data_dir / "xvid.avi").read_bytes()[:150_000])
    r = VideoReader(cut)
    full = _sequential(cut)
    assert 0 < len(r) <= 164
    np.testing.assert_array_equal(r.get_frames([0, len(full) - 1]), full[[0, len(full) - 1]])


def test_out_of_range_index(data_dir):
    with pytest.raises(IndexError, match="164"):
        VideoReader(data_dir / "xvid.avi").get_frames([164])


def _write_jpegs(folder, frames, pattern):
    import cv2

    folder.mkdir(parents=True)
    for i, f in enumerate(frames, 1):
        cv2.imwrite(str(folder / pattern.format(i)), f[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 100])


@pytest.mark.parametrize("pattern", ["img_{:05d}.jpg", "image_{:05d}.jpg", "{:06d}.jpg"])
def test_frame_folder_reader_matches_video(data_dir, tmp_path, pattern):
    frames = VideoReader(data_dir / "short.mp4").get_frames(range(12))
    _write_jpegs(tmp_path / "v", frames, pattern)
    (tmp_path / "v" / "fps").write_text("30\n")
    r = open_video(tmp_path / "v")
    assert isinstance(r, FrameFolderReader) and len(r) == 12 and r.fps == 30.0
    out = r.get_frames([11, 0, 5])
    assert out.shape == (3, 256, 340, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - frames[[11, 0, 5]].astype(int)).mean() < 3  # JPEG at quality 100


@pytest.mark.parametrize("names", [("flow_x_{:05d}.jpg", "flow_y_{:05d}.jpg"), ("x_{:05d}.jpg", "y_{:05d}.jpg")])
def test_flow_folder_reader(tmp_path, names):
    import cv2

    d = tmp_path / "f"
    d.mkdir()
    for i in range(1, 5):
        cv2.imwrite(str(d / names[0].format(i)), np.full((8, 10), 10 * i, np.uint8))
        cv2.imwrite(str(d / names[1].format(i)), np.full((8, 10), 200, np.uint8))
    r = open_video(d, modality="flow")
    assert len(r) == 4
    out = r.get_frames([3, 0])
    assert out.shape == (2, 8, 10, 2)
    assert out[0, 0, 0, 0] == 40 and out[1, 0, 0, 0] == 10 and out[0, 0, 0, 1] == 200
    (d / names[1].format(4)).unlink()
    with pytest.raises(FrameFolderError, match="do not pair"):
        open_video(d, modality="flow")


def test_list_names_video_but_frames_were_extracted(data_dir, tmp_path):
    frames = VideoReader(data_dir / "short.mp4").get_frames(range(3))
    _write_jpegs(tmp_path / "clip", frames, "img_{:05d}.jpg")
    assert len(open_video(tmp_path / "clip.avi")) == 3
    empty = tmp_path / "none"
    empty.mkdir()
    with pytest.raises(FrameFolderError, match="no rgb frames"):
        open_video(empty)
    shutil.rmtree(empty)
