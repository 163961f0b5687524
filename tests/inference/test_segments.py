"""Long videos: windows, segments, resuming, variable frame rates, subtitles, bounded memory.

The long video is real footage: XviD "apply eye makeup" (A), H.264 "cleaning pool" (B), then A again,
re-encoded to one size and frame rate with known boundaries at 6.5 s and 16.5 s. The model is a real small
R(2+1)D-18 whose linear head is fitted (inside the test) on the pooled features of windows of the two
source clips, so its labels are knowable; the fit is checked before anything is asserted with it.
"""

from __future__ import annotations

import copy
import csv
import json
import re
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

import actionrec
from actionrec.checkpoint import save_model
from actionrec.cli import main
from actionrec.data.pipeline import ClipPipeline
from actionrec.data.video import VideoReader
from actionrec.engine.segments import subtitles, write_subtitles
from actionrec.errors import UsageError
from actionrec.inference.segments import SegmentParams, Window, iter_windows, segments_from_windows
from tests.deploy.conftest import tiny_model

DATA = Path(__file__).resolve().parents[1] / "data"
FPS, SIZE = 10, (64, 48)  # the long video: 10 frames/s, 64x48
A_S, B_S = 6.5, 10.0  # seconds of each source clip used
TRUTH = [("eye makeup", 0.0, A_S), ("cleaning pool", A_S, A_S + B_S), ("eye makeup", A_S + B_S, 2 * A_S + B_S)]
STRIDE_S = 0.3  # the default stride: half the clip span (4 frames, 2 apart: 7 frames) = 3 frames


def encode(path: Path, frames, *, fps: int = FPS, gop: int = 10, pts_ms=None) -> Path:  # noqa: ANN001
    """H.264 MP4 of uint8 (H, W, 3) frames; ``pts_ms``: explicit timestamps (variable frame rate)."""
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264", rate=fps)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        s.options = {"g": str(gop), "preset": "ultrafast"}
        if pts_ms is not None:
            s.time_base = s.codec_context.time_base = Fraction(1, 1000)
        for i, img in enumerate(frames):
            f = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            if pts_ms is not None:
                f.pts, f.time_base = int(pts_ms[i]), Fraction(1, 1000)
            for pkt in s.encode(f):
                c.mux(pkt)
        for pkt in s.encode():
            c.mux(pkt)
    return path


def resample(src: Path, seconds: float) -> list[np.ndarray]:
    """``seconds`` of ``src`` at FPS frames/s and SIZE: the frame shown at each time."""
    import cv2

    with VideoReader(src) as r:
        times = r.frame_times()
        want = [int(np.searchsorted(times, i / FPS + 1e-6, side="right")) - 1 for i in range(round(seconds * FPS))]
        frames = {i: f for i, f in r.iter_selected(sorted(set(want)))}
    return [cv2.resize(frames[i], SIZE, interpolation=cv2.INTER_AREA) for i in want]


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("segments")
    a, b = resample(DATA / "xvid.avi", A_S), resample(DATA / "h264.mp4", B_S)
    return {"a": encode(d / "a.mp4", a), "b": encode(d / "b.mp4", b), "long": encode(d / "long.mp4", a + b + a), "dir": d}


def _features(model: torch.nn.Module, videos: list[Path]) -> list[torch.Tensor]:
    """Pooled features (the classifier's input) of every window of each video: (N, D) each."""
    body = copy.deepcopy(model)
    body.fc = torch.nn.Identity()
    p = actionrec.Predictor(body, threads=2)
    return [p.forward(ClipPipeline.from_meta(model.meta).load_windows(v, step=1).tensor) for v in videos]


@pytest.fixture(scope="module")
def model(media) -> torch.nn.Module:
    """R(2+1)D-18 (narrow), clips of 4 frames 2 apart at 32 px, head fitted to tell A from B."""
    torch.manual_seed(0)
    m = tiny_model("r2plus1d_18", num_classes=2, clip_len=4, size=32)
    m.meta.preprocess.frame_stride = 2
    m.meta.class_names = ["eye makeup", "cleaning pool"]
    xa, xb = _features(m, [media["a"], media["b"]])
    x, y = torch.cat([xa, xb]), torch.tensor([0] * len(xa) + [1] * len(xb))
    # ridge regression of ±1 on the standardised features, folded into the model's own head (logits ±3·f)
    mu, sd = x.mean(0), x.std(0) + 1e-6
    z = torch.cat([(x - mu) / sd, torch.ones(len(x), 1)], dim=1).double()
    w = torch.linalg.solve(z.T @ z + 1.0 * torch.eye(z.shape[1], dtype=torch.double), z.T @ (2.0 * y - 1).double()).float()
    with torch.no_grad():
        m.fc.weight.copy_(torch.stack([-3 * w[:-1] / sd, 3 * w[:-1] / sd]))
        m.fc.bias.copy_(torch.stack([-3 * (w[-1] - (w[:-1] * mu / sd).sum()), 3 * (w[-1] - (w[:-1] * mu / sd).sum())]))
        acc = (m.fc(x).argmax(1) == y).float().mean().item()
    assert acc == 1.0, f"the fitted head does not separate the two clips (train accuracy {acc})"
    return m.eval()


