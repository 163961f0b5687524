"""Record what mmaction2's ``build_file_list.py`` and 3D-ResNets' ``util_scripts`` make of UCF101
and HMDB51, and what 3D-ResNets' ``VideoDataset`` loads from their JSON and from ours.

Also records how mmaction2's ``VideoDataset``/``RawframeDataset`` parse its own small test lists
(multi-label, with offset) and two label-less lists.

Run once, in a scratch environment that has ``mmaction2`` (its wheel ships ``tools/data`` under
``mmaction/.mim``) with ``mmengine``, ``mmcv-lite`` (<2.2) and ``scipy``, plus ``pandas`` and ``h5py`` for 3D-ResNets, and a checkout of
kenshohara/3D-ResNets-PyTorch; nothing of theirs is copied into this repository::

    python tests/lists/record_reference_lists.py --splits /path/to/all/split/files \
        --kh-repo /path/to/3D-ResNets-PyTorch --out tests/data/reference/lists

``--splits`` holds ``ucf101/`` (``classInd.txt``, ``trainlist0{1,2,3}.txt``, ``testlist0{1,2,3}.txt``)
and ``hmdb51/`` (the 153 ``<class>_test_split{1,2,3}.txt``): both tools insist on all three splits.
The videos are the stand-ins of ``fake_datasets.py``. Written: ``recording.json`` (hashes, line
counts, first/last lines of mmaction2's split-1 lists; the loaded counts) and 3D-ResNets' own
split-1 JSON, gzipped, for the tests to read.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.lists.fake_datasets import FRAME_PREFIX, listed_videos, make_tree  # noqa: E402

SPLIT_FILES = {"ucf101": ["classInd.txt", *(f"{k}list0{i}.txt" for k in ("train", "test") for i in (1, 2, 3))]}


def file_record(path: Path) -> dict:
    data = path.read_bytes()
    lines = data.decode().splitlines()
    per_label = collections.Counter(int(ln.split()[-1]) for ln in lines)
    return {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "lines": len(lines),
            "first": lines[:3], "last": lines[-3:], "videos_per_label": [per_label[k] for k in range(max(per_label) + 1)]}


def copy_split_files(src: Path, dst: Path, dataset: str) -> Path:
    dst.mkdir(parents=True, exist_ok=True)
    names = SPLIT_FILES.get(dataset) or sorted(p.name for p in src.glob("*_test_split[123].txt"))
    for n in names:
        shutil.copy(src / n, dst / n)
    return dst


def run(cmd: list[str], cwd: Path, **env: str) -> None:
    print("+", " ".join(cmd), f"(in {cwd})", flush=True)
    subprocess.run(cmd, cwd=cwd, check=True, env={**os.environ, **env}, stdout=subprocess.DEVNULL)


def mmaction2_tools() -> Path:
    """``mmaction/.mim`` of the installed mmaction2 wheel (found without importing it: that needs mmcv)."""
    return Path(importlib.util.find_spec("mmaction").origin).parent / ".mim"


def mmaction2_lists(dataset: str, splits: Path, work: Path, videos: Path, frames: Path) -> dict:
    """Run build_file_list.py as mmaction2's generate_{videos,rawframes}_filelist.sh do, without --shuffle."""
    mim = mmaction2_tools()
    tool = mim / "tools" / "data" / "build_file_list.py"
    data = work / "data" / dataset
    copy_split_files(splits / dataset, data / "annotations", dataset)
    (data / "videos").symlink_to(videos)  # HMDB51's class list is sorted(os.listdir('data/hmdb51/videos'))
    (data / "rawframes").symlink_to(frames)
    out = {}
    for fmt, extra in (("videos", []), ("rawframes", ["--rgb-prefix", FRAME_PREFIX])):
        run([sys.executable, str(tool), dataset, f"data/{dataset}/{fmt}/", "--level", "2", "--format", fmt, *extra],
            work, PYTHONPATH=str(mim))
        for subset in ("train", "val"):
            name = f"{dataset}_{subset}_split_1_{fmt}.txt"
            out[name] = file_record(data / name)
    return out


def kh_json(dataset: str, splits: Path, kh_repo: Path, work: Path, frames: Path) -> Path:
    """Their util_scripts/<dataset>_json.py on the split files and the frame folders; their split-1 file."""
    ann = copy_split_files(splits / dataset, work / f"{dataset}_annotations", dataset)
    dst = work / f"{dataset}_json"
    dst.mkdir()
    run([sys.executable, "-m", f"util_scripts.{dataset}_json", str(ann), str(frames), str(dst)], kh_repo)
    return dst / ("ucf101_01.json" if dataset == "ucf101" else "hmdb51_1.json")


