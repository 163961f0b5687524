"""``prep frames|flow --engine ray``: the prep steps' per-video (or per-chunk) jobs as Ray tasks.

The jobs are the same functions the local pools run (they write into a temporary folder beside their
output, which the driver verifies and publishes), so a node must see the input and output folders at
the same paths (a shared file system, as for ``--shard``). A task lost with its worker or node is run
again (``max_retries``); a job that fails returns its error as a value, as in a local pool.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from actionrec.distributed.cluster import RayOptions, check_fits, require_ray

__all__ = ["map_unordered"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
MAX_RETRIES = 5


def _run_one(fn: Callable[[Any], Any], item: Any) -> Any:
    from actionrec.runtime import worker_init

    worker_init()  # one thread, as a local pool's process
    return fn(item)


def map_unordered(fn: Callable[[T], R], items: Iterable[T], options: RayOptions) -> Iterator[R]:
    """``fn(item)`` for every item as Ray tasks of ``options.cpus_per_worker`` CPUs (and GPUs), at most
    ``options.workers[1]`` in flight; results as they finish. Call it inside :func:`~actionrec.distributed.connect`."""
    ray = require_ray()
    check_fits(ray, options)
    remote = ray.remote(num_cpus=options.cpus_per_worker, num_gpus=options.gpus_per_worker or None,
                        max_retries=MAX_RETRIES, retry_exceptions=False)(_run_one)
    fn_ref = ray.put(fn)
    todo, in_flight = iter(items), []
    limit = options.workers[1]
    while True:
        while len(in_flight) < limit:
            item = next(todo, _END)
            if item is _END:
                break
            in_flight.append(remote.remote(fn_ref, item))
        if not in_flight:
            return
        done, in_flight = ray.wait(in_flight, num_returns=1)
        yield ray.get(done[0])


_END = object()
