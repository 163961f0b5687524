"""``actionrec prep frames``: decode videos to JPEG frame folders (``img_00001.jpg`` …).

Each video ``SRC/<class>/<name>.<ext>`` becomes ``DST/<class>/<name>/`` holding the frames
(short side resized), ``n_frames`` and ``fps``. The folder appears only when complete and verified
(see :mod:`actionrec.prep.common`). Two videos that would share a folder (``a.avi`` and ``a.mp4``)
stop the run before any work, with the list of such names: rename one of them.
"""

from __future__ import annotations

import logging
import multiprocessing
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from actionrec.distributed.cluster import RayOptions
from actionrec.errors import UsageError
from actionrec.prep.common import (FRAMES_LAYOUT, PrepOutputError, check_distinct, check_int, check_workers,
                                   pool_init, find_collisions, find_files, locked_output, needs_work, parse_shard, publish_dir,
                                   sweep_temps, take_shard, tmp_dir_for)

log = logging.getLogger(__name__)


@dataclass
class PrepReport:
    """What a preparation run did."""

    done: list[str] = field(default_factory=list)
    skipped: int = 0
    failed: dict[str, str] = field(default_factory=dict)  # item → reason

    def summary(self, what: str) -> str:
        s = f"{what}: {len(self.done)} done, {self.skipped} already done (skipped), {len(self.failed)} failed"
        if self.failed:
            s += "; failed: " + ", ".join(f"{k} ({v})" for k, v in list(self.failed.items())[:10])
        return s


def extract_frames(src: Path, final: Path, *, short_side: int | None = 256, quality: int = 95) -> int:
    """Write the frames of ``src`` into the folder ``final`` atomically; return the frame count."""
    import cv2
    import numpy as np

    from actionrec.data.transforms import resize_short
    from actionrec.data.video import VideoDecodeError, VideoReader

    tmp = tmp_dir_for(final)
    tmp.mkdir(parents=True)
    try:
        reader = VideoReader(src)
        n = 0
        try:
            for img in reader.iter_frames():
                if short_side:
                    img = resize_short(img[None], short_side)[0]
                n += 1
                ok = cv2.imwrite(str(tmp / f"img_{n:05d}.jpg"), np.ascontiguousarray(img[..., ::-1]),
                                 [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
                if not ok:
                    raise OSError(f"cannot write {tmp / f'img_{n:05d}.jpg'}")
        finally:
            reader.close()
        if n == 0:
            raise VideoDecodeError(src, "no frame decoded")
        (tmp / "fps").write_text(f"{reader.fps:.6g}\n")
        publish_dir(tmp, final, FRAMES_LAYOUT, n)  # writes n_frames, the completion marker
        return n
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _job(args: tuple) -> tuple[str, int | None, str | None]:
    rel, src, final, short_side, quality = args
    try:
        return rel, extract_frames(Path(src), Path(final), short_side=short_side, quality=quality), None
    except Exception as e:  # noqa: BLE001 - one bad video must not stop the run
        return rel, None, str(e)


def extract_all(src: str | Path, dst: str | Path, *, short_side: int | None = 256, quality: int = 95,
                workers: int | None = None, shard: str | None = None, progress: bool = True,
                ray: RayOptions | None = None) -> PrepReport:
    """Extract frames of every video under ``src`` into ``dst`` (class subfolders kept); ``ray``: as Ray tasks.

    Holds the output lock of ``dst`` throughout (:class:`~actionrec.errors.LockedError` if taken).
    """
    from actionrec.data.video import VIDEO_EXTENSIONS

    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise FileNotFoundError(f"video folder not found: {src}")
    check_int("--short-side", short_side, lo=0, hi=8192, none_ok=True)
    check_int("--quality", quality, lo=1, hi=100)
    workers = check_workers(workers)
    check_distinct(src, dst, "video")
    every = find_files(src, VIDEO_EXTENSIONS)
    if not every:
        raise UsageError(f"{src}: no videos to extract frames from ({', '.join(sorted(VIDEO_EXTENSIONS))}, searched recursively)")
    collisions = find_collisions(every)
    if collisions:
        shown = "; ".join(" and ".join(str(r) for r in v) + f" -> {k}" for k, v in list(collisions.items())[:10])
        raise UsageError(f"{len(collisions)} output folder(s) would receive two videos ({shown}"
                         f"{' ...' if len(collisions) > 10 else ''}): rename one video of each pair")
    shard_ = parse_shard(shard)
    videos = take_shard(every, shard_)
    report = PrepReport()
    with locked_output(dst, purpose="actionrec prep frames", shard=shard_):
        sweep_temps(dst, [dst / rel.with_suffix("") for rel in videos], everything=shard_[1] == 1)
        jobs = []
        for rel in videos:
            final = dst / rel.with_suffix("")
            try:
                todo = needs_work(final, FRAMES_LAYOUT)
            except PrepOutputError as e:
                report.failed[str(rel)] = str(e)
                continue
            if todo:
                jobs.append((str(rel), str(src / rel), str(final), short_side, quality))
            else:
                report.skipped += 1
        log.info("frames: %d videos in this shard, %d to do", len(videos), len(jobs))
        _run(jobs, _job, workers, report, "frames", progress, ray)
    return report


def _run(jobs: list, fn, workers: int, report: PrepReport, what: str, progress: bool,  # noqa: ANN001
         ray: RayOptions | None = None) -> None:
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=what, unit="video", disable=not progress or not jobs)
    try:
        if ray is not None and jobs:
            from actionrec.distributed.cluster import connect
            from actionrec.distributed.tasks import map_unordered

            with connect(ray):
                for r in map_unordered(fn, jobs, ray):
                    _record(report, r, bar)
        elif workers <= 1 or len(jobs) <= 1:
            from actionrec.runtime import worker_init

            worker_init()  # this process decodes alone: one thread, as a pool worker would
            results = map(fn, jobs)
            for r in results:
                _record(report, r, bar)
        else:
            with multiprocessing.get_context().Pool(min(workers, len(jobs)), initializer=pool_init) as pool:
                for r in pool.imap_unordered(fn, jobs):
                    _record(report, r, bar)
    finally:
        bar.close()


def _record(report: PrepReport, result: tuple, bar) -> None:  # noqa: ANN001
    rel, n, err = result
    if err is None:
        report.done.append(rel)
    else:
        report.failed[rel] = err
        log.warning("failed: %s: %s", rel, err)
    bar.update(1)