def kh_counts(kh_repo: Path, frames: Path, annotation: Path) -> dict:
    """Videos their VideoDataset (datasets/videodataset.py) loads per subset, as main.py builds it for jpg input."""
    code = ("import json, sys; from pathlib import Path; from datasets.videodataset import VideoDataset\n"
            f"r = {{s: len(VideoDataset(Path({str(frames)!r}), Path({str(annotation)!r}), s)) for s in ('training', 'validation')}}\n"
            "print(json.dumps(r))")
    res = subprocess.run([sys.executable, "-c", code], cwd=kh_repo, check=True, capture_output=True, text=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def ours(dataset: str, videos: Path, frames: Path, out: Path) -> None:
    split1 = REPO / "tests" / "data" / "splits" / dataset
    for extra in ([], ["--frames", str(frames), "--json"]):
        subprocess.run([sys.executable, "-m", "actionrec.cli", "prep", "lists", dataset, str(videos), str(out),
                        "--annotations", str(split1), *extra], check=True, env={**os.environ, "PYTHONPATH": str(REPO)})


# (list file, mmaction2 dataset, its switches): mmaction2's own test lists, and two label-less ones of ours
PARSING = [("mmaction2/video_test_list.txt", "VideoDataset", {}),
           ("mmaction2/video_test_list_multi_label.txt", "VideoDataset", {"multi_class": True, "num_classes": 5}),
           ("mmaction2/video_test_list_multi_label.txt", "VideoDataset", {}),
           ("video_infer_list.txt", "VideoDataset", {}),
           ("mmaction2/rawframe_test_list.txt", "RawframeDataset", {}),
           ("mmaction2/rawframe_test_list_multi_label.txt", "RawframeDataset", {"multi_class": True, "num_classes": 6}),
           ("mmaction2/rawframe_test_list_multi_label.txt", "RawframeDataset", {}),
           ("mmaction2/rawframe_test_list_with_offset.txt", "RawframeDataset", {"with_offset": True}),
           ("mmaction2/rawframe_test_list_with_offset.txt", "RawframeDataset", {}),
           ("rawframe_infer_list.txt", "RawframeDataset", {})]


def mmaction2_parsing() -> list[dict]:
    """What mmaction2's datasets (``load_data_list``) make of each list in PARSING, or the error they raise."""
    import mmaction.datasets

    out = []
    for name, cls, kwargs in PARSING:
        rec = {"file": name, "dataset": cls, "switches": kwargs}
        try:
            ds = getattr(mmaction.datasets, cls)(str(REPO / "tests" / "data" / "lists" / name), [], lazy_init=True, **kwargs)
            rec["entries"] = [{k: v for k, v in d.items() if k in ("filename", "frame_dir", "label", "total_frames", "offset")}
                              for d in ds.load_data_list()]
        except Exception as e:  # noqa: BLE001 - recording what their code does with the line
            rec["error"] = f"{type(e).__name__}: {e}"
        out.append(rec)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--splits", type=Path, required=True)
    ap.add_argument("--kh-repo", type=Path, required=True)
    ap.add_argument("--kh-commit", default=None, help="commit of the 3D-ResNets checkout (default: git rev-parse there)")
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "data" / "reference" / "lists")
    ap.add_argument("--parsing-only", action="store_true", help="only rerun the parsing of small lists (needs mmcv-lite, scipy)")
    args = ap.parse_args()
    if args.parsing_only:
        rec = json.loads((args.out / "recording.json").read_text())
        rec["mmaction2_parsing"] = mmaction2_parsing()
        (args.out / "recording.json").write_text(json.dumps(rec, indent=1) + "\n")
        return
    kh_commit = args.kh_commit or subprocess.run(["git", "-C", str(args.kh_repo), "rev-parse", "HEAD"],
                                                 capture_output=True, text=True).stdout.strip()
    rec: dict = {"mmaction2": importlib.metadata.version("mmaction2"),
                 "build_file_list.py sha256": hashlib.sha256(
                     (mmaction2_tools() / "tools/data/build_file_list.py").read_bytes()).hexdigest(),
                 "3D-ResNets-PyTorch": kh_commit or "see --kh-repo", "mmaction2_lists": {}, "kh": {}}
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for ds in ("ucf101", "hmdb51"):
            videos = listed_videos(ds, args.splits / ds)
            vroot = make_tree(tmp / ds / "videos", videos, frames=False)
            froot = make_tree(tmp / ds / "frames", videos, frames=True)
            (tmp / ds / "mm").mkdir()
            mm = mmaction2_lists(ds, args.splits, tmp / ds / "mm", vroot, froot)
            rec["mmaction2_lists"].update(mm)
            theirs = kh_json(ds, args.splits, args.kh_repo, tmp / ds, froot)
            with gzip.GzipFile(args.out / f"{theirs.name}.gz", "wb", mtime=0) as f:
                f.write(theirs.read_bytes())
            ours(ds, vroot, froot, tmp / ds / "ours")
            our_json = tmp / ds / "ours" / theirs.name
            rec["kh"][ds] = {"their_json": theirs.name + ".gz", "their_json_sha256": hashlib.sha256(theirs.read_bytes()).hexdigest(),
                             "their_json_in_their_dataset": kh_counts(args.kh_repo, froot, theirs),
                             "our_json_sha256": hashlib.sha256(our_json.read_bytes()).hexdigest(),
                             "our_json_in_their_dataset": kh_counts(args.kh_repo, froot, our_json)}
            for name, r in mm.items():
                same = hashlib.sha256((tmp / ds / "ours" / name).read_bytes()).hexdigest() == r["sha256"]
                print(f"{name}: {r['lines']} lines, ours {'identical' if same else 'DIFFERENT'}")
            print(ds, json.dumps(rec["kh"][ds]))
    rec["mmaction2_parsing"] = mmaction2_parsing()
    (args.out / "recording.json").write_text(json.dumps(rec, indent=1) + "\n")
    print("wrote", args.out / "recording.json")


if __name__ == "__main__":
    main()
