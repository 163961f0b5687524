"""`actionrec prep lists` against mmaction2's build_file_list.py, and 3D-ResNets JSON both ways.

The references were recorded by ``record_reference_lists.py`` (mmaction2 1.2.0's real tool, 3D-ResNets'
real ``util_scripts`` and ``VideoDataset``) on the stand-in trees of ``fake_datasets.py``, which the
tests rebuild here from the real split files in tests/data/splits.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import pytest

from actionrec.cli import main
from actionrec.data.annotations import load_samples
from actionrec.resources import class_names
from tests.lists.fake_datasets import listed_videos, make_tree, n_frames

DATA = Path(__file__).resolve().parent.parent / "data"
REF = DATA / "reference" / "lists"
REC = json.loads((REF / "recording.json").read_text())
COUNTS = {"ucf101": {"training": 9537, "validation": 3783}, "hmdb51": {"training": 3570, "validation": 1530}}


@pytest.fixture(scope="module", params=["ucf101", "hmdb51"])
def dataset(request, tmp_path_factory):
    """(name, split-file folder, videos root, frames root) of a stand-in tree of the split-1 videos."""
    name = request.param
    splits = DATA / "splits" / name
    videos = listed_videos(name, splits)
    tmp = tmp_path_factory.mktemp(name)
    return name, splits, make_tree(tmp / "videos", videos, frames=False), make_tree(tmp / "frames", videos, frames=True)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_prep_lists_is_byte_identical_to_mmaction2(dataset, tmp_path, capsys):
    name, splits, videos, frames = dataset
    assert main(["prep", "lists", name, str(videos), str(tmp_path), "--annotations", str(splits)]) == 0
    assert main(["prep", "lists", name, str(videos), str(tmp_path), "--annotations", str(splits), "--frames", str(frames)]) == 0
    assert "left out" not in capsys.readouterr().out and not (tmp_path / "left_out.txt").exists()
    for media in ("videos", "rawframes"):
        for subset in ("train", "val"):
            file = f"{name}_{subset}_split_1_{media}.txt"
            ref, ours = REC["mmaction2_lists"][file], tmp_path / file
            lines = ours.read_text().splitlines()
            per_label = [0] * len(ref["videos_per_label"])
            for ln in lines:
                per_label[int(ln.split()[-1])] += 1
            got = {"lines": len(lines), "first": lines[:3], "last": lines[-3:], "videos_per_label": per_label}
            assert got == {k: ref[k] for k in got}, file
            assert _sha(ours) == ref["sha256"], file
    assert (tmp_path / "classes.txt").read_text().splitlines() == class_names(name)


def test_their_json_loads_here(dataset, tmp_path):
    name, _, _, frames = dataset
    rec = REC["kh"][name]
    assert rec["their_json_in_their_dataset"] == COUNTS[name]
    theirs = tmp_path / rec["their_json"].removesuffix(".gz")
    theirs.write_bytes(gzip.decompress((REF / rec["their_json"]).read_bytes()))
    assert _sha(theirs) == rec["their_json_sha256"]
    for subset, count in COUNTS[name].items():
        samples, classes = load_samples("list", root=str(frames), annotations=str(theirs), subset=subset)
        assert len(samples) == count and classes == class_names(name)
        for s in samples[:: max(1, count // 200)]:
            rel = Path(s.path).relative_to(frames)
            assert classes[s.label] == rel.parent.name and (frames / rel).is_dir()
            assert s.n_frames == n_frames(f"{rel}.avi")


def test_our_json_loads_in_theirs(dataset, tmp_path):
    name, splits, videos, frames = dataset
    rec = REC["kh"][name]
    assert rec["our_json_in_their_dataset"] == COUNTS[name]  # recorded with their VideoDataset
    assert main(["prep", "lists", name, str(videos), str(tmp_path), "--annotations", str(splits),
                 "--frames", str(frames), "--json"]) == 0
    ours = tmp_path / ("ucf101_01.json" if name == "ucf101" else "hmdb51_1.json")  # their scripts' names
    assert _sha(ours) == rec["our_json_sha256"]  # the very file their dataset loaded
    data = json.loads(ours.read_text())
    assert all("/" not in key for key in data["database"])
    assert {v["subset"] for v in data["database"].values()} == {"training", "validation"}
    # the same content as their scripts' file (HMDB51: in another key order, theirs follows os.listdir)
    assert data == json.loads(gzip.decompress((REF / rec["their_json"]).read_bytes()))
