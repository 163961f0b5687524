"""The Ray engine's options and its connection to a cluster; torch-free, and Ray imported only when used.

:class:`RayOptions` is what ``--engine ray --ray-address --ray-workers --cpus-per-worker --gpus-per-worker``
say (see :func:`actionrec.options.add_engine_args`); :func:`connect` joins the cluster they name, or starts
a local Ray for the run, and leaves a Ray that was already initialised (a user's own driver) as it found it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from actionrec.errors import UsageError

__all__ = ["RayOptions", "check_installed", "require_ray", "ray_available", "connect", "check_fits", "parse_workers", "INSTALL_HINT"]

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'actionrec[ray]'"
MAX_WORKERS = 4096


def ray_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("ray") is not None and importlib.util.find_spec("pyarrow") is not None


def check_installed(what: str = "--engine ray") -> None:
    """A usage error saying how to install Ray when it is not (without importing it)."""
    if not ray_available():
        raise UsageError(f"{what} needs Ray Data: {INSTALL_HINT}")


def require_ray(what: str = "--engine ray") -> Any:
    """The ``ray`` module, or a usage error saying how to install it."""
    check_installed(what)
    import ray
    import ray.data  # noqa: F401 - the Data library, part of the extra

    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where and how wide a Ray run goes.

    Args:
        address: ``None`` (``RAY_ADDRESS`` if set, else a local Ray started for this run), ``"auto"`` (the
            cluster running on this machine), ``"HOST:PORT"`` or ``"ray://HOST:PORT"`` (Ray Client).
        workers: ``(min, max)`` model workers (actors): the pool grows from ``min`` to ``max`` as work waits;
            for ``prep`` steps, ``max`` is the number of tasks in flight.
        cpus_per_worker / gpus_per_worker: Ray resources each worker reserves; a model worker runs
            ``max(1, int(cpus_per_worker))`` intra-op threads.
    """

    address: str | None = None
    workers: tuple[int, int] = (1, 2)
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0

    def __post_init__(self) -> None:
        lo, hi = self.workers
        if not (isinstance(lo, int) and isinstance(hi, int) and 1 <= lo <= hi <= MAX_WORKERS):
            raise UsageError(f"--ray-workers must be N or MIN,MAX with 1 <= MIN <= MAX <= {MAX_WORKERS}, got {lo},{hi}")
        if not 0 < self.cpus_per_worker <= 1024:
            raise UsageError(f"--cpus-per-worker must be > 0 and <= 1024, got {self.cpus_per_worker}")
        if not 0 <= self.gpus_per_worker <= 64:
            raise UsageError(f"--gpus-per-worker must be 0..64, got {self.gpus_per_worker}")

    @property
    def threads(self) -> int:
        """Intra-op threads of one model worker."""
        return max(1, int(self.cpus_per_worker))

    @property
    def device(self) -> str:
        """Where a model worker runs: the GPU Ray assigned it, or the CPU."""
        return "cuda" if self.gpus_per_worker > 0 else "cpu"


def parse_workers(text: str) -> tuple[int, int]:
    """``"4"`` → (4, 4); ``"1,8"`` → (1, 8)."""
    try:
        parts = [int(t) for t in text.split(",")]
    except ValueError:
        raise UsageError(f"--ray-workers must be N or MIN,MAX (e.g. 1,8), got {text!r}") from None
    if len(parts) not in (1, 2):
        raise UsageError(f"--ray-workers must be N or MIN,MAX (e.g. 1,8), got {text!r}")
    return (parts[0], parts[-1])


@contextlib.contextmanager
def connect(options: RayOptions) -> Iterator[Any]:
    """Ray, initialised for the block: an existing connection is used as is; otherwise ``ray.init`` on
    ``options.address`` (``RAY_ADDRESS``, or a local Ray) and ``ray.shutdown`` at the end."""
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    address = options.address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {} if address else {"include_dashboard": False}  # a local Ray: no web server
    handlers = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        ray.init(address=address, logging_level=logging.WARNING, **kwargs)
    except ConnectionError as e:
        raise UsageError(f"--ray-address {address}: no Ray cluster answers there ({str(e).splitlines()[0]}); start one "
                         "with `ray start --head` or drop --ray-address to run a local Ray") from None
    resources = ray.cluster_resources()
    log.info("Ray: %d node(s), %g CPU(s), %g GPU(s)%s", len([n for n in ray.nodes() if n.get("Alive")]),
             resources.get("CPU", 0), resources.get("GPU", 0), f" at {address}" if address else " (local)")
    try:
        yield ray
    finally:
        ray.shutdown()
        if threading.current_thread() is threading.main_thread():
            for sig, handler in handlers.items():  # Ray leaves its own handlers installed: put the caller's back
                if handler is not None:
                    signal.signal(sig, handler)


def check_fits(ray: Any, options: RayOptions) -> None:
    """A usage error when no node has the CPUs or GPUs one worker asks for (Ray would wait for ever)."""
    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    cpus = max((n.get("CPU", 0) for n in nodes), default=0)
    gpus = max((n.get("GPU", 0) for n in nodes), default=0)
    if options.cpus_per_worker > cpus:
        raise UsageError(f"--cpus-per-worker {options.cpus_per_worker:g}: no node of the cluster has that many CPUs "
                         f"(the largest has {cpus:g})")
    if options.gpus_per_worker > gpus:
        raise UsageError(f"--gpus-per-worker {options.gpus_per_worker:g}: no node of the cluster has that many GPUs "
                         f"(the largest has {gpus:g})")
