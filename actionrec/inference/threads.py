"""One place that sets thread counts: torch, ONNX Runtime, OpenCV and the video decoder agree.

The default is the number of cores this process may use (``os.sched_getaffinity``, which honours
``taskset``, cgroups cpusets and SLURM bindings), never more: on a busy 2-core machine two extra
threads cost far more than they give (1,284 ms vs 10 ms per batch measured in issue 12).
Inference gets the threads; OpenCV runs single-threaded (it only resizes small frames and would
compete with the model), decoding runs one thread per video, in worker processes when there are some.
"""

from __future__ import annotations

import logging
import os

from actionrec.errors import UsageError

__all__ = ["available_cores", "set_threads", "MAX_THREADS"]

log = logging.getLogger(__name__)

MAX_THREADS = 1024


def available_cores() -> int:
    """Cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def set_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads (ORT sessions take the returned count) and OpenCV's to 1; return the count."""
    import torch

    if threads is None:
        threads = available_cores()
    elif isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise UsageError(f"threads must be an integer in [1, {MAX_THREADS}], got {threads!r}")
    elif threads > available_cores():
        log.warning("%d threads on %d available cores: the threads will compete (oversubscription)", threads, available_cores())
    torch.set_num_threads(threads)
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - opencv is a dependency
        pass
    return threads
