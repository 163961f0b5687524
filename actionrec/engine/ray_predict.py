"""``actionrec predict --engine ray`` (and ``--segments``): the collection on a Ray cluster, the rows written here.

The driver (this process) lists the videos, skips those already in ``--output``, hands the rest to
:func:`~actionrec.distributed.predict_dataset` / :func:`~actionrec.distributed.segment_dataset` and writes
each row as it arrives with the local engine's :class:`~actionrec.engine.predict.PredictionFile` (locked,
appended, synced; a rerun resumes; a video is never written twice). Rows arrive in completion order.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from actionrec.distributed.cluster import RayOptions, connect

__all__ = ["predict_with_ray"]

log = logging.getLogger(__name__)

def predict_with_ray(args: argparse.Namespace, videos: Sequence[str], output_path: Path | None, options: RayOptions,
                     *, params: Any = None) -> int:
    """The ``predict`` command on Ray (``params``: segment parameters for ``--segments``)."""
    from actionrec.deploy.source import resolve_model
    from actionrec.engine.predict import PredictionFile
    from actionrec.engine.segments import SegmentFile
    from actionrec.options import backend_kwargs, preprocess_overrides

    meta = resolve_model(args.model).meta
    topk = min(args.topk, meta.num_classes)
    kind = SegmentFile if params is not None else PredictionFile
    with kind(output_path, topk=topk) if output_path else contextlib.nullcontext() as out:
        todo = [v for v in videos if out is None or v not in out.done]
        if out is not None and out.done:
            print(f"{output_path}: {len(videos) - len(todo)} videos already done, skipping them", file=sys.stderr)
        if not todo:
            print(f"nothing to do: all {len(videos)} videos are already in {output_path}", file=sys.stderr)
            return 0
        t0 = time.perf_counter()
        written = errors = 0
        with connect(options) as ray:
            from actionrec.distributed.datasets import predict_dataset, segment_dataset

            # one block per video up to 1,024 blocks: videos are heavy items, and a block is what a worker takes
            ds = ray.data.from_items([{"video": v} for v in todo], override_num_blocks=min(len(todo), 1024))
            common = {"topk": topk, "options": options, "num_crops": args.crops, "precision": args.precision,
                      "batch_size": args.batch_size, **backend_kwargs(args), **preprocess_overrides(args)}
            if params is not None:
                rows = segment_dataset(ds, args.model, params, **common)
            else:
                rows = predict_dataset(ds, args.model, num_clips=args.clips or None, **common)
            for row in rows.iter_rows():
                d = json.loads(row["result"])
                if row["error"]:
                    errors += 1
                    log.warning("%s", row["error"])
                if out is None:
                    print(json.dumps(d, ensure_ascii=False), flush=True)
                    written += 1
                elif out.write_row(d):
                    written += 1
    what = "segmented" if params is not None else "predicted"
    where = f", {len(videos) - len(todo)} skipped as already done -> {output_path}" if output_path else ""
    print(f"{written} videos {what} on Ray ({errors} unreadable) in {time.perf_counter() - t0:.1f} s{where}",
          file=sys.stderr)
    return 0
