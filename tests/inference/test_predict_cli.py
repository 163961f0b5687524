"""`actionrec predict` over collections: inputs, resumable rows, shards, bounds; annotated video."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from actionrec.checkpoint import save_model
from actionrec.cli import main
from tests.deploy.conftest import tiny_model

DATA = Path(__file__).resolve().parents[1] / "data"


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory) -> Path:
    return save_model(tiny_model("r2plus1d_18", clip_len=4, size=32), tmp_path_factory.mktemp("m") / "m.safetensors")


@pytest.fixture
def collection(tmp_path) -> Path:
    root = tmp_path / "videos"
    (root / "a" / "deeper").mkdir(parents=True)
    shutil.copy(DATA / "short.mp4", root / "a" / "one.mp4")
    shutil.copy(DATA / "xvid.avi", root / "a" / "deeper" / "two_no_extension")  # found by probing the container
    shutil.copy(DATA / "rot90.mov", root / "three.mov")
    (root / "notes.txt").write_text("not a video")
    (root / "frame.jpg").write_bytes((DATA / "h264.mp4").read_bytes()[:100])
    (root / "broken.mp4").write_text("no video in here")  # a video by its name: reported as an error row
    (root / ".hidden").mkdir()
    shutil.copy(DATA / "short.mp4", root / ".hidden" / "skip.mp4")
    return root


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_folder_to_jsonl_resumes_after_a_torn_row(ckpt, collection, tmp_path, capsys):
    out = tmp_path / "preds.jsonl"
    args = ["predict", str(ckpt), str(collection), "--output", str(out), "--topk", "3", "--threads", "1", "--workers", "1"]
    assert main(args) == 0
    first = rows(out)
    names = sorted(Path(r["video"]).name for r in first)
    assert names == ["broken.mp4", "one.mp4", "three.mov", "two_no_extension"]
    by = {Path(r["video"]).name: r for r in first}
    assert "error" in by["broken.mp4"] and "broken.mp4" in by["broken.mp4"]["error"]
    ok = by["one.mp4"]
    assert len(ok["predictions"]) == 3 and ok["clips"] >= 1 and ok["duration"] > 0 and ok["truncated"] is False
    # a run killed while writing: the last row is torn; the rerun drops it and predicts that video again
    text = out.read_text()
    out.write_text(text[: text.rfind("\n", 0, len(text) - 1) + 1] + first[-1]["video"][:5])
    capsys.readouterr()
    assert main(args) == 0
    assert "3 videos already done" in capsys.readouterr().err
    again = rows(out)
    assert len(again) == 4 and [r["video"] for r in again] == [r["video"] for r in first]
    assert again[-1]["predictions"] == first[-1]["predictions"]
    assert main(args) == 0 and len(rows(out)) == 4  # nothing left to do


def test_globs_lists_csv_and_shards(ckpt, collection, tmp_path, capsys):
    lst = tmp_path / "videos.txt"
    lst.write_text(f"# my videos\n{collection / 'three.mov'}\n\n{tmp_path / 'gone.mp4'}\n")
    parts = []
    for i in range(2):
        out = tmp_path / "preds.csv"
        assert main(["predict", str(ckpt), str(collection / "a" / "**" / "*"), "--list", str(lst), "--output", str(out),
                     "--shard", f"{i}/2", "--topk", "2", "--threads", "1", "--workers", "0"]) == 0
        parts.append(tmp_path / f"preds.part-{i}-of-2.csv")
    tables = [list(csv.DictReader(p.open())) for p in parts]
    assert [len(t) for t in tables] == [2, 2]
    merged = {Path(r["video"]).name: r for t in tables for r in t}
    assert set(merged) == {"one.mp4", "two_no_extension", "three.mov", "gone.mp4"}
    assert merged["gone.mp4"]["error"] and not merged["one.mp4"]["error"]
    assert list(tables[0][0]) == ["video", "label_1", "score_1", "label_2", "score_2", "clips", "duration", "truncated", "error"]
    assert float(merged["one.mp4"]["score_1"]) >= float(merged["one.mp4"]["score_2"])


@pytest.mark.parametrize("extra, message", [
    (["--topk", "0"], "--topk: must be 1..10000, got 0"),
    (["--clips", "100000"], "--clips: must be 0..100"),
    (["--workers", "-1"], "--workers: must be 0..64"),
    (["--batch-size", "0"], "--batch-size: must be 1..1024"),
    (["--threads", "0"], "--threads: must be 1..1024"),
    (["--crop", "x"], "--crop: expected an integer"),
])
def test_counts_are_bounded(ckpt, extra, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(["predict", str(ckpt), str(DATA / "short.mp4"), *extra])
    assert e.value.code == 2 and message in capsys.readouterr().err


def test_usage_errors_before_any_work(ckpt, tmp_path, capsys):
    for args, message in (
        ([str(DATA / "short.mp4"), "--out", str(tmp_path / "x.avi")], "must end in .gif or .mp4"),
        ([str(DATA / "short.mp4"), str(DATA / "xvid.avi"), "--out", str(tmp_path / "x.gif")], "one video"),
        ([str(DATA / "short.mp4"), "--output", str(tmp_path / "x.txt")], "must end in .jsonl or .csv"),
        ([str(tmp_path / "nothere.mp4")], "video not found"),
        ([str(tmp_path / "*.mkv")], "no file matches"),
        ([], "at least one INPUT"),
        ([str(DATA / "short.mp4"), "--crop", "64"], "resize_short (37) must be ≥ crop_size (64)"),
    ):
        assert main(["predict", str(ckpt), *args]) == 2, args
        assert message in capsys.readouterr().err, args
    assert not (tmp_path / "x.avi").exists() and not (tmp_path / "x.gif").exists()


def test_one_video_output_is_unchanged_and_annotated_mp4_streams(ckpt, tmp_path, capsys):
    mp4 = tmp_path / "out.mp4"
    assert main(["predict", str(ckpt), str(DATA / "short.mp4"), "--json", "--topk", "4", "--out", str(mp4), "--threads", "1"]) == 0
    result = json.loads(capsys.readouterr().out.strip())
    assert result["video"].endswith("short.mp4") and len(result["predictions"]) == 4
    import av

    from actionrec.data.video import open_video

    with av.open(str(mp4)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    src = open_video(DATA / "short.mp4")
    assert len(frames) == len(src)
    h, w = frames[0].shape[:2]
    assert (h, w) == (256, 340)
    top = frames[0][: h // 16 * 4]  # the band holding the 4 bars is darker than the picture below
    assert top.mean() < frames[0][h // 2 :].mean()
    assert not np.array_equal(frames[0][-h // 20 :, -w // 3 :], frames[-1][-h // 20 :, -w // 3 :])  # the time stamp moves


def test_text_is_a_fixed_fraction_of_the_frame_and_input_is_not_touched():
    from actionrec.engine.visualize import draw_predictions

    topk = [("playing cricket", 0.9), ("golf putting", 0.06), ("hurling", 0.02)]
    fractions = []
    for h, w in ((112, 112), (720, 1280), (1080, 1920)):
        frame = np.full((h, w, 3), 200, np.uint8)
        out = draw_predictions(frame, topk, time_s=3.0)
        assert (frame == 200).all() and min(out.shape[:2]) >= 256
        fractions.append((out[:, 0, 0] < 100).mean())  # rows of the darkened band at the left edge
    assert max(fractions) - min(fractions) < 0.02 and 0.15 < fractions[0] < 0.25  # 3 lines of 1/16 of the height
