"""A real two-node Ray cluster on 127.0.0.1 (Ray's own cluster utility: a head and a second node, 1 CPU each)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parents[1] / "data"


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """The address of a head node and a second node (separate raylets), bounded to 1 CPU each; stopped after
    the module, so that the rest of the suite does not share the machine with it."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, connect=False,
                      head_node_args={"num_cpus": 1, "include_dashboard": False, "object_store_memory": 200 * 2**20})
    cluster.add_node(num_cpus=1, object_store_memory=200 * 2**20)
    cluster.wait_for_nodes()
    try:
        yield cluster.address
    finally:
        cluster.shutdown()


@pytest.fixture(scope="session")
def ray_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from actionrec.checkpoint import save_model
    from tests.deploy.conftest import tiny_model

    path = tmp_path_factory.mktemp("ray_model") / "m.safetensors"
    save_model(tiny_model("r2plus1d_18", clip_len=8, size=32), path)
    return path


@pytest.fixture(scope="session")
def ray_videos(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Real clips of tests/data (several codecs and containers, a corrupt one), copied under distinct names."""
    root = tmp_path_factory.mktemp("ray_videos")
    sources = ["short.mp4", "h264.mp4", "xvid.avi", "rot90.mov", "cricket_rgb.gif", "corrupt.mp4"]
    out = []
    for k in range(3):
        for name in sources:
            dst = root / f"c{k}" / f"{Path(name).stem}_{k}{Path(name).suffix}"
            dst.parent.mkdir(exist_ok=True)
            shutil.copy(DATA / name, dst)
            out.append(str(dst))
    (root / "missing.mp4").write_bytes(b"")  # an empty file: an error row
    return [*out, str(root / "missing.mp4")]
