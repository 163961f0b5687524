"""Fixtures: paths of the real clips in tests/data, and small re-encodes of one of them with many key frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

DATA = Path(__file__).resolve().parent.parent / "data"


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return DATA


def _encode(path: Path, frames: np.ndarray, codec: str, *, rate: int = 25, tag: str | None = None, opts=None) -> None:
    import av

    c = av.open(str(path), "w")
    s = c.add_stream(codec, rate=rate)
    s.height, s.width = frames.shape[1:3]
    s.pix_fmt = "yuv420p"
    s.codec_context.gop_size = 10
    s.codec_context.max_b_frames = 2
    if tag:
        s.codec_context.codec_tag = tag
    s.options = opts or {}
    for img in frames:
        for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
            c.mux(p)
    for p in s.encode():
        c.mux(p)
    c.close()


def _trim_by_stream_copy(src: Path, dst: Path, *, start_s: float, end_s: float, drop_before_s: float) -> None:
    """Copy packets without re-encoding, shifted so that ``start_s`` becomes 0: an MP4 edit list."""
    import av

    i = av.open(str(src))
    s = i.streams.video[0]
    o = av.open(str(dst), "w")
    os_ = o.add_stream_from_template(s)
    tb = s.time_base
    start, end, drop = int(start_s / tb), int(end_s / tb), int(drop_before_s / tb)
    for p in i.demux(s):
        if p.dts is None or p.pts < drop:
            continue
        if p.pts > end and p.is_keyframe:
            break
        p.pts -= start
        p.dts -= start
        p.stream = os_
        o.mux(p)
    o.close()
    i.close()


@pytest.fixture(scope="session")
def gop_videos(tmp_path_factory) -> dict[str, Path]:
    """80 real frames re-encoded with a key frame every 10 and B-frames: H.264 MP4/MKV, MPEG-4 AVI, edit-list MP4."""
    from actionrec.data.video import VideoReader

    with VideoReader(DATA / "xvid.avi") as r:
        frames = r.get_frames(range(80))[:, ::2, ::2]  # 120x160
    d = tmp_path_factory.mktemp("gop")
    x264 = {"preset": "ultrafast", "bf": "2", "g": "10", "keyint_min": "10", "sc_threshold": "0"}
    out = {"mp4": d / "g10.mp4", "mkv": d / "g10.mkv", "avi": d / "g10.avi", "trim": d / "trim.mp4"}
    _encode(out["mp4"], frames, "libx264", opts=x264)
    _encode(out["mkv"], frames, "libx264", opts=x264)
    _encode(out["avi"], frames, "mpeg4", tag="XVID", opts={"qscale": "4"})
    _trim_by_stream_copy(out["mp4"], out["trim"], start_s=1.5, end_s=2.6, drop_before_s=0.8)
    return out
