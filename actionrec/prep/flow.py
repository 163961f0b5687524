"""``actionrec prep flow``: optical flow of frame folders, two 8-bit JPEGs per frame pair.

``FRAMES/<class>/<name>/img_*.jpg`` → ``DST/<class>/<name>/flow_x_00001.jpg``, ``flow_y_00001.jpg``
… (pair k = frames k → k+1) plus ``n_flow``; see :mod:`actionrec.data.flow` for the ±20 → [0, 255]
convention. Work is split into chunks of frame pairs, so every core stays busy even on one long
video; a video's folder appears only when all of its chunks are written and verified, under the
output lock (see :mod:`actionrec.prep.common`).
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
from pathlib import Path

from actionrec.errors import UsageError
from actionrec.prep.common import (FLOW_LAYOUT, PrepOutputError, check_distinct, check_int, check_positive,
                                   check_workers, die_with_parent, find_frame_dirs, locked_output, needs_work,
                                   parse_shard, publish_dir, sweep_temps, take_shard, tmp_dir_for)
from actionrec.prep.frames import PrepReport

log = logging.getLogger(__name__)

_FLOW_FN = {}


def _gray(path: Path, short_side: int | None):  # noqa: ANN202
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OSError(f"cannot read image {path}")
    if short_side:
        h, w = img.shape
        s = short_side / min(h, w)
        if s != 1:
            img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return img


def flow_chunk(args: tuple) -> tuple[str, int, str | None]:
    """Compute pairs ``[start, end)`` of one folder into ``tmp``; return (key, pairs done, error)."""
    import cv2

    from actionrec.data.flow import make_flow_fn, quantize_flow

    key, files, tmp, start, end, opts = args
    try:
        cv2.setNumThreads(1)
        fkey = tuple(sorted(opts.items()))
        if fkey not in _FLOW_FN:
            _FLOW_FN[fkey] = make_flow_fn(opts["algo"], tvl1_scales=opts.get("tvl1_scales"),
                                          tvl1_warps=opts.get("tvl1_warps"), dis_preset=opts.get("dis_preset", "medium"))
        fn = _FLOW_FN[fkey]
        q = [cv2.IMWRITE_JPEG_QUALITY, int(opts.get("quality", 95))]
        prev = _gray(Path(files[start]), opts.get("short_side"))
        for k in range(start, end):
            nxt = _gray(Path(files[k + 1]), opts.get("short_side"))
            f = quantize_flow(fn(prev, nxt), bound=opts.get("bound", 20.0))
            for comp, name in ((0, "x"), (1, "y")):
                out = Path(tmp) / f"flow_{name}_{k + 1:05d}.jpg"
                if not cv2.imwrite(str(out), f[..., comp], q):
                    raise OSError(f"cannot write {out}")
            prev = nxt
        return key, end - start, None
    except Exception as e:  # noqa: BLE001 - reported per video
        return key, 0, f"{type(e).__name__}: {e}"


def flow_all(frames: str | Path, dst: str | Path, *, algo: str = "tvl1", short_side: int | None = None,
             bound: float = 20.0, quality: int = 95, tvl1_scales: int | None = None, tvl1_warps: int | None = None,
             dis_preset: str = "medium", workers: int | None = None, shard: str | None = None, chunk: int = 8,
             progress: bool = True) -> PrepReport:
    """Flow for every complete frame folder under ``frames`` (those with ``n_frames``) into ``dst``.

    Holds the output lock of ``dst`` throughout (:class:`~actionrec.errors.LockedError` if taken).
    """
    from actionrec.data.flow import ALGOS

    frames, dst = Path(frames), Path(dst)
    if not frames.is_dir():
        raise FileNotFoundError(f"frames folder not found: {frames}")
    if algo not in ALGOS:
        raise UsageError(f"--algo must be one of {', '.join(ALGOS)}, got {algo!r}")
    check_int("--short-side", short_side, lo=1, hi=8192, none_ok=True)
    check_positive("--bound", bound)
    check_int("--quality", quality, lo=1, hi=100)
    check_int("--tvl1-scales", tvl1_scales, lo=1, hi=20, none_ok=True)
    check_int("--tvl1-warps", tvl1_warps, lo=1, hi=100, none_ok=True)
    check_int("--chunk", chunk, lo=1)
    workers = check_workers(workers)
    check_distinct(frames, dst, "frames")
    opts = {"algo": algo, "short_side": short_side, "bound": float(bound), "quality": quality,
            "tvl1_scales": tvl1_scales, "tvl1_warps": tvl1_warps, "dis_preset": dis_preset}
    shard_ = parse_shard(shard)
    folders = take_shard(find_frame_dirs(frames), shard_)
    with locked_output(dst, purpose="actionrec prep flow", shard=shard_):
        sweep_temps(dst, [dst / rel for rel in folders], everything=shard_[1] == 1)
        return _flow_locked(frames, dst, folders, opts, workers, chunk, progress)


def _flow_locked(frames: Path, dst: Path, folders: list[Path], opts: dict, workers: int, chunk: int,
                 progress: bool) -> PrepReport:
    from tqdm import tqdm

    from actionrec.data.frames import list_frames

    algo = opts["algo"]
    report = PrepReport()
    tasks, pending = [], {}
    for rel in folders:
        final = dst / rel
        try:
            todo = needs_work(final, FLOW_LAYOUT)
        except PrepOutputError as e:
            report.failed[str(rel)] = str(e)
            continue
        if not todo:
            report.skipped += 1
            continue
        files = [str(p) for p in list_frames(frames / rel)]
        if len(files) < 2:
            report.failed[str(rel)] = f"{len(files)} frame(s): flow needs at least 2"
            continue
        tmp = tmp_dir_for(final)
        tmp.mkdir(parents=True)
        n_pairs = len(files) - 1
        pending[str(rel)] = [tmp, final, n_pairs, n_pairs]
        for s in range(0, n_pairs, chunk):
            tasks.append((str(rel), files, str(tmp), s, min(s + chunk, n_pairs), opts))
    log.info("flow (%s): %d folders in this shard, %d to do, %d chunks", algo, len(folders), len(pending), len(tasks))
    total_pairs = sum(v[2] for v in pending.values())
    bar = tqdm(total=total_pairs, desc=f"flow {algo}", unit="pair", disable=not progress or not tasks)

    def record(result: tuple) -> None:
        key, n, err = result
        bar.update(n)
        entry = pending.get(key)
        if entry is None:
            return  # already failed
        if err is not None:
            report.failed[key] = err
            log.warning("flow failed: %s: %s", key, err)
            shutil.rmtree(entry[0], ignore_errors=True)
            pending.pop(key)
            return
        entry[3] -= n
        if entry[3] == 0:
            tmp, final, n_pairs, _ = pending.pop(key)
            try:
                publish_dir(tmp, final, FLOW_LAYOUT, n_pairs)  # writes n_flow, the completion marker
            except (PrepOutputError, OSError) as e:
                report.failed[key] = str(e)
                log.warning("flow failed: %s: %s", key, e)
                shutil.rmtree(tmp, ignore_errors=True)
                return
            report.done.append(key)

    try:
        if workers <= 1 or len(tasks) <= 1:
            for t in tasks:
                record(flow_chunk(t))
        else:
            with multiprocessing.get_context().Pool(min(workers, len(tasks)), initializer=die_with_parent) as pool:
                for r in pool.imap_unordered(flow_chunk, tasks):
                    record(r)
    finally:
        bar.close()
        for tmp, *_ in pending.values():
            shutil.rmtree(tmp, ignore_errors=True)
    return report
