"""``predict --engine ray`` against the local engine: throughput ratio, start-up, and 1 → 2 workers.

One process drives everything on this machine: a real Ray cluster of ``--nodes`` raylets (Ray's
``cluster_utils``, 1 CPU each, as ``ray start`` would on separate machines) and the local engine (one
:class:`actionrec.Predictor` using every core, decoding in a worker process: what ``actionrec predict`` runs).

* **start-up**: a Ray run over one video (actors started, the model loaded in each, the first row back), after
  one warm-up run (Ray's first run on a fresh cluster also starts its worker processes: reported apart).
* **ratio rounds** (interleaved, medians): the local engine over ``--videos`` real clips (copies of tests/data's,
  ``--clips`` clips each), then the Ray engine with one worker per node over the same videos. Ray's throughput is
  reported with and without its start-up (``videos / (wall − start-up)``): the issue's target (≥ 0.9× local) is
  for collections large enough to amortise start-up.
* **scaling**: the Ray engine with 1 worker, then with one per node (2), same videos.

The model is an X3D-XS with random weights (the CPU model; figures are throughput, not accuracy).

    python benchmarks/bench_ray.py                        # 36 videos, 3 rounds
    python benchmarks/bench_ray.py --videos 96 --rounds 2 --json bench_ray.json
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_flow import host_cpu  # noqa: E402  - lscpu's model name

DATA = Path(__file__).resolve().parents[1] / "tests" / "data"


def make_inputs(root: Path, n: int) -> tuple[Path, list[str]]:
    from actionrec.checkpoint import save_model
    from actionrec.factory import create_model

    model = root / "x3d_xs.safetensors"
    save_model(create_model("x3d_xs", num_classes=400), model)
    sources = ["short.mp4", "h264.mp4", "xvid.avi"]
    videos = []
    for i in range(n):
        src = DATA / sources[i % len(sources)]
        dst = root / "videos" / f"{i:04d}{src.suffix}"
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(src, dst)
        videos.append(str(dst))
    return model, videos


def run_local(model: Path, videos: list[str], clips: int) -> float:
    from actionrec.inference import Predictor

    t0 = time.perf_counter()
    p = Predictor(str(model), num_clips=clips)
    rows = list(p.predict_many(videos, workers=1))
    assert len(rows) == len(videos) and not any(r.error for r in rows)
    return time.perf_counter() - t0


def run_ray(model: Path, videos: list[str], clips: int, workers: int) -> float:
    import ray

    import actionrec.distributed as ad

    t0 = time.perf_counter()
    ds = ray.data.from_items([{"video": v} for v in videos], override_num_blocks=len(videos))
    rows = ad.predict_dataset(ds, str(model), num_clips=clips, options=ad.RayOptions(workers=(workers, workers))).take_all()
    assert len(rows) == len(videos) and not any(r["error"] for r in rows)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--videos", type=int, default=36)
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--nodes", type=int, default=2)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    import ray
    from ray.cluster_utils import Cluster

    ray.data.DataContext.get_current().enable_progress_bars = False
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as d:
        model, videos = make_inputs(Path(d), args.videos)
        cluster = Cluster(initialize_head=True, connect=False, head_node_args={"num_cpus": 1, "include_dashboard": False})
        for _ in range(args.nodes - 1):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, logging_level="ERROR")
        try:
            cold = run_ray(model, videos[:1], args.clips, args.nodes)  # worker processes started, imports cached
            startup, local, ray_all, ray_one = [], [], [], []
            for r in range(args.rounds):
                startup.append(run_ray(model, videos[:1], args.clips, args.nodes))
                local.append(run_local(model, videos, args.clips))
                ray_all.append(run_ray(model, videos, args.clips, args.nodes))
                ray_one.append(run_ray(model, videos, args.clips, 1))
                print(f"round {r + 1}: local {local[-1]:.1f} s, ray ×{args.nodes} {ray_all[-1]:.1f} s, ray ×1 {ray_one[-1]:.1f} s",
                      flush=True)
        finally:
            ray.shutdown()
            cluster.shutdown()
    n, med = args.videos, statistics.median
    s = med(startup)
    res = {
        "host": host_cpu(), "videos": n, "clips_per_video": args.clips, "rounds": args.rounds, "nodes": args.nodes,
        "startup_s": round(s, 2), "first_run_on_a_fresh_cluster_s": round(cold, 2),
        "local_videos_per_s": round(n / med(local), 3),
        "ray_videos_per_s": round(n / med(ray_all), 3),
        "ray_videos_per_s_after_startup": round(n / max(1e-9, med(ray_all) - s), 3),
        "ray_1_worker_videos_per_s_after_startup": round(n / max(1e-9, med(ray_one) - s), 3),
    }
    res["ratio_ray_to_local"] = round(res["ray_videos_per_s"] / res["local_videos_per_s"], 3)
    res["ratio_ray_to_local_after_startup"] = round(res["ray_videos_per_s_after_startup"] / res["local_videos_per_s"], 3)
    res["scaling_2_vs_1_worker"] = round(med(ray_one) / med(ray_all), 3)
    print(f"\nhost: {res['host']}; X3D-XS (random weights), {n} videos × {args.clips} clips, medians of {args.rounds} rounds")
    print(f"local engine (all cores, 1 decode process): {res['local_videos_per_s']} videos/s")
    print(f"Ray, {args.nodes} nodes × 1 worker: {res['ray_videos_per_s']} videos/s "
          f"({res['ratio_ray_to_local']}× local); start-up {res['startup_s']} s (first run on a fresh cluster {cold:.1f} s); "
          f"after start-up {res['ray_videos_per_s_after_startup']} videos/s ({res['ratio_ray_to_local_after_startup']}× local)")
    print(f"scaling: 1 → {args.nodes} workers: {res['scaling_2_vs_1_worker']}× (wall, start-up included)")
    if args.json:
        args.json.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