@pytest.fixture(scope="module")
def ckpt(model, media) -> Path:
    return save_model(model, media["dir"] / "ab.safetensors")


def check_segments(segs: list[dict] | list, *, tol: float = STRIDE_S) -> None:
    """Labels in the true order, boundaries within one stride of the truth."""
    rows = [(s["label"], s["start"], s["end"]) if isinstance(s, dict) else (s.label, s.start_s, s.end_s) for s in segs]
    assert [r[0] for r in rows] == [t[0] for t in TRUTH], rows
    for (_, start, end), (_, t0, t1) in zip(rows, TRUTH):
        assert abs(start - t0) <= tol + 1e-3 and abs(end - t1) <= tol + 1e-3, (rows, TRUTH)


def test_python_api_finds_the_segments_in_order(model, media):
    p = actionrec.Predictor(model, threads=1)
    r = p.segments(media["long"])
    check_segments(r.segments)
    assert r.duration_s == pytest.approx(2 * A_S + B_S) and r.fps == pytest.approx(FPS)
    assert r.params.window_frames == 7 and r.params.stride_frames == 3  # defaults: the clip's span, half of it
    assert [w.index for w in r.windows] == list(range(len(r.windows))) and len(r.windows[0].scores) == 2
    assert all(abs(sum(w.scores) - 1) < 1e-6 for w in r.windows)
    assert r.windows[-1].end_s == pytest.approx(r.duration_s)  # the last window ends at the last frame
    d = r.to_dict(topk=1)
    assert json.loads(json.dumps(d)) == d and len(d["windows"][0]["top"]) == 1 and d["segments"][0]["label"] == "eye makeup"
    # seconds instead of frames, no smoothing: the same segments (a window mixing both clips may go either way)
    check_segments(p.segments(media["long"], window_s=0.8, stride_s=0.4, smooth=1).segments, tol=0.8)


