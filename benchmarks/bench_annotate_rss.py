"""Peak memory of ``actionrec predict MODEL VIDEO --out x.mp4`` on a short and a long 720p video.

The annotated video is drawn and encoded frame by frame, and prediction decodes only the sampled
clips, so peak RSS should not grow with the length of the video. This generates two 1280×720 H.264
videos (moving pattern, ``--fps`` frames/s) of ``--minutes`` (default 1 and 10), runs the CLI on each
in a fresh process with an R(2+1)D-18 checkpoint (random weights, Kinetics-400 head) and reports
each process's peak RSS (``wait4`` ru_maxrss).

    python benchmarks/bench_annotate_rss.py                  # 1 and 10 minutes at 10 frames/s
    python benchmarks/bench_annotate_rss.py --fps 25 --json rss.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_video(path: Path, *, seconds: float, fps: int, width: int = 1280, height: int = 720) -> Path:
    """A moving colour pattern, H.264 (ultrafast), ``seconds`` long."""
    import av

    yy, xx = np.mgrid[0:height, 0:width]
    base = ((xx // 40 + yy // 40) % 2 * 120).astype(np.uint8)
    with av.open(str(path), "w", format="mp4") as c:
        s = c.add_stream("libx264", rate=fps, options={"preset": "ultrafast", "crf": "28"})
        s.width, s.height, s.pix_fmt = width, height, "yuv420p"
        for i in range(int(seconds * fps)):
            shift = (i * 8) % width
            g = np.roll(base, shift, axis=1)
            frame = np.stack([g, np.roll(g, i % height, axis=0), np.full_like(g, (i * 3) % 256)], axis=-1)
            for p in s.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    return path


def peak_rss_mb(cmd: list[str]) -> tuple[float, float, int]:
    """(peak RSS in MiB, seconds, exit code) of ``cmd`` run as a child process."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.returncode:
        print(err, file=sys.stderr)
    return usage.ru_maxrss / 1024, time.perf_counter() - t0, proc.returncode


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, nargs="+", default=[1, 10])
    ap.add_argument("--fps", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", help="keep the generated files in this folder")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args()

    import torch

    import actionrec

    tmp = Path(args.keep or tempfile.mkdtemp(prefix="bench_rss_"))
    tmp.mkdir(parents=True, exist_ok=True)
    try:
        torch.manual_seed(0)
        ckpt = tmp / "r2plus1d_18.safetensors"
        if not ckpt.exists():
            actionrec.save_model(actionrec.create_model("r2plus1d_18", num_classes=400), ckpt)
        rows = []
        for minutes in args.minutes:
            video = tmp / f"720p_{minutes:g}min.mp4"
            if not video.exists():
                t0 = time.perf_counter()
                make_video(video, seconds=minutes * 60, fps=args.fps)
                print(f"generated {video.name} ({video.stat().st_size / 1e6:.1f} MB) in {time.perf_counter() - t0:.0f} s", flush=True)
            out = tmp / f"annotated_{minutes:g}min.mp4"
            cmd = [sys.executable, "-m", "actionrec.cli", "predict", str(ckpt), str(video), "--out", str(out),
                   "--threads", str(args.threads)]
            rss, secs, code = peak_rss_mb(cmd)
            rows.append({"minutes": minutes, "frames": int(minutes * 60 * args.fps), "peak_rss_mb": round(rss, 1),
                         "seconds": round(secs, 1), "exit_code": code,
                         "output_mb": round(out.stat().st_size / 1e6, 1) if out.exists() else None})
            print(json.dumps(rows[-1]), flush=True)
        peaks = [r["peak_rss_mb"] for r in rows]
        result = {"rows": rows, "fps": args.fps, "size": "1280x720", "arch": "r2plus1d_18",
                  "max_over_min": round(max(peaks) / min(peaks), 3), "max_peak_mb": max(peaks),
                  "loadavg_1m": round(os.getloadavg()[0], 2)}
        print(json.dumps(result, indent=1))
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
        ok = all(r["exit_code"] == 0 for r in rows) and result["max_over_min"] <= 1.10 and result["max_peak_mb"] <= 1024
        return 0 if ok else 1
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
