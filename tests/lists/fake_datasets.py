"""Stand-in UCF101/HMDB51 trees built from the real split files: every listed video as a 1-byte
file, and its frame folder with 1-3 empty ``image_NNNNN.jpg`` files (3D-ResNets' naming, which
mmaction2 reads with ``--rgb-prefix image_``).

Shared by ``record_reference_lists.py`` (run once where mmaction2 and 3D-ResNets are installed)
and the tests, so both see the same names and frame counts.
"""

from __future__ import annotations

import zlib
from pathlib import Path

FRAME_PREFIX = "image_"


def listed_videos(dataset: str, split_dir: Path) -> list[str]:
    """``Class/video.avi`` of every video named in the split files of ``split_dir`` (all splits there)."""
    split_dir = Path(split_dir)
    names: set[str] = set()
    if dataset == "ucf101":
        for f in [*split_dir.glob("trainlist0*.txt"), *split_dir.glob("testlist0*.txt")]:
            names.update(ln.split()[0] for ln in f.read_text().splitlines() if ln.strip())
    elif dataset == "hmdb51":
        for f in split_dir.glob("*_test_split*.txt"):
            cls = f.name.rsplit("_test_split", 1)[0]
            names.update(f"{cls}/{ln.split()[0]}" for ln in f.read_text().splitlines() if ln.strip())
    else:
        raise ValueError(dataset)
    return sorted(names)


def n_frames(rel: str) -> int:
    """The stand-in frame count of a video: 1, 2 or 3, fixed by its name."""
    return 1 + zlib.crc32(rel.encode()) % 3


def make_tree(root: Path, videos: list[str], *, frames: bool) -> Path:
    """``root/Class/video.avi`` (1 byte each) or ``root/Class/video/image_0000k.jpg`` (k = 1..n_frames)."""
    for rel in videos:
        p = root / rel
        if frames:
            d = p.with_suffix("")
            d.mkdir(parents=True, exist_ok=True)
            for k in range(1, n_frames(rel) + 1):
                (d / f"{FRAME_PREFIX}{k:05d}.jpg").touch()
        else:
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(b"x")
    return root