def test_cli_json_subtitles_and_resumable_sharded_outputs(ckpt, media, tmp_path, capsys):
    vtt = tmp_path / "long.vtt"
    assert main(["predict", str(ckpt), str(media["long"]), "--segments", "--subtitles", str(vtt), "--topk", "2",
                 "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    check_segments(out["segments"])
    assert len(out["windows"][5]["top"]) == 2 and out["video"] == str(media["long"])
    text = vtt.read_text()
    cues = re.findall(r"^(\d+)\n(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})\n(.+) \((0\.\d\d|1\.00)\)\n", text, re.M)
    assert text.startswith("WEBVTT\n\n") and [c[3] for c in cues] == [t[0] for t in TRUTH] and cues[1][1].startswith("00:00:06")

    # a collection into CSV (one row per segment), sharded; a rerun skips what is done
    videos = [str(media["long"]), str(media["b"])]
    for i in range(2):
        assert main(["predict", str(ckpt), *videos, "--segments", "--output", str(tmp_path / "s.csv"), "--shard",
                     f"{i}/2", "--threads", "1"]) == 0
    parts = [list(csv.DictReader((tmp_path / f"s.part-{i}-of-2.csv").open())) for i in range(2)]
    assert list(parts[0][0]) == ["video", "label", "start", "end", "score", "error"]
    assert [r["label"] for r in parts[0]] == [t[0] for t in TRUTH] and [r["label"] for r in parts[1]] == ["cleaning pool"]
    capsys.readouterr()
    assert main(["predict", str(ckpt), *videos, "--segments", "--output", str(tmp_path / "s.csv"), "--shard", "0/2"]) == 0
    assert "1 videos already done" in capsys.readouterr().err
    # a run killed while writing a video's rows: that video is redone whole
    part0 = tmp_path / "s.part-0-of-2.csv"
    part0.write_text(part0.read_text()[:-9])
    assert main(["predict", str(ckpt), *videos, "--segments", "--output", str(tmp_path / "s.csv"), "--shard", "0/2",
                 "--threads", "1"]) == 0
    assert [r["label"] for r in csv.DictReader(part0.open())] == [t[0] for t in TRUTH]
    # JSONL: the to_dict per video
    jl = tmp_path / "s.jsonl"
    assert main(["predict", str(ckpt), str(media["b"]), "--segments", "--output", str(jl), "--threads", "1"]) == 0
    row = json.loads(jl.read_text())
    assert row["segments"][0]["label"] == "cleaning pool" and "windows" in row


def test_resuming_at_any_window_yields_the_tail_of_a_full_run(model, media, monkeypatch):
    p = actionrec.Predictor(model, threads=1, batch_size=3)
    params = SegmentParams(window_frames=8, stride_frames=4)
    seeks: list[int] = []
    real_seek = VideoReader._seek
    monkeypatch.setattr(VideoReader, "_seek", lambda self, k: seeks.append(self._kf_index[k]) or real_seek(self, k))
    for video in (media["long"], DATA / "xvid.avi"):  # MP4: seeks to a key frame; AVI: decodes and skips
        full = list(iter_windows(p, video, params))
        for k in (1, len(full) // 2 + 1, len(full) - 1):
            seeks.clear()
            tail = list(iter_windows(p, video, params, start_window=k))
            assert [(w.index, w.start_s, w.end_s) for w in tail] == [(w.index, w.start_s, w.end_s) for w in full[k:]]
            assert np.allclose([w.scores for w in tail], [w.scores for w in full[k:]], atol=1e-6)
            if video == media["long"] and k > 10:
                assert seeks and seeks[0] > 0  # it started at a key frame inside the video, not at frame 0
        # what a job does after a crash: the windows it had, the rest, then the segments
        k = len(full) // 2
        resumed = full[:k] + list(iter_windows(p, video, params, start_window=k))
        names = p.meta.class_names
        again, first = segments_from_windows(resumed, names, params), segments_from_windows(full, names, params)
        assert [(s.label, s.start_s, s.end_s) for s in again] == [(s.label, s.start_s, s.end_s) for s in first]
        assert [s.score for s in again] == pytest.approx([s.score for s in first], abs=1e-6)
    with pytest.raises(UsageError, match="start_window"):
        next(iter_windows(p, media["long"], params, start_window=10**6))


def test_variable_frame_rate_gets_times_from_the_timestamps(model, tmp_path):
    gaps = [100] * 20 + [33] * 30 + [250] * 10  # ms: 10 frames/s, then 30, then 4
    pts = np.concatenate([[0], np.cumsum(gaps)[:-1]])
    frames = [np.full((48, 64, 3), 4 * i, np.uint8) for i in range(len(pts))]
    video = encode(tmp_path / "vfr.mp4", frames, pts_ms=pts)
    with VideoReader(video) as r:
        assert np.allclose(r.frame_times(), pts / 1000, atol=1e-9)
        nominal = np.arange(len(r)) / r.fps
    assert np.abs(nominal - pts / 1000).max() > 0.5  # frame / fps would be wrong by over half a second
    p = actionrec.Predictor(model, threads=1)
    ws = list(iter_windows(p, video, SegmentParams(window_frames=4, stride_frames=4)))
    assert [w.start_s for w in ws] == pytest.approx(list(pts[::4] / 1000))
    assert ws[-1].end_s == pytest.approx(pts[-1] / 1000 + 0.25)
    ws = list(iter_windows(p, video, SegmentParams(window_s=1.0, stride_s=1.0)))
    first_after = [pts[pts >= 1000 * k][0] / 1000 for k in range(5)]  # a window each second: its first frame
    assert [w.start_s for w in ws[:5]] == pytest.approx(first_after) and first_after[3] == pytest.approx(3.24)
    assert ws[2].end_s == pytest.approx(3.24)  # frames before 3 s; the last (2.99 s) lasts until the next (3.24 s)


def _w(i: int, scores: list[float], step: float = 1.0) -> Window:
    return Window(i, i * step, i * step + 2 * step, scores)


def test_segments_from_windows_smooths_thresholds_and_merges():
    names = ["a", "b", "c"]
    a, b, low = [0.9, 0.05, 0.05], [0.05, 0.9, 0.05], [0.34, 0.33, 0.33]
    ws = [_w(i, a) for i in range(10)] + [_w(10, b)] + [_w(i, a) for i in range(11, 20)] + [_w(i, b) for i in range(20, 30)]
    p = SegmentParams(smooth=1, threshold=0.5, min_segment_s=2.5)
    segs = segments_from_windows(ws[::-1], names, p)  # any order
    assert [(s.label, s.start_s, s.end_s) for s in segs] == [("a", 0.0, 20.5), ("b", 20.5, 31.0)]  # the lone b joins a
    assert segs[0].score == pytest.approx((19 * 0.9 + 0.05) / 20)
    gap = [_w(i, a) for i in range(5)] + [_w(i, low) for i in range(5, 10)] + [_w(10, b)] + [_w(i, low) for i in range(11, 15)]
    segs = segments_from_windows(gap, names, p)
    assert [(s.label, s.start_s, s.end_s) for s in segs] == [("a", 0.0, 5.5)]  # gaps absent; a short run between gaps dropped
    assert segments_from_windows(gap, names, SegmentParams(threshold=0.5, min_segment_s=0, smooth=1))[1].label == "b"
    smooth = segments_from_windows([_w(i, a if i != 5 else b) for i in range(10)], names, SegmentParams(smooth=3, min_segment_s=0))
    assert [s.label for s in smooth] == ["a"]  # one odd window is smoothed away
    assert segments_from_windows([], names) == []
    w = Window.from_dict(json.loads(json.dumps(ws[3].to_dict())))
    assert w == ws[3]


def test_subtitles_formats(tmp_path):
    from actionrec.inference.segments import Segment

    segs = [Segment("a <b> & c", 0.0, 61.5, 0.871), Segment("run", 3661.25, 3662.0, 1.0)]
    vtt = subtitles(segs, "vtt")
    assert vtt == ("WEBVTT\n\n1\n00:00:00.000 --> 00:01:01.500\na &lt;b&gt; &amp; c (0.87)\n\n"
                   "2\n01:01:01.250 --> 01:01:02.000\nrun (1.00)\n")
    srt = subtitles(segs, "srt")
    assert srt.startswith("1\n00:00:00,000 --> 00:01:01,500\na <b> & c (0.87)\n\n2\n01:01:01,250 --> ")
    write_subtitles(tmp_path / "x.srt", segs)
    assert (tmp_path / "x.srt").read_text() == srt and [f.name for f in tmp_path.iterdir()] == ["x.srt"]  # no temporaries
    with pytest.raises(UsageError, match="must end in .vtt or .srt"):
        write_subtitles(tmp_path / "x.txt", segs)


@pytest.mark.parametrize("extra, message", [
    (["--window", "-1"], "--window: seconds must be > 0"),
    (["--window-stride", "0f"], "--window-stride: frames must be 1..10000000, got 0f"),
    (["--window", "2x"], "--window: expected seconds (e.g. 2.5) or frames (e.g. 32f)"),
    (["--threshold", "1.5"], "--threshold: must be a finite number >= 0 and <= 1"),
    (["--smooth", "0"], "--smooth: must be 1..1000"),
    (["--min-segment", "nan"], "--min-segment: must be a finite number"),
])
def test_bad_values_are_one_line_exit_2(ckpt, media, extra, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", str(ckpt), str(media["a"]), "--segments", *extra])
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err


def test_usage_errors_before_any_work(ckpt, media, tmp_path, capsys):
    for args, message in (
        (["--window", "2"], "--window needs --segments"),
        (["--segments", "--subtitles", str(tmp_path / "x.txt")], "--subtitles must end in .vtt or .srt"),
        ([str(media["b"]), "--segments", "--subtitles", str(tmp_path / "x.srt")], "exactly one video"),
        (["--segments", "--clips", "2"], "--clips has no effect with --segments"),
    ):
        assert main(["predict", str(ckpt), str(media["a"]), *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.srt").exists()
    for kwargs, field in ((dict(window_s=1, window_frames=3), "window_s or window_frames"), (dict(smooth=0), "smooth"),
                          (dict(threshold=float("nan")), "threshold"), (dict(stride_s=-1.0), "stride_s"),
                          (dict(min_segment_s="1"), "min_segment_s"), (dict(window_frames=2.5), "window_frames")):
        with pytest.raises(UsageError, match=field) as e:
            SegmentParams(**kwargs)
        assert "\n" not in str(e.value)


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def test_ten_minutes_of_video_in_bounded_memory(model, tmp_path):
    """10 min at 10 frames/s (6000 frames): RSS does not grow with the video (a leak of every frame would add ~70 MB)."""
    n = 6000
    base = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    video = encode(tmp_path / "ten_min.mp4", [np.roll(base, i, axis=1) for i in range(n)], gop=50)
    p = actionrec.Predictor(model, threads=1, batch_size=8)
    rss: list[float] = []
    count = 0
    for w in iter_windows(p, video, SegmentParams(window_frames=7, stride_frames=8)):
        count += 1
        if count % 150 == 0:
            rss.append(_rss_mb())
    assert count == 751 and w.end_s == pytest.approx(n / FPS)  # 750 windows 8 frames apart, and one at the end
    growth = max(rss) - rss[0]
    assert growth < 25, f"RSS grew by {growth:.1f} MB over the video: {[round(r) for r in rss]}"
