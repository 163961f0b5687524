"""``actionrec eval MODEL --list labels.csv``: labels written as class names, matched to the model's class names.

A tiny model whose head always predicts ``cleaning pool`` (a zero weight, a bias on that class) makes every
expected score exact: a video is right iff its label maps to that class.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import pytest
import torch

from actionrec.checkpoint import save_model
from actionrec.cli import main
from actionrec.data.annotations import AnnotationError, label_matcher, normalize_label, read_label_csv
from actionrec.engine.evaluate import Predictions
from actionrec.factory import create_model

DATA = Path(__file__).resolve().parents[1] / "data"
CLASSES = ["playing cricket", "cleaning pool", "abseiling"]
EVAL = ["--clips", "1", "--crops", "1", "--backend", "torch", "--workers", "0"]


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """R(2+1)D-18 with narrow stages, 4 frames of 32², class names set, always predicting class 1."""
    torch.manual_seed(0)
    model = create_model("r2plus1d_18", num_classes=len(CLASSES), widths=[4, 8, 8, 8])
    p = model.meta.preprocess
    p.clip_len, p.resize_short, p.crop_size = 4, 36, 32
    model.meta.class_names = list(CLASSES)
    head = model.get_classifier()
    with torch.no_grad():
        head.weight.zero_()
        head.bias.copy_(torch.tensor([0.0, 5.0, 0.0]))
    return save_model(model, tmp_path_factory.mktemp("model") / "named.safetensors")


@pytest.fixture
def clips(tmp_path: Path) -> Path:
    """A user's folder: real videos in ``videos/`` next to where the CSV goes."""
    folder = tmp_path / "footage"
    (folder / "videos").mkdir(parents=True)
    for name in ("h264.mp4", "short.mp4", "xvid.avi", "rot0.mov"):
        shutil.copy(DATA / name, folder / "videos" / name)
    return folder


def _warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and text in r.getMessage()]


def test_label_names_matched_loosely_unknown_reported_and_left_out(ckpt: Path, clips: Path, tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = clips / "labels.csv"  # header with extra columns; names differ in case, separators and quotes
    csv_path.write_text("file,label,notes\n"
                        "videos/h264.mp4,Cleaning_Pool,skimming net\n"
                        "videos/short.mp4,playing cricket,\n"
                        "videos/xvid.avi,\"'ABSEILING'\",quoted\n"
                        "videos/rot0.mov,making tea,not a class of the model\n"
                        "\n")
    out = tmp_path / "ev"
    caplog.set_level(logging.WARNING)
    assert main(["eval", str(ckpt), "--list", str(csv_path), *EVAL, "--out", str(out)]) == 0  # no --root: the CSV's folder
    assert "3 videos" in capsys.readouterr().out
    lines = _warnings(caplog, "making tea")
    assert len(lines) == 1 and "1 of 4 rows left out" in lines[0] and "'making tea' ×1" in lines[0]
    p = Predictions.load(out / "predictions.npz")
    assert [Path(v).name for v in p.videos] == ["h264.mp4", "short.mp4", "xvid.avi"]
    assert p.labels.tolist() == [1, 0, 2] and p.class_names == CLASSES
    m = json.loads((out / "metrics.json").read_text())
    assert m["videos"] == 3 and m["video_top1"] == pytest.approx(1 / 3)  # only h264.mp4 is "cleaning pool"
    assert m["left_out"] == {"unknown_labels": {"making tea": 1}}


def test_paths_under_root_and_no_header(ckpt: Path, tmp_path: Path) -> None:
    csv_path = tmp_path / "lists" / "val.csv"
    csv_path.parent.mkdir()
    csv_path.write_text("h264.mp4,cleaning pool\nxvid.avi,cleaning-pool\nshort.mp4,Abseiling\n")
    out = tmp_path / "ev"
    assert main(["eval", str(ckpt), "--root", str(DATA), "--list", str(csv_path), *EVAL, "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["videos"] == 3 and m["video_top1"] == pytest.approx(2 / 3) and "left_out" not in m


def test_paths_not_under_root_are_taken_from_the_csv_folder(ckpt: Path, clips: Path, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (clips / "labels.csv").write_text("videos/h264.mp4,cleaning pool\nvideos/missing.mp4,abseiling\n")
    monkeypatch.chdir(clips)  # the CSV named relative to the working directory
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "ev"
    assert main(["eval", str(ckpt), "--root", str(elsewhere), "--list", "labels.csv", *EVAL, "--out", str(out)]) == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["videos"] == 1 and m["video_top1"] == 1.0 and m["left_out"] == {"missing": ["videos/missing.mp4"]}


def test_no_label_matches_is_one_line_naming_the_file(ckpt: Path, clips: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = clips / "typos.csv"
    csv_path.write_text("videos/h264.mp4,cleaning the pool\nvideos/short.mp4,playing criket\nvideos/xvid.avi,playing criket\n")
    out = tmp_path / "ev"
    assert main(["eval", str(ckpt), "--list", str(csv_path), *EVAL, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(csv_path) in err
    assert "'playing criket' ×2 (did you mean 'playing cricket'?)" in err and "'cleaning the pool' ×1" in err
    assert not out.exists()


def test_index_lists_still_read_as_mmaction2_lists(ckpt: Path, tmp_path: Path) -> None:
    lst = tmp_path / "val.txt"
    lst.write_text("h264.mp4 1\nshort.mp4 0\nxvid.avi 2\n")  # label indices; the class count from the largest
    out = tmp_path / "ev"
    assert main(["eval", str(ckpt), "--root", str(DATA), "--list", str(lst), *EVAL, "--out", str(out)]) == 0
    p = Predictions.load(out / "predictions.npz")
    assert p.labels.tolist() == [1, 0, 2] and json.loads((out / "metrics.json").read_text())["video_top1"] == pytest.approx(1 / 3)


def test_normalize_match_and_read_rows(tmp_path: Path) -> None:
    assert normalize_label("  'Playing_Cricket' ") == normalize_label("playing - cricket") == "playing cricket"
    match = label_matcher(["pull ups", "Pull_Ups", "squat"])
    assert match("Pull_Ups") == 1 and match("pull ups") == 0  # exact names first
    assert match("PULL-UPS") is None  # the loose form is shared by two classes: no guess
    assert match("Squat") == 2 and match("squats") is None
    f = tmp_path / "l.csv"
    f.write_text("video,k400_label\na.mp4,squat\n")  # a header recognised by its label column
    assert [r[:2] for r in read_label_csv(f)] == [("a.mp4", "squat")]
    f.write_text("a.mp4,squat\nb.mp4\n")
    with pytest.raises(AnnotationError, match=r"l\.csv:2: expected 'file,label'"):
        read_label_csv(f)
