"""A real two-node Ray cluster on 127.0.0.1 (Ray's own cluster utility: a head and a second node, 1 CPU each)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

DATA = Path(__file__).parents[1] / "data"


def skip_without_ray() -> None:
    """Skip unless the ray extra is installed, without importing Ray into the test process (see ray_cluster)."""
    import importlib.util

    for mod in ("ray", "pyarrow"):
        if importlib.util.find_spec(mod) is None:
            pytest.skip(f"{mod} is not installed: the Ray tests need the optional extra (pip install 'actionrec[ray]')",
                        allow_module_level=True)


CLUSTER = """
import sys
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, connect=False,
                  head_node_args={"num_cpus": 1, "include_dashboard": False, "object_store_memory": 200 * 2**20})
cluster.add_node(num_cpus=1, object_store_memory=200 * 2**20)
cluster.wait_for_nodes()
print(cluster.address, flush=True)
sys.stdin.read()  # until the test closes stdin
cluster.shutdown()
"""


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[str]:
    """The address of a head node and a second node (separate raylets), bounded to 1 CPU each; stopped after
    the module, so that the rest of the suite does not share the machine with it.

    The cluster is held by a helper process: Ray's node code installs a SIGTERM handler in the process that
    starts it (and leaves it there), which forked multiprocessing workers of later tests would inherit, so that
    ``Pool.terminate`` could no longer stop them."""
    holder = subprocess.Popen([sys.executable, "-c", CLUSTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        address = holder.stdout.readline().strip()
        if holder.poll() is not None or not address:
            pytest.fail(f"the Ray cluster did not start (exit {holder.poll()})")
        yield address
    finally:
        holder.stdin.close()
        try:
            holder.wait(timeout=120)
        except subprocess.TimeoutExpired:
            holder.kill()


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
