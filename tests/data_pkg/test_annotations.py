"""Annotation parsing on the real UCF101 / HMDB51 split files (mmaction2 lists and 3D-ResNets JSON: tests/lists)."""

from __future__ import annotations

import logging

import pytest

from actionrec.data.annotations import (AnnotationError, load_samples, parse_hmdb51, parse_kinetics, parse_ucf101,
                                        scan_folder, stratified_split)


def test_ucf101_split1_real(data_dir):
    d = data_dir / "splits" / "ucf101"
    assert b"\r\n" in (d / "trainlist01.txt").read_bytes()  # the official CRLF files
    train, classes = parse_ucf101(d, split=1, subset="train")
    test, _ = parse_ucf101(d, split=1, subset="test")
    assert (len(train), len(test), len(classes)) == (9537, 3783, 101)
    assert classes[0] == "ApplyEyeMakeup" and classes[100] == "YoYo"
    assert train[0] == ("ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi", 0)
    assert test[-1][1] == 100 and not test[-1][0].endswith("\r")
    assert not {p for p, _ in train} & {p for p, _ in test}
    assert {lab for _, lab in test} == set(range(101))


def test_hmdb51_split1_real(data_dir):
    d = data_dir / "splits" / "hmdb51"
    train, classes = parse_hmdb51(d, split=1, subset="train")
    test, _ = parse_hmdb51(d, split=1, subset="test")
    assert (len(train), len(test), len(classes)) == (3570, 1530, 51)
    assert classes[0] == "brush_hair" and classes[-1] == "wave"
    assert classes.index("climb") < classes.index("climb_stairs")  # class-name order (tests/lists has more)
    assert all(p.endswith(".avi") and " " not in p for p, _ in train)


def test_load_samples_without_videos_and_missing_report(data_dir, tmp_path, caplog):
    d = data_dir / "splits" / "ucf101"
    samples, classes = load_samples("ucf101", root=str(tmp_path), annotations=str(d), check=False)
    assert len(samples) == 9537 and samples[0].path.startswith(str(tmp_path))
    (tmp_path / "ApplyEyeMakeup").mkdir()
    (tmp_path / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c01.avi").write_bytes(b"x")
    (tmp_path / "ApplyEyeMakeup" / "v_ApplyEyeMakeup_g08_c02.avi").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        samples, _ = load_samples("ucf101", root=str(tmp_path), annotations=str(d))
    assert len(samples) == 1
    assert "9535 of 9537 listed videos are missing" in caplog.text and "1 of 9537 listed videos are empty" in caplog.text
    with pytest.raises(AnnotationError, match="none of the 3783"):
        load_samples("ucf101", root=str(tmp_path), annotations=str(d), subset="test")


def test_kinetics_csv(tmp_path):
    csv = tmp_path / "k.csv"
    csv.write_text("label,youtube_id,time_start,time_end,split\n"
                   "zumba,abc,10,20,train\nabseiling,def,0,10,train\nzumba,ghi,5,15,val\n")
    items, classes = parse_kinetics(csv, subset="train")
    assert classes == ["abseiling", "zumba"]
    assert items == [("zumba/abc_000010_000020.mp4", 1), ("abseiling/def_000000_000010.mp4", 0)]
    assert parse_kinetics(csv, subset="val")[0] == [("zumba/ghi_000005_000015.mp4", 1)]
    # clips may also sit in one flat folder
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "abc_000010_000020.mp4").write_bytes(b"x")
    s, _ = load_samples("kinetics", root=str(tmp_path / "v"), annotations=str(csv), subset="train")
    assert [x.path for x in s] == [str(tmp_path / "v" / "abc_000010_000020.mp4")]


def test_label_name_csv(tmp_path, caplog):
    from actionrec.data.annotations import LeftOut

    (tmp_path / "v").mkdir()
    for n in ("a.mp4", "b.mp4", "c.mp4"):
        (tmp_path / "v" / n).write_bytes(b"x")
    csv = tmp_path / "labels.csv"
    csv.write_text("file,label,notes\nv/a.mp4,Tai_Chi,x\nv/b.mp4,zumba\nv/c.mp4,knitting\nv/d.mp4,zumba\n")
    left = LeftOut()
    with caplog.at_level(logging.WARNING):
        s, classes = load_samples("csv", root=str(tmp_path), annotations=str(csv), classes=["tai chi", "zumba"], left_out=left)
    assert classes == ["tai chi", "zumba"] and [(x.path, x.label) for x in s] == [(str(tmp_path / "v/a.mp4"), 0),
                                                                                  (str(tmp_path / "v/b.mp4"), 1)]
    assert left.as_dict() == {"unknown_labels": {"knitting": 1}, "missing": ["v/d.mp4"]}
    assert "'knitting' ×1" in caplog.text
    s, classes = load_samples("csv", root=str(tmp_path), annotations=str(csv), check=False)  # no model: names of the file
    assert classes == ["Tai_Chi", "knitting", "zumba"] and [x.label for x in s] == [0, 2, 1, 2]
    with pytest.raises(AnnotationError, match=r"labels\.csv: no label is one of the 2 class names: 'zumba' ×2"):
        load_samples("csv", root=str(tmp_path), annotations=str(csv), classes=["yoga", "tango"])


def _tree(root, counts):
    for c, n in counts.items():
        (root / c).mkdir(parents=True)
        for i in range(n):
            (root / c / f"{c}_{i}.mp4").write_bytes(b"x")


def test_folder_split_is_stratified_and_seeded(tmp_path):
    _tree(tmp_path, {"run": 10, "jump": 5, "sit": 2})
    tr, classes = load_samples("folder", root=str(tmp_path), subset="train", val_fraction=0.2, seed=3)
    va, _ = load_samples("folder", root=str(tmp_path), subset="val", val_fraction=0.2, seed=3)
    assert classes == ["jump", "run", "sit"]
    assert sorted(s.label for s in va) == [0, 1, 1, 2]  # 1 of 5, 2 of 10, 1 of 2
    assert len(tr) + len(va) == 17 and not {s.path for s in tr} & {s.path for s in va}
    again, _ = load_samples("folder", root=str(tmp_path), subset="val", val_fraction=0.2, seed=3)
    assert [s.path for s in again] == [s.path for s in va]
    other = [s.path for s in load_samples("folder", root=str(tmp_path), subset="val", val_fraction=0.2, seed=4)[0]]
    assert other != [s.path for s in va]


def test_folder_with_given_train_val(tmp_path):
    _tree(tmp_path / "train", {"a": 2, "b": 2})
    _tree(tmp_path / "val", {"a": 1, "b": 1})
    va, classes = load_samples("folder", root=str(tmp_path), subset="val")
    assert len(va) == 2 and classes == ["a", "b"]


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(AnnotationError, match="unknown dataset format .ssv2."):
        load_samples("ssv2", root=str(tmp_path))
    with pytest.raises(AnnotationError, match="classInd.txt"):
        parse_ucf101(tmp_path)
    with pytest.raises(AnnotationError, match="_test_split1.txt"):
        parse_hmdb51(tmp_path)
    assert stratified_split([("a", 0)], val_fraction=0.5, seed=0) == ([("a", 0)], [])
    assert scan_folder(tmp_path) == ([], [])
