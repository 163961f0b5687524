"""Load test of ``actionrec serve`` on loopback: latency, throughput vs batch prediction, overload, memory.

    nice -n 10 python benchmarks/bench_serve.py                        # about 3 minutes on 2 cores
    nice -n 10 python benchmarks/bench_serve.py --json serve.json --duration 60 --requests 400

One run, one model (a random R(2+1)D-18 with reduced widths, saved as a checkpoint), one backend:

1. ``batch``: in-process ``Predictor.predict_many`` over the request videos (the reference throughput;
   ``--workers`` decoding processes, batches of ``--max-batch``);
2. ``c8``: 8 concurrent clients against the server (throughput compared with ``batch``; the two are
   interleaved over ``--rounds`` rounds and the ratio is the median of per-round ratios);
3. ``c16``: 16 concurrent clients, at most ``--requests`` requests or ``--duration`` seconds: statuses,
   p50/p99 latency, throughput, the server's RSS over the run;
4. ``overload``: ``--overload-clients`` clients against ``--max-queue`` request slots: only 200 and
   503 (with ``Retry-After``) are allowed.

On a busy machine the wall-clock ratio favours whichever side runs more threads (the scheduler shares
the cores by thread), so each round also reports throughput per CPU second (server process vs this
process and its decoding workers). Every request asks for ``clips=1`` (one clip per video) so that the server and the batch reference do
the same work. Only 127.0.0.1 is ever contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
VIDEOS = ["short.mp4", "xvid.avi", "h264.mp4", "rot0.mov", "rot90.mov"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class ServerProcess:
    def __init__(self, ckpt: Path, args: argparse.Namespace, log: Path) -> None:
        import httpx

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "actionrec.cli", "-q", "serve", str(ckpt), "--port", str(self.port),
               "--backend", args.backend, "--threads", str(args.threads), "--max-batch", str(args.max_batch),
               "--max-wait-ms", str(args.max_wait_ms), "--decode-workers", str(args.workers), "--max-queue", str(args.max_queue)]
        self.proc = subprocess.Popen(cmd, stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)  # noqa: SIM115
        deadline = time.monotonic() + 300
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited:\n{log.read_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("server not ready after 300 s")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(15)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    """CPU time of this process and its reaped children (the predict_many decoding workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def load(url: str, bodies: list[tuple[str, bytes]], *, clients: int, requests: int, duration: float,
         pid: int | None = None) -> dict:
    """``clients`` closed-loop clients posting ``bodies`` in turn until ``requests`` were sent or ``duration`` passed."""
    import httpx

    lock = threading.Lock()
    sent = 0
    results: list[tuple[int, float, bool]] = []  # (status, seconds, has Retry-After)
    rss: list[float] = []
    stop = time.monotonic() + duration
    t0 = time.perf_counter()

    def client(k: int) -> None:
        nonlocal sent
        with httpx.Client(base_url=url, timeout=300) as c:
            while True:
                with lock:
                    if sent >= requests or time.monotonic() > stop:
                        return
                    name, body = bodies[sent % len(bodies)]
                    sent += 1
                t = time.perf_counter()
                try:
                    r = c.post("/v1/predict", params={"clips": 1}, files={"file": (name, body)})
                    status, retry = r.status_code, "retry-after" in r.headers
                except httpx.HTTPError:
                    status, retry = 0, False
                with lock:
                    results.append((status, time.perf_counter() - t, retry))
                if status == 503:
                    time.sleep(0.05)

    def sample() -> None:
        while any(th.is_alive() for th in threads):
            rss.append(rss_mb(pid))
            time.sleep(0.5)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    cpu0 = cpu_seconds(pid) if pid else 0.0
    for th in threads:
        th.start()
    if pid:
        sampler = threading.Thread(target=sample)
        sampler.start()
    for th in threads:
        th.join()
    if pid:
        sampler.join()
    wall = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0 if pid else float("nan")
    ok = sorted(s for st, s, _ in results if st == 200)
    statuses = Counter(st for st, _, _ in results)
    out = {
        "clients": clients, "requests": len(results), "seconds": round(wall, 2), "statuses": dict(sorted(statuses.items())),
        "throughput_rps": round(len(ok) / wall, 3),
        "server_cpu_s": round(cpu, 1), "per_cpu_second": round(len(ok) / cpu, 3) if cpu else None,
        "p50_s": round(ok[len(ok) // 2], 3) if ok else None,
        "p99_s": round(ok[min(len(ok) - 1, int(0.99 * len(ok)))], 3) if ok else None,
        "503_without_retry_after": sum(1 for st, _, ra in results if st == 503 and not ra),
    }
    if rss:
        q = max(1, len(rss) // 4)
        out["rss_mb"] = {"first_quarter_median": round(statistics.median(rss[:q]), 1),
                         "second_quarter_median": round(statistics.median(rss[q : 2 * q]), 1),
                         "last_quarter_median": round(statistics.median(rss[-q:]), 1), "max": round(max(rss), 1),
                         "series_every_5s": [round(v) for v in rss[::10]]}
    return out


def batch_reference(ckpt: Path, files: list[Path], args: argparse.Namespace) -> dict:
    """Videos per second of ``Predictor.predict_many``: same model, backend, threads, clips and batch size."""
    import actionrec

    p = actionrec.Predictor(ckpt, backend=args.backend, threads=args.threads, num_clips=1)
    list(p.predict_many(files, workers=args.workers, batch_size=args.max_batch))  # warm-up
    videos = files * max(1, round(args.batch_videos / len(files)))
    t, cpu0 = time.perf_counter(), own_cpu_seconds()
    preds = list(p.predict_many(videos, workers=args.workers, batch_size=args.max_batch))
    wall, cpu = time.perf_counter() - t, own_cpu_seconds() - cpu0
    assert not any(pr.error for pr in preds), [pr.error for pr in preds if pr.error]
    return {"videos": len(preds), "seconds": round(wall, 2), "throughput_vps": round(len(preds) / wall, 3),
            "cpu_s": round(cpu, 1), "per_cpu_second": round(len(preds) / cpu, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arch", default="r2plus1d_18")
    ap.add_argument("--widths", default="16,32,64,128", help="channel widths of the four stages")
    ap.add_argument("--backend", default="torch", help="a backend of the Predictor registry (torch, onnxruntime, ...)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--workers", type=int, default=2, help="decode threads (server) / workers (batch)")
    ap.add_argument("--max-batch", type=int, default=8)
    ap.add_argument("--max-wait-ms", type=float, default=20)
    ap.add_argument("--max-queue", type=int, default=24, help="server request slots (the overload phase exceeds them)")
    ap.add_argument("--rounds", type=int, default=2, help="interleaved batch / c8 rounds")
    ap.add_argument("--batch-videos", type=int, default=40, help="videos per batch-reference round")
    ap.add_argument("--c8-requests", type=int, default=80)
    ap.add_argument("--requests", type=int, default=300, help="most requests of the c16 phase")
    ap.add_argument("--duration", type=float, default=60, help="most seconds of the c16 and overload phases")
    ap.add_argument("--overload-clients", type=int, default=48)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    import actionrec

    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        model = actionrec.create_model(args.arch, num_classes=101, widths=tuple(int(w) for w in args.widths.split(",")))
        ckpt = actionrec.save_model(model, tmp / "model.safetensors")
        files = [DATA / v for v in VIDEOS]
        bodies = [(f.name, f.read_bytes()) for f in files]
        report: dict = {"arch": args.arch, "widths": args.widths, "backend": args.backend, "threads": args.threads,
                        "max_batch": args.max_batch, "max_wait_ms": args.max_wait_ms, "videos": VIDEOS,
                        "load_before": os.getloadavg(), "rounds": []}
        server = ServerProcess(ckpt, args, tmp / "server.log")
        try:
            load(server.url, bodies, clients=2, requests=10, duration=60)  # warm the server's caches
            for r in range(args.rounds):
                ref = batch_reference(ckpt, files, args)
                c8 = load(server.url, bodies, clients=8, requests=args.c8_requests, duration=args.duration, pid=server.proc.pid)
                ratio = c8["throughput_rps"] / ref["throughput_vps"]
                cpu_ratio = c8["per_cpu_second"] / ref["per_cpu_second"]
                report["rounds"].append({"batch": ref, "c8": c8, "ratio": round(ratio, 3), "cpu_ratio": round(cpu_ratio, 3)})
                print(f"round {r}: batch {ref['throughput_vps']:.2f} videos/s ({ref['per_cpu_second']:.3f}/CPU-s), "
                      f"server c8 {c8['throughput_rps']:.2f} req/s ({c8['per_cpu_second']:.3f}/CPU-s; p50 {c8['p50_s']} s, "
                      f"p99 {c8['p99_s']} s) -> {100 * ratio:.0f}% of the throughput, {100 * cpu_ratio:.0f}% per CPU second", flush=True)
            report["c8_vs_batch_median"] = round(statistics.median(r["ratio"] for r in report["rounds"]), 3)
            report["c8_vs_batch_per_cpu_median"] = round(statistics.median(r["cpu_ratio"] for r in report["rounds"]), 3)
            report["c16"] = load(server.url, bodies, clients=16, requests=args.requests, duration=args.duration, pid=server.proc.pid)
            print("c16:", json.dumps(report["c16"]), flush=True)
            report["overload"] = load(server.url, bodies, clients=args.overload_clients, requests=args.requests,
                                      duration=args.duration / 2, pid=server.proc.pid)
            print("overload:", json.dumps(report["overload"]), flush=True)
        finally:
            server.stop()
        report["load_after"] = os.getloadavg()
    bad = {k: v for ph in ("c16", "overload") for k, v in report[ph]["statuses"].items() if k not in (200, 503)}
    report["unexpected_statuses"] = bad
    print(f"c8 / batch throughput: {100 * report['c8_vs_batch_median']:.0f}%, per CPU second "
          f"{100 * report['c8_vs_batch_per_cpu_median']:.0f}% (medians of {args.rounds} rounds); "
          f"statuses other than 200/503: {bad or 'none'}")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
