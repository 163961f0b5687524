"""mmaction2 lists (their own test lists), 3D-ResNets JSON details, and what `prep lists` leaves out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from actionrec.cli import main
from actionrec.data.annotations import (AnnotationError, ListEntry, Sample, find_list, load_samples, parse_hmdb51,
                                        read_kh_json, read_list, write_kh_json, write_list)
from actionrec.errors import UsageError
from actionrec.resources import class_names

DATA = Path(__file__).resolve().parent.parent / "data"
MM = DATA / "lists" / "mmaction2"  # open-mmlab/mmaction2 tests/data/annotations


def test_mmaction2_single_label_lists():
    assert read_list(MM / "video_test_list.txt") == [ListEntry("test.mp4", (0,))] * 2
    assert read_list(MM / "rawframe_test_list.txt") == [ListEntry("imgs", (127,), n_frames=5)] * 2


def test_multi_label_lines_are_read_with_the_switch_and_refused_without():
    with pytest.raises(AnnotationError, match=r"video_test_list_multi_label.txt:1: .*2 numbers after the video 'test.mp4'; .*multi_label=True$"):
        read_list(MM / "video_test_list_multi_label.txt")
    assert read_list(MM / "video_test_list_multi_label.txt", multi_label=True) == [
        ListEntry("test.mp4", (0, 3)), ListEntry("test.mp4", (0, 2, 4))]
    with pytest.raises(AnnotationError, match=r"rawframe_test_list_multi_label.txt:2: .*multi_label=True or with_offset=True"):
        read_list(MM / "rawframe_test_list_multi_label.txt")
    assert read_list(MM / "rawframe_test_list_multi_label.txt", multi_label=True) == [
        ListEntry("imgs", (1,), n_frames=5), ListEntry("imgs", (3, 5), n_frames=5)]


def test_offset_lines_are_read_with_the_switch_and_refused_without():
    with pytest.raises(AnnotationError, match=r"rawframe_test_list_with_offset.txt:1: .*3 numbers after the frame folder 'imgs'"):
        read_list(MM / "rawframe_test_list_with_offset.txt")
    assert read_list(MM / "rawframe_test_list_with_offset.txt", with_offset=True) == [
        ListEntry("imgs", (127,), n_frames=5, offset=2)] * 2
    assert read_list(MM / "rawframe_test_list_with_offset.txt", with_offset=True, multi_label=True) == [
        ListEntry("imgs", (127,), n_frames=5, offset=2)] * 2


def test_label_less_lines(tmp_path):
    (tmp_path / "infer.txt").write_text("imgs 5\nclip.mp4\nimgs\n")
    with pytest.raises(AnnotationError, match=r"infer.txt:3: expected 'dir n_frames label'.*lacks n_frames.*media='videos'"):
        read_list(tmp_path / "infer.txt")
    (tmp_path / "infer.txt").write_text("imgs 5\nclip.mp4\n")
    entries = read_list(tmp_path / "infer.txt")
    assert entries == [ListEntry("imgs", (), n_frames=5), ListEntry("clip.mp4", ())]
    assert entries[0].where == f"{tmp_path / 'infer.txt'}:1"
    # mmaction2's VideoDataset reads 'imgs 5' as a video labelled 5; say so to get that reading
    assert read_list(tmp_path / "infer.txt", media="videos") == [ListEntry("imgs", (5,)), ListEntry("clip.mp4", ())]
    with pytest.raises(AnnotationError, match=r"infer.txt:1: 'imgs' has no label \(an inference list\)"):
        load_samples("list", root=str(tmp_path), annotations=str(tmp_path / "infer.txt"), check=False)
    with pytest.raises(UsageError, match="media must be one of"):
        read_list(tmp_path / "infer.txt", media="frames")


def test_paths_with_spaces_and_bad_fields(tmp_path):
    samples = [Sample("air drumming/x.mp4", 0), Sample("b/y z.mp4", 1)]
    write_list(tmp_path / "l.txt", samples)
    assert read_list(tmp_path / "l.txt") == [ListEntry("air drumming/x.mp4", (0,)), ListEntry("b/y z.mp4", (1,))]
    (tmp_path / "bad.txt").write_text("a/x 40 0\na/y -3 1\n")
    with pytest.raises(AnnotationError, match=r"bad.txt:2: negative n_frames"):
        read_list(tmp_path / "bad.txt")
    (tmp_path / "bad.txt").write_text("test.mp4 0 x 4\n")
    with pytest.raises(AnnotationError, match=r"bad.txt:1: 'x' is not an integer"):
        read_list(tmp_path / "bad.txt", multi_label=True)


def test_list_round_trip_with_classes(tmp_path):
    framed = [Sample("a/x", 0, 40), Sample("b/y", 1, 7)]
    write_list(tmp_path / "f.txt", framed, with_n_frames=True)
    assert (tmp_path / "f.txt").read_text() == "a/x 40 0\nb/y 7 1\n"
    (tmp_path / "classes.txt").write_text("alpha\nbeta\n")
    for p in ("a/x", "b/y"):
        (tmp_path / p).mkdir(parents=True)
        (tmp_path / p / "img_00001.jpg").write_bytes(b"x")
    s, classes = load_samples("list", root=str(tmp_path), annotations=str(tmp_path / "f.txt"))
    assert classes == ["alpha", "beta"] and s == [Sample(str(tmp_path / "a/x"), 0, 40), Sample(str(tmp_path / "b/y"), 1, 7)]


def test_both_namings_of_the_test_list_are_found(tmp_path):
    for name in ("ucf101_train_split_1_videos.txt", "ucf101_test_split_1_videos.txt", "ucf101_val_split_2_videos.txt"):
        (tmp_path / name).write_text("a/x.mp4 0\n")
    assert find_list(tmp_path, subset="train").name == "ucf101_train_split_1_videos.txt"
    assert find_list(tmp_path, subset="val").name == "ucf101_test_split_1_videos.txt"  # our former name
    assert find_list(tmp_path, subset="test", split=2).name == "ucf101_val_split_2_videos.txt"  # mmaction2's
    (tmp_path / "ucf101_val_split_1_videos.txt").write_text("a/x.mp4 0\n")
    with pytest.raises(AnnotationError, match="more than one val list for split 1"):
        find_list(tmp_path, subset="val")
    with pytest.raises(AnnotationError, match="no train list for split 3"):
        find_list(tmp_path, subset="train", split=3)
    s, _ = load_samples("list", root=str(tmp_path), annotations=str(tmp_path), subset="test", split=2, check=False)
    assert s == [Sample(str(tmp_path / "a/x.mp4"), 0)]


def test_hmdb51_classes_in_class_name_order(data_dir):
    train, classes = parse_hmdb51(data_dir / "splits" / "hmdb51", split=1, subset="train")
    assert classes == class_names("hmdb51")
    for a, b in (("climb", "climb_stairs"), ("kick", "kick_ball"), ("sword", "sword_exercise")):
        assert classes.index(a) + 1 == classes.index(b)
        assert {p.split("/")[0] for p, lab in train if lab == classes.index(a)} == {a}


def test_kh_json_is_written_as_their_loader_reads_it(tmp_path):
    write_kh_json(tmp_path / "k.json", classes=["a", "b"],
                  subsets={"training": [Sample("a/v1.avi", 0, 30)], "validation": [Sample("b/v2", 1, 12), Sample("b/v3", 1)]})
    assert json.loads((tmp_path / "k.json").read_text()) == {"labels": ["a", "b"], "database": {
        "v1": {"subset": "training", "annotations": {"label": "a", "segment": [1, 31]}},
        "v2": {"subset": "validation", "annotations": {"label": "b", "segment": [1, 13]}},
        "v3": {"subset": "validation", "annotations": {"label": "b"}}}}
    tr, classes = read_kh_json(tmp_path / "k.json", subset="train")
    va, _ = read_kh_json(tmp_path / "k.json", subset="val")
    assert classes == ["a", "b"] and tr == [Sample("a/v1", 0, 30)] and va == [Sample("b/v2", 1, 12), Sample("b/v3", 1)]
    with pytest.raises(AnnotationError, match=r"x/v1.avi: 3D-ResNets JSON can only name videos at <label>/<video>"):
        write_kh_json(tmp_path / "k.json", classes=["a"], subsets={"training": [Sample("x/v1.avi", 0)]})
    with pytest.raises(AnnotationError, match="'v1' is used twice"):
        write_kh_json(tmp_path / "k.json", classes=["a", "b"], subsets={"training": [Sample("a/v1", 0), Sample("b/v1.mp4", 1)]})


def test_kh_json_errors_and_unlabelled_entries(tmp_path, caplog):
    def db(**entries):
        (tmp_path / "k.json").write_text(json.dumps({"labels": ["a"], "database": entries}))
        return tmp_path / "k.json"

    s, _ = read_kh_json(db(v1={"subset": "testing", "annotations": {}}, v2={"subset": "testing", "annotations": {"label": "a"}}),
                        subset="test")
    assert s == [Sample("a/v2", 0)] and "1 test entries have no label" in caplog.text
    with pytest.raises(AnnotationError, match=r"entry 'v1' has label 'z', which is not in 'labels'"):
        read_kh_json(db(v1={"subset": "training", "annotations": {"label": "z"}}))
    with pytest.raises(AnnotationError, match=r"entry 'v1': segment must be \[1, n_frames \+ 1\], got \[5, 9\]"):
        read_kh_json(db(v1={"subset": "training", "annotations": {"label": "a", "segment": [5, 9]}}))
    (tmp_path / "k.json").write_text("[1, 2]")
    with pytest.raises(AnnotationError, match="not a 3D-ResNets annotation JSON"):
        read_kh_json(tmp_path / "k.json")


def test_prep_lists_names_and_counts_videos_without_frames(tmp_path, capsys):
    root, frames = tmp_path / "ucf", tmp_path / "frames"
    for i in range(1, 4):
        (root / "ApplyEyeMakeup").mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / "xvid.avi", root / "ApplyEyeMakeup" / f"v_ApplyEyeMakeup_g08_c0{i}.avi")
    (frames / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01").mkdir(parents=True)  # extracted
    (frames / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01" / "img_00001.jpg").write_bytes(b"x")
    (frames / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c02").mkdir()  # extraction failed: empty
    (frames / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c03").mkdir()  # a folder without frames
    (frames / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c03" / "notes.txt").write_text("x")
    (frames / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01").mkdir()
    (frames / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g01_c01" / "img_00001.jpg").write_bytes(b"x")
    out = tmp_path / "l"
    assert main(["prep", "lists", "ucf101", str(root), str(out), "--frames", str(frames),
                 "--annotations", str(DATA / "splits" / "ucf101")]) == 1
    printed = capsys.readouterr().out
    assert (out / "ucf101_train_split_1_rawframes.txt").read_text() == "ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01 1 0\n"
    assert "ucf101_train_split_1_rawframes.txt (1 videos)" in printed
    assert "left out 1 (empty frame folder): ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c02.avi" in printed
    assert "left out 1 (no frames): ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c03" in printed
    assert "left out 9534 (no frame folder)" in printed and "left out 3782 (no frame folder)" in printed
    rows = (out / "left_out.txt").read_text().splitlines()
    assert len(rows) == 9536 + 3782 and "ucf101_train_split_1_rawframes.txt\tno frames\tApplyEyeMakeup/v_ApplyEyeMakeup_g08_c03" in rows
    assert main(["prep", "lists", "ucf101", str(root), str(out), "--json", "--annotations", str(DATA / "splits" / "ucf101")]) == 2
    assert "--json needs --frames" in capsys.readouterr().err


@pytest.mark.parametrize("rec", json.loads((DATA / "reference" / "lists" / "recording.json").read_text())["mmaction2_parsing"],
                         ids=lambda r: f"{r['file']}-{'-'.join(r['switches']) or 'plain'}")
@pytest.mark.parametrize("media", ["auto", "explicit"])
def test_lists_read_as_mmaction2_datasets_read_them(rec, media):
    """Recorded from mmaction2 1.2.0's VideoDataset/RawframeDataset.load_data_list (record_reference_lists.py)."""
    path = DATA / "lists" / rec["file"]
    kw = {"multi_label": rec["switches"].get("multi_class", False), "with_offset": rec["switches"].get("with_offset", False),
          "media": "auto" if media == "auto" else "videos" if rec["dataset"] == "VideoDataset" else "rawframes"}
    if "error" in rec:  # mmaction2 fails with an unhelpful error; we name the line and the switch
        with pytest.raises(AnnotationError, match=rf"{path.name}:\d+: .*read it with multi_label=True"):
            read_list(path, **kw)
        return
    expected = [ListEntry(e.get("filename", e.get("frame_dir")),
                          tuple(e["label"]) if kw["multi_label"] else () if e["label"] == -1 else (e["label"],),
                          e.get("total_frames"), e.get("offset")) for e in rec["entries"]]
    assert read_list(path, **kw) == expected
