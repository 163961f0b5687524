"""`actionrec prep` end to end on real clips: frames → flow → lists, reruns, a killed run, shards."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from actionrec.cli import main
from actionrec.data.flow import dequantize_flow, quantize_flow, to_deepmind_range
from actionrec.data.frames import FrameFolderReader
from actionrec.data.video import VideoReader
from actionrec.io import LOCK_NAME

DATA = Path(__file__).resolve().parent.parent / "data"


def _videos(root: Path) -> Path:
    """root/vids/{a,b}/...: three real clips, small first."""
    v = root / "vids"
    (v / "a").mkdir(parents=True)
    (v / "b").mkdir()
    shutil.copy(DATA / "short.mp4", v / "a" / "short.mp4")
    shutil.copy(DATA / "xvid.avi", v / "b" / "xvid.avi")
    shutil.copy(DATA / "rot90.mov", v / "b" / "rot90.mov")
    return v


def _tree(root: Path) -> dict[str, str]:
    """Relative path → sha256 of every file under root (hidden temp folders included, the lock file not)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file() and p.name != LOCK_NAME}


def test_frames_flow_lists_end_to_end(tmp_path, capsys):
    vids = _videos(tmp_path)
    fr, fl, li = tmp_path / "frames", tmp_path / "flow", tmp_path / "lists"
    assert main(["prep", "frames", str(vids), str(fr), "--short-side", "48", "--workers", "2", "--no-progress"]) == 0
    assert "3 done" in capsys.readouterr().out
    assert (fr / "b" / "xvid" / "n_frames").read_text().strip() == "164"
    assert (fr / "a" / "short" / "fps").read_text().strip() == "30"
    r = FrameFolderReader(fr / "b" / "rot90")
    assert len(r) == 3 and r.get_frames([0]).shape == (1, 85, 48, 3)  # rotated to portrait, short side 48
    first = r.get_frames([0])[0].astype(int)
    ref = VideoReader(vids / "b" / "rot90.mov").get_frames([0])
    from actionrec.data.transforms import resize_short
    assert np.abs(first - resize_short(ref, 48)[0].astype(int)).mean() < 4

    assert main(["prep", "flow", str(fr), str(fl), "--tvl1-scales", "1", "--tvl1-warps", "1", "--short-side", "24",
                 "--workers", "2", "--no-progress"]) == 0
    assert "3 done" in capsys.readouterr().out
    assert (fl / "a" / "short" / "n_flow").read_text().strip() == "31"
    flow = FrameFolderReader(fl / "a" / "short", modality="flow")
    assert len(flow) == 31 and flow.get_frames([0, 30]).shape == (2, 24, 32, 2)

    assert main(["prep", "lists", "folder", str(vids), str(li), "--frames", str(fr), "--json", "--val-fraction", "0.5"]) == 0
    capsys.readouterr()
    train = (li / "folder_train_list_rawframes.txt").read_text().splitlines()
    val = (li / "folder_val_list_rawframes.txt").read_text().splitlines()
    assert sorted(train + val) == ["a/short 32 0", "b/rot90 3 1", "b/xvid 164 1"]
    assert (li / "classes.txt").read_text() == "a\nb\n"
    assert (li / "folder.json").exists()

    before = {d: _tree(d) for d in (fr, fl)}
    assert main(["prep", "frames", str(vids), str(fr), "--short-side", "48", "--no-progress"]) == 0
    assert main(["prep", "flow", str(fr), str(fl), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "0 done, 3 already done" in out and out.count("0 done") == 2
    assert {d: _tree(d) for d in (fr, fl)} == before


def test_killed_run_restarts_to_the_same_files(tmp_path):
    vids = _videos(tmp_path)
    (vids / "b" / "h264.mp4").write_bytes((DATA / "h264.mp4").read_bytes())  # a longer video to be killed in
    ref, dst = tmp_path / "ref", tmp_path / "dst"
    args = ["--short-side", "64", "--workers", "1", "--no-progress"]
    assert main(["prep", "frames", str(vids), str(ref), *args]) == 0
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    proc = subprocess.Popen([sys.executable, "-m", "actionrec.cli", "prep", "frames", str(vids), str(dst), *args],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while not (dst / "a" / "short" / "n_frames").exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _tree(dst) if dst.exists() else {}
    finished = {Path(k).parent for k in partial if k.endswith("n_frames")}
    # atomic: outside hidden temp folders, only complete videos are visible
    visible = {Path(k).parent for k in partial if not any(part.startswith(".") for part in Path(k).parts)}
    assert visible == finished
    assert len(finished) < 4
    assert main(["prep", "frames", str(vids), str(dst), *args]) == 0
    assert _tree(dst) == _tree(ref)


def test_shards_split_the_work(tmp_path, capsys):
    vids = _videos(tmp_path)
    out = tmp_path / "out"
    for i in range(2):
        assert main(["prep", "frames", str(vids), str(out), "--short-side", "32", "--shard", f"{i}/2", "--no-progress"]) == 0
    done = capsys.readouterr().out
    assert "2 done" in done and "1 done" in done
    assert sorted(str(p.parent.relative_to(out)) for p in out.rglob("n_frames")) == ["a/short", "b/rot90", "b/xvid"]
    assert main(["prep", "frames", str(vids), str(out), "--shard", "2/2"]) == 2


def test_bad_video_is_reported_not_fatal(tmp_path, capsys):
    vids = _videos(tmp_path)
    shutil.copy(DATA / "corrupt.mp4", vids / "a" / "corrupt.mp4")
    assert main(["prep", "frames", str(vids), str(tmp_path / "f"), "--short-side", "32", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "3 done" in out and "1 failed" in out and "corrupt.mp4" in out
    assert not (tmp_path / "f" / "a" / "corrupt").exists()
    assert not list((tmp_path / "f" / "a").glob(".*"))  # no temp folder left behind


def test_lists_for_real_ucf101_split(tmp_path, capsys):
    root = tmp_path / "ucf"
    (root / "ApplyEyeMakeup").mkdir(parents=True)
    shutil.copy(DATA / "xvid.avi", root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi")
    shutil.copy(DATA / "xvid.avi", root / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01.avi")
    assert main(["prep", "lists", "ucf101", str(root), str(tmp_path / "l"),
                 "--annotations", str(DATA / "splits" / "ucf101")]) == 1  # the other 13,318 videos are missing
    assert "left out 9536 (missing)" in capsys.readouterr().out
    assert (tmp_path / "l" / "ucf101_train_split_1_videos.txt").read_text() == "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 0\n"
    assert (tmp_path / "l" / "ucf101_val_split_1_videos.txt").read_text() == "ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi 0\n"
    assert len((tmp_path / "l" / "classes.txt").read_text().splitlines()) == 101


def test_flow_quantisation_conventions():
    f = np.array([[[-25.0, 20.0], [0.0, -20.0]]], np.float32)
    q = quantize_flow(f)
    assert q.tolist() == [[[0, 255], [128, 0]]]
    np.testing.assert_allclose(dequantize_flow(q), [[[-20, 20], [0.078, -20]]], atol=0.01)
    np.testing.assert_allclose(to_deepmind_range(q), np.clip(f, -20, 20) / 20, atol=0.01)


@pytest.mark.parametrize("algo", ["tvl1", "tvl1-torch", "dis", "farneback"])
def test_flow_algorithms_see_the_motion(algo):
    from actionrec.data.flow import make_flow_fn

    rng = np.random.default_rng(0)
    base = (rng.random((72, 72)) * 255).astype(np.uint8)
    import cv2

    base = cv2.GaussianBlur(base, (7, 7), 2)
    moved = np.roll(base, 3, axis=1)  # content moves 3 px right
    kw = {"tvl1_scales": 3, "tvl1_warps": 3} if algo.startswith("tvl1") else {}
    flow = make_flow_fn(algo, **kw)(base[None, :, :48], moved[None, :, :48])[0]
    assert flow.shape == (72, 48, 2)
    assert np.median(flow[10:-10, 10:-10, 0]) == pytest.approx(3, abs=0.6)
    assert abs(np.median(flow[10:-10, 10:-10, 1])) < 0.5


def _foreign_frames(root: Path, n: int = 6, start: int = 1, skip: int | None = None) -> Path:
    """A frame folder as ffmpeg or mmaction2's build_rawframes write it: img_00001.jpg ... and no n_frames."""
    import cv2

    frames = VideoReader(DATA / "short.mp4").get_frames(range(n))
    root.mkdir(parents=True)
    for i, f in enumerate(frames):
        if start + i != skip:
            cv2.imwrite(str(root / f"img_{start + i:05d}.jpg"), f[..., ::-1])
    return root


@pytest.mark.parametrize("algo", ["dis", "tvl1-torch"])
def test_flow_of_frame_folders_made_by_other_tools(tmp_path, capsys, algo):
    src = tmp_path / "rawframes"
    _foreign_frames(src / "walk" / "v1")
    _foreign_frames(src / "walk" / "v2", start=0)  # ffmpeg's -start_number 0
    _foreign_frames(src / "run" / "gap", skip=4)
    _foreign_frames(src / "run" / "bad")
    (src / "run" / "bad" / "img_00003.jpg").write_bytes(b"not a JPEG")
    out = tmp_path / "flow"
    fast = ["--tvl1-scales", "1", "--tvl1-warps", "1", "--device", "cpu"] if algo == "tvl1-torch" else []
    assert main(["prep", "flow", str(src), str(out), "--algo", algo, *fast, "--workers", "2", "--short-side", "32",
                 "--no-progress"]) == 1  # two failed
    text = capsys.readouterr().out
    assert "2 done" in text and "2 failed" in text
    gap = f"{src / 'run' / 'gap'}: frame 4 is missing (frames numbered 1..6, 5 files; after img_00003.jpg comes img_00005.jpg)"
    assert gap in text
    assert f"cannot read image {src / 'run' / 'bad' / 'img_00003.jpg'}" in text
    assert (out / "walk" / "v1" / "n_flow").read_text().strip() == "5"
    assert (out / "walk" / "v2" / "n_flow").read_text().strip() == "5"
    assert len(FrameFolderReader(out / "walk" / "v2", modality="flow")) == 5
    assert not (out / "run" / "gap").exists() and not (out / "run" / "bad").exists()
    assert sorted(p.name for p in (out / "run").iterdir()) == []  # no temporary folder left


def test_prep_with_nothing_to_do_says_why(tmp_path, capsys):
    empty = tmp_path / "empty"
    (empty / "notes").mkdir(parents=True)
    (empty / "notes" / "readme.txt").write_text("no frames here")
    assert main(["prep", "flow", str(empty), str(tmp_path / "flow"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "nothing to compute flow for" in err and "img_00001.jpg" in err and len(err.strip().splitlines()) == 1
    assert main(["prep", "frames", str(empty), str(tmp_path / "frames"), "--no-progress"]) == 2
    assert "no videos to extract frames from" in capsys.readouterr().err


def _recording_flow_chunk(task: tuple) -> tuple:
    """``flow_chunk`` that first notes the threads of the process running it (a pool worker)."""
    from actionrec.prep.flow_batched import worker_threads

    with open(os.environ["ACTIONREC_TEST_THREADS"], "a") as f:
        f.write("%d %d %d\n" % worker_threads())
    return _FLOW_CHUNK(task)


from actionrec.prep.flow import flow_chunk as _FLOW_CHUNK  # noqa: E402 - the original, for the wrapper above


def test_prep_flow_pool_workers_run_one_thread_each(tmp_path, monkeypatch, capsys):
    import cv2

    import actionrec.prep.flow as flow_mod
    from actionrec.runtime import resolve_runtime

    src = tmp_path / "rawframes"
    _foreign_frames(src / "a" / "v1")
    _foreign_frames(src / "a" / "v2")
    log = tmp_path / "threads.txt"
    monkeypatch.setenv("ACTIONREC_TEST_THREADS", str(log))
    monkeypatch.setattr(flow_mod, "flow_chunk", _recording_flow_chunk)
    cv_threads = cv2.getNumThreads()
    try:
        with resolve_runtime(threads=2).applied():  # the parent on 2 torch threads, OpenCV on 2: the workers must not inherit them
            cv2.setNumThreads(2)
            assert main(["prep", "flow", str(src), str(tmp_path / "flow"), "--algo", "dis", "--workers", "2",
                         "--chunk", "2", "--no-progress"]) == 0
    finally:
        cv2.setNumThreads(cv_threads)
    assert "2 done" in capsys.readouterr().out
    seen = [tuple(map(int, line.split())) for line in log.read_text().splitlines()]
    assert len(seen) == 6  # 2 folders x 5 pairs in chunks of 2: 3 tasks each
    assert os.getpid() not in {pid for pid, _, _ in seen}  # computed in the pool
    assert {(torch_t, cv_t) for _, torch_t, cv_t in seen} == {(1, 1)}
