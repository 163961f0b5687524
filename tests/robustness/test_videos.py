"""Corrupt and hostile videos: a clean error naming the file, or a correct result; never a traceback,
a hang or a crash. A bounded sample of the mutants of :mod:`tests.robustness.mutants` goes through
the reader, the dataset and ``actionrec predict`` (the full set: ``benchmarks/robustness_campaign.py``)."""

from __future__ import annotations

import collections
import os
from pathlib import Path

import numpy as np
import pytest

from actionrec.data.video import VideoDecodeError, VideoReader, open_video
from actionrec.errors import ActionrecError, FrameFolderError, FramesMissingError
from tests.robustness.checks import make_tiny_checkpoint, run_checks
from tests.robustness.mutants import CLASSES, DATA, build_mutants, sample_mutants


@pytest.fixture(scope="module")
def mutants(tmp_path_factory: pytest.TempPathFactory) -> list:
    return build_mutants(tmp_path_factory.mktemp("mutants"), seed=0)


def _assert_clean(outcomes: list) -> None:
    bad = [(o.mutant.path.name, o.mutant.detail, o.outcome, o.detail) for o in outcomes
           if o.outcome not in ("ok", "clean")]
    assert not bad, bad
    assert {o.mutant.cls for o in outcomes} == set(CLASSES)
    # every class that is not a video at all is refused
    assert all(o.outcome == "clean" for o in outcomes if o.mutant.must_fail)


def test_generators_cover_every_class(mutants) -> None:  # noqa: ANN001
    counts = collections.Counter(m.cls for m in mutants)
    assert set(counts) == set(CLASSES) and len(mutants) > 200
    assert counts["absurd_size"] >= 30  # header fields of MP4, MOV and AVI
    assert all(m.path.exists() or m.path.is_symlink() for m in mutants)
    again = build_mutants(mutants[0].path.parent.parent / "again", seed=0)
    assert [m.path.read_bytes() for m in again[:20]] == [m.path.read_bytes() for m in mutants[:20]]  # reproducible


def test_sample_through_reader_and_dataset(mutants) -> None:  # noqa: ANN001
    sample = sample_mutants(mutants, 60, seed=1)
    assert len(sample) == 60
    for mode in ("reader", "dataset"):
        outcomes = run_checks(sample, mode, timeout=30, worker_per_class=False)
        _assert_clean(outcomes)
        assert sum(o.outcome == "ok" for o in outcomes) >= 10  # damaged but decodable files still decode


def test_sample_through_predict_cli(mutants, tmp_path: Path) -> None:  # noqa: ANN001
    ckpt = make_tiny_checkpoint(tmp_path / "tiny.safetensors")
    outcomes = run_checks(sample_mutants(mutants, 20, seed=2), "predict", ckpt=ckpt, timeout=60,
                          worker_per_class=False)
    _assert_clean(outcomes)


def test_unknown_codec_is_a_decode_error_naming_file_and_codec(mutants) -> None:  # noqa: ANN001
    # was: AttributeError 'NoneType' object has no attribute 'thread_count', naming no file
    for m in [m for m in mutants if m.cls == "unknown_codec"]:
        with pytest.raises(VideoDecodeError, match=rf"{m.path.name}.*no decoder for the video codec"):
            VideoReader(m.path)


def test_not_videos_raise_one_error_type(tmp_path: Path) -> None:
    (tmp_path / "x.mp4").mkdir()
    os.symlink(tmp_path / "gone.mp4", tmp_path / "link.mp4")
    (tmp_path / "page.mp4").write_text("<html><body>404</body></html>")
    (tmp_path / "empty.avi").write_bytes(b"")
    for name, reason in [("x.mp4", "no rgb frames"), ("link.mp4", "dangling symbolic link"),
                         ("page.mp4", "InvalidDataError"), ("empty.avi", "empty")]:
        with pytest.raises(VideoDecodeError, match=reason) as e:
            open_video(tmp_path / name)
        assert e.value.path.endswith(name) and isinstance(e.value, ActionrecError)
    assert issubclass(FrameFolderError, VideoDecodeError)
    with pytest.raises(VideoDecodeError):
        VideoReader(tmp_path / "x.mp4")  # a directory, also when opened as a file


def _wide_video(path: Path, width: int, height: int) -> Path:
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=10)
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for _ in range(2):
            for p in s.encode(av.VideoFrame.from_ndarray(np.zeros((height, width, 3), np.uint8), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def test_absurd_frame_size_refused_before_allocation(mutants, tmp_path: Path) -> None:  # noqa: ANN001
    import resource

    from actionrec.data.video import check_frame_size

    check_frame_size("v.mp4", 7680, 4320, what="header")
    for w, h in [(65536, 16), (16, 8193), (8192, 8192), (-1, 10)]:
        with pytest.raises(VideoDecodeError, match="out of range"):
            check_frame_size("v.mp4", w, h, what="header")
    wide = _wide_video(tmp_path / "wide.mp4", 8208, 16)  # a 2 KB file whose pictures are 8208 wide
    assert wide.stat().st_size < 10_000
    with pytest.raises(VideoDecodeError, match=r"wide.mp4.*8208x16 is out of range"):
        VideoReader(wide)
    # header fields (container widths, counts, sizes) patched to absurd values: no large allocation,
    # and what decodes has the coded pictures' real size
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for m in [m for m in mutants if m.cls == "absurd_size"]:
        try:
            with open_video(m.path) as r:
                frames = r.get_frames([0, len(r) - 1])
            assert frames.shape[1:] == {"xvid.avi": (240, 320, 3), "short.mp4": (256, 340, 3),
                                        "rot0.mov": (320, 568, 3)}[m.source]
        except VideoDecodeError as e:
            assert m.path.name in str(e)
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # KiB: < 200 MB


def test_frames_missing_is_a_decode_error_and_an_index_error() -> None:
    with VideoReader(DATA / "short.mp4") as r:
        r._n = 40  # as if the container index promised 40 frames; 32 decode
        with pytest.raises(FramesMissingError, match=r"short.mp4.*frame 39 requested but it does not decode") as e:
            r.get_frames([3, 39])
        assert isinstance(e.value, IndexError) and isinstance(e.value, VideoDecodeError)
        assert len(r) == 32 and r.get_frames([31]).shape == (1, 256, 340, 3)  # sample again within the new length
