"""``actionrec prep flow``: optical flow of frame folders or videos, two 8-bit JPEGs per frame pair.

``SRC/<class>/<name>/img_*.jpg`` (frame folders: ours with ``n_frames``, or consecutive ``img_*.jpg``
from another tool, numbered from 0 or 1) or, when ``SRC`` has none, ``SRC/<class>/<name>.<ext>``
(videos, decoded once, no frames written) → ``DST/<class>/<name>/flow_x_00001.jpg``,
``flow_y_00001.jpg`` … (pair k = frames k → k+1) plus ``n_flow``; see :mod:`actionrec.data.flow` for
the ±20 → [0, 255] convention and the algorithms. One-pair-at-a-time algorithms (OpenCV's) run in a
pool of single-threaded processes over chunks of frame pairs, so every core stays busy even on one
long frame folder; batched ones (``tvl1-torch``) run in batches on a GPU from this process, or on the
CPU in single-threaded worker processes (:mod:`actionrec.prep.flow_batched`). A video's folder appears
only when all of its pairs are written and verified, under the output lock (see
:mod:`actionrec.prep.common`).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import multiprocessing
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from actionrec.distributed.cluster import RayOptions
from actionrec.errors import UsageError
from actionrec.prep.common import (FLOW_LAYOUT, PrepOutputError, check_consecutive, check_distinct, check_int, check_positive,
                                   check_workers, pool_init, find_files, find_frame_dirs, locked_output,
                                   needs_work, parse_shard, publish_dir, sweep_temps, take_shard, tmp_dir_for)
from actionrec.prep.frames import PrepReport

log = logging.getLogger(__name__)

_FLOW_FN = {}


def _resize_short(img: np.ndarray, short_side: int | None) -> np.ndarray:
    import cv2

    if short_side:
        h, w = img.shape
        s = short_side / min(h, w)
        if s != 1:
            img = cv2.resize(img, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return img


def _gray(path: Path, short_side: int | None) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if img is None:
        raise OSError(f"cannot read image {path}")
    return _resize_short(img, short_side)


def read_gray(source: list[str] | str, start: int, stop: int | None, short_side: int | None) -> Iterator[np.ndarray]:
    """Grayscale frames ``start .. stop - 1`` (``stop`` None: to the end) of a frame list or a video file
    (decoded once, sequentially), short side resized; uint8 (H, W) each."""
    if isinstance(source, list):
        for f in source[start:stop]:
            yield _gray(Path(f), short_side)
        return
    from actionrec.data.flow import to_gray
    from actionrec.data.video import VideoReader

    with VideoReader(source) as reader:
        for k, rgb in enumerate(reader.iter_frames()):
            if stop is not None and k >= stop:
                break
            if k >= start:
                yield _resize_short(to_gray(rgb), short_side)


def write_pair(tmp: Path, k: int, flow: np.ndarray, *, bound: float, quality: int) -> None:
    """Store the flow (H, W, 2) of pair ``k`` (0-based) as ``flow_x_/flow_y_{k + 1:05d}.jpg`` in ``tmp``."""
    import cv2

    from actionrec.data.flow import quantize_flow

    q = quantize_flow(flow, bound=bound)
    for comp, name in ((0, "x"), (1, "y")):
        out = Path(tmp) / f"flow_{name}_{k + 1:05d}.jpg"
        if not cv2.imwrite(str(out), np.ascontiguousarray(q[..., comp]), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]):
            raise OSError(f"cannot write {out}")


def _read_task(task: tuple) -> list[np.ndarray]:
    """All grayscale frames of a task ``(key, source, tmp, start, end, opts)``: pairs start..end need end + 1."""
    _, source, _, start, end, opts = task
    return list(read_gray(source, start, None if end is None else end + 1, opts.get("short_side")))


def flow_options(opts: dict):  # noqa: ANN201 - FlowOptions, imported lazily
    from actionrec.data.flow import FlowOptions

    return FlowOptions(tvl1_scales=opts.get("tvl1_scales"), tvl1_warps=opts.get("tvl1_warps"),
                       dis_preset=opts.get("dis_preset", "medium"), device=opts.get("device") or "cpu")


def flow_chunk(args: tuple) -> tuple[str, int, str | None]:
    """Compute pairs ``[start, end)`` of one source into ``tmp`` one at a time; return (key, pairs done, error)."""
    from actionrec.data.flow import make_flow_fn

    key, source, tmp, start, end, opts = args
    try:
        fkey = tuple(sorted(opts.items()))
        if fkey not in _FLOW_FN:
            _FLOW_FN[fkey] = make_flow_fn(opts["algo"], flow_options(opts))
        fn = _FLOW_FN[fkey]
        done, prev = 0, None
        for k, nxt in enumerate(read_gray(source, start, None if end is None else end + 1, opts.get("short_side"))):
            if prev is not None:
                write_pair(Path(tmp), start + k - 1, fn(prev[None], nxt[None])[0], bound=opts["bound"],
                           quality=opts["quality"])
                done += 1
            prev = nxt
        if done == 0:
            raise UsageError("fewer than 2 frames: flow needs at least 2")
        return key, done, None
    except Exception as e:  # noqa: BLE001 - reported per video
        return key, 0, f"{type(e).__name__}: {e}"


def find_flow_sources(src: Path) -> list[tuple[Path, str | None]]:
    """(output folder relative to DST, video path) for every frame folder under ``src`` (video path None) or,
    when there is none, for every video file."""
    from actionrec.data.video import VIDEO_EXTENSIONS

    dirs = find_frame_dirs(src)
    if dirs:
        return [(rel, None) for rel in dirs]
    videos = [(rel.with_suffix(""), str(src / rel)) for rel in find_files(src, VIDEO_EXTENSIONS)]
    if not videos:
        raise UsageError(f"{src}: nothing to compute flow for: no frame folders (img_00001.jpg, image_00001.jpg, "
                         f"00001.jpg ...; with or without n_frames) and no videos ({', '.join(sorted(VIDEO_EXTENSIONS))}) "
                         f"under it")
    return videos


def flow_all(frames: str | Path, dst: str | Path, *, algo: str = "tvl1", short_side: int | None = None,
             bound: float = 20.0, quality: int = 95, tvl1_scales: int | None = None, tvl1_warps: int | None = None,
             dis_preset: str = "medium", workers: int | None = None, shard: str | None = None, chunk: int = 8,
             device: str | None = None, threads: int | None = None, batch_size: int = 16,
             progress: bool = True, ray: RayOptions | None = None) -> PrepReport:
    """Flow for every frame folder under ``frames`` (see :func:`find_flow_sources`) or, when there is
    none, every video under it, into ``dst``.

    Batched algorithms run on ``device`` (default: ``cuda:LOCAL_RANK`` when CUDA is available, else
    the CPU) in batches of ``batch_size`` same-size pairs, with ``workers`` threads reading and writing
    images; on a GPU this process computes (torch using ``threads`` threads, default the available
    cores), on the CPU ``workers`` single-threaded processes share each batch. The others run in
    ``workers`` single-threaded processes over chunks of ``chunk`` pairs.
    ``ray``: the chunks as Ray tasks on a cluster instead (the OpenCV algorithms; see :mod:`actionrec.distributed.tasks`).
    Holds the output lock of ``dst`` throughout (:class:`~actionrec.errors.LockedError` if taken).
    """
    from actionrec.data.flow import FLOW_ALGORITHMS

    frames, dst = Path(frames), Path(dst)
    if not frames.is_dir():
        raise FileNotFoundError(f"frames folder not found: {frames}")
    FLOW_ALGORITHMS.get(algo)  # an unknown name: one line with the close matches
    check_int("--short-side", short_side, lo=1, hi=8192, none_ok=True)
    check_positive("--bound", bound)
    check_int("--quality", quality, lo=1, hi=100)
    check_int("--tvl1-scales", tvl1_scales, lo=1, hi=20, none_ok=True)
    check_int("--tvl1-warps", tvl1_warps, lo=1, hi=100, none_ok=True)
    check_int("--chunk", chunk, lo=1)
    check_int("--batch-size", batch_size, lo=1)
    workers = check_workers(workers)
    check_distinct(frames, dst, "frames")
    batched = FLOW_ALGORITHMS.get(algo).batched
    if ray is not None and batched:
        raise UsageError(f"--engine ray runs the chunked algorithms ({', '.join(n for n, a in FLOW_ALGORITHMS.items() if not a.batched)}); "
                         f"{algo} batches frame pairs in one process per GPU: use --shard for it")
    opts = {"algo": algo, "short_side": short_side, "bound": float(bound), "quality": quality,
            "tvl1_scales": tvl1_scales, "tvl1_warps": tvl1_warps, "dis_preset": dis_preset,
            "device": _flow_device(device) if batched else _cpu_only(device, algo)}
    if batched:
        from actionrec.runtime import resolve_runtime

        resolve_runtime(device=opts["device"], threads=threads).apply()  # this process's torch threads (GPU work)
    shard_ = parse_shard(shard)
    every = find_flow_sources(frames)
    sources = take_shard(every, shard_)
    if not sources:  # found some, but this shard has none: not an error in a job of many shards
        log.warning("%s: %d source(s), none of them in shard %d/%d: nothing to do here", frames, len(every), *shard_)
    with locked_output(dst, purpose="actionrec prep flow", shard=shard_):
        sweep_temps(dst, [dst / rel for rel, _ in sources], everything=shard_[1] == 1)
        return _flow_locked(frames, dst, sources, opts, workers, chunk, batch_size, progress, ray)


def _plan(frames: Path, dst: Path, sources: list[tuple[Path, str | None]], opts: dict, chunk: int,
          report: PrepReport) -> tuple[list[tuple], dict[str, list]]:
    """The tasks ``(key, source, tmp, start, end, opts)`` of the sources still to do (their temporary folders
    made), and per source ``[tmp, final, pairs written, tasks left]``; skipped and failed ones go to ``report``."""
    from actionrec.data.frames import list_frames

    tasks, pending = [], {}
    for rel, video in sources:
        final = dst / rel
        try:
            todo = needs_work(final, FLOW_LAYOUT)
        except PrepOutputError as e:
            report.failed[str(rel)] = str(e)
            continue
        if not todo:
            report.skipped += 1
            continue
        if video is None:
            paths = list_frames(frames / rel)
            gap = check_consecutive(frames / rel, paths)
            if gap is not None:
                report.failed[str(rel)] = f"{frames / rel}: {gap}"
                continue
            files = [str(p) for p in paths]
            if len(files) < 2:
                report.failed[str(rel)] = f"{frames / rel}: {len(files)} frame(s): flow needs at least 2"
                continue
            n_pairs = len(files) - 1
            chunks = [(files, s, min(s + chunk, n_pairs)) for s in range(0, n_pairs, chunk)]
        else:
            chunks = [(video, 0, None)]  # a video is decoded once, from its start: one task
        tmp = tmp_dir_for(final)
        tmp.mkdir(parents=True)
        pending[str(rel)] = [tmp, final, 0, len(chunks)]
        tasks += [(str(rel), source, str(tmp), s, e, opts) for source, s, e in chunks]
    return tasks, pending


def _flow_locked(frames: Path, dst: Path, sources: list[tuple[Path, str | None]], opts: dict, workers: int,
                 chunk: int, batch_size: int, progress: bool, ray: RayOptions | None = None) -> PrepReport:
    from tqdm import tqdm

    algo = opts["algo"]
    report = PrepReport()
    tasks, pending = _plan(frames, dst, sources, opts, chunk, report)
    log.info("flow (%s): %d sources in this shard, %d to do, %d tasks", algo, len(sources), len(pending), len(tasks))
    total_pairs = None if any(v is not None for _, v in sources) else sum(t[4] - t[3] for t in tasks)
    bar = None

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
        entry[2] += n
        entry[3] -= 1
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
        with _computer(opts, workers, len(tasks), total_pairs, ray) as run:  # worker processes first, then this process's threads
            bar = tqdm(total=total_pairs, desc=f"flow {algo}", unit="pair", disable=not progress or not tasks)
            for r in run(tasks, batch_size, workers):
                record(r)
    finally:
        if bar is not None:
            bar.close()
        for tmp, *_ in pending.values():
            shutil.rmtree(tmp, ignore_errors=True)
    return report


@contextlib.contextmanager
def _computer(opts: dict, workers: int, n_tasks: int, n_pairs: int | None,
              ray: RayOptions | None = None) -> Iterator[Callable[[list, int, int], Iterator[tuple]]]:
    """``run(tasks, batch_size, workers)`` → (key, pairs done, error) per task, for the algorithm of ``opts``:
    batched ones through :mod:`actionrec.prep.flow_batched`, the others chunk by chunk in a pool of
    single-threaded processes (or in this process, made single-threaded, for one worker or one task)."""
    from actionrec.data.flow import FLOW_ALGORITHMS

    if n_tasks == 0:
        yield lambda *_: iter(())
    elif ray is not None:
        from actionrec.distributed.cluster import connect
        from actionrec.distributed.tasks import map_unordered

        with connect(ray):
            yield lambda tasks, *_: map_unordered(flow_chunk, tasks, ray)
    elif FLOW_ALGORITHMS.get(opts["algo"]).batched:
        from actionrec.prep.flow_batched import batch_computer, run_batched

        write = functools.partial(write_pair, bound=opts["bound"], quality=opts["quality"])
        with batch_computer(opts["algo"], flow_options(opts), workers=min(workers, n_pairs or workers)) as comp:
            yield lambda tasks, batch_size, threads: run_batched(tasks, comp, read=_read_task, write=write,
                                                                 batch_size=batch_size, threads=threads)
    elif workers <= 1 or n_tasks <= 1:
        from actionrec.runtime import worker_init

        worker_init()  # this process computes alone: one thread, as a pool worker would
        yield lambda tasks, *_: map(flow_chunk, tasks)
    else:
        with multiprocessing.get_context().Pool(min(workers, n_tasks), initializer=pool_init) as pool:
            yield lambda tasks, *_: pool.imap_unordered(flow_chunk, tasks)


def _flow_device(device: str | None) -> str:
    """``--device`` of a batched algorithm: ``cuda`` means ``cuda:LOCAL_RANK`` (one GPU per torchrun process)."""
    import os

    from actionrec.runtime import resolve_device

    try:
        return resolve_device(device or "auto", local_rank=int(os.environ.get("LOCAL_RANK", "0")))
    except UsageError as e:
        raise UsageError(f"--device: {e}") from None


def _cpu_only(device: str | None, algo: str) -> str:
    if device not in (None, "cpu"):
        raise UsageError(f"--device {device}: {algo} runs on the CPU only; tvl1-torch runs on a GPU")
    return "cpu"
