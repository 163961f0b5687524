"""How a model runs: device, threads, precision and determinism, resolved once per command or API call.

This is the only module that calls ``torch.set_num_threads`` / ``torch.set_num_interop_threads`` and
picks devices. Everything else receives a :class:`Runtime`::

    rt = resolve_runtime(device="cpu", threads=None)   # threads: the cores this process may use
    rt.apply()                                           # torch intra-op threads, OpenCV to 1 thread
    with rt.autocast():                                  # fp16/bf16 on the device, a no-op for fp32
        logits = model(x.to(rt.device))

Worker processes (DataLoader workers, prep pools, flow workers) run one thread each by default:
their parallelism is the number of processes (:func:`worker_init`). On a busy
2-core machine two extra threads cost far more than they give (1,284 ms vs 10 ms per batch, issue 12).

Torch is imported only when a runtime is applied or a device is checked, so the CLI can build its
parser (and answer ``--help``) without it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from actionrec.errors import UsageError

__all__ = [
    "Runtime", "resolve_runtime", "resolve_device", "available_cores", "worker_init", "host_info",
    "MAX_THREADS", "PRECISIONS",
]

log = logging.getLogger(__name__)

MAX_THREADS = 1024
PRECISIONS = ("fp32", "fp16", "bf16")


def available_cores() -> int:
    """Cores this process may run on (``sched_getaffinity``: honours taskset, cgroup cpusets, SLURM bindings)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class Runtime:
    """Where and how a model runs (see the module docstring). Build it with :func:`resolve_runtime`."""

    device: str = "cpu"  # "cpu", "cuda:0", ...
    threads: int = 1  # intra-op threads of this process (torch; ONNX Runtime sessions take the same count)
    interop_threads: int | None = None  # torch inter-op threads (None: torch's default)
    precision: str = "fp32"  # "fp32", "fp16", "bf16": autocast dtype on the device
    deterministic: bool = False  # torch.use_deterministic_algorithms (warn-only) while applied

    @property
    def is_cuda(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def dtype(self) -> Any:
        import torch

        return {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[self.precision]

    def apply(self) -> Runtime:
        """Set this process's torch threads (and OpenCV's to 1) and determinism; returns ``self``."""
        import torch

        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        if self.interop_threads is not None and torch.get_num_interop_threads() != self.interop_threads:
            try:
                torch.set_num_interop_threads(self.interop_threads)
            except RuntimeError as e:  # torch allows it once, before any inter-op work
                log.debug("inter-op threads left at %d (%s)", torch.get_num_interop_threads(), e)
        if self.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        _opencv_single_thread()
        return self

    @contextlib.contextmanager
    def applied(self) -> Iterator[Runtime]:
        """Apply for a block, then restore torch's previous threads and determinism (an API call inside a program)."""
        import torch

        saved = (torch.get_num_threads(), torch.are_deterministic_algorithms_enabled(),
                 torch.is_deterministic_algorithms_warn_only_enabled())
        self.apply()
        try:
            yield self
        finally:
            if torch.get_num_threads() != saved[0]:
                torch.set_num_threads(saved[0])
            torch.use_deterministic_algorithms(saved[1], warn_only=saved[2])

    def autocast(self) -> contextlib.AbstractContextManager:
        """``torch.autocast`` on the device for fp16/bf16; nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type="cuda" if self.is_cuda else "cpu", dtype=self.dtype)

    def as_dict(self) -> dict[str, Any]:
        """The runtime and the host, for every output that carries timings."""
        return {**asdict(self), **host_info(self.device)}


def _check_threads(threads: Any, name: str = "threads") -> int:
    if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_THREADS:
        raise UsageError(f"{name} must be an integer in [1, {MAX_THREADS}], got {threads!r}")
    return threads


def resolve_device(device: str | None, *, local_rank: int = 0) -> str:
    """``"cpu"``, ``"cuda[:N]"`` or ``"auto"`` → a checked device name; ``"cuda"`` and ``"auto"`` mean
    ``cuda:local_rank`` (one GPU per process under torchrun), ``"auto"`` the CPU when there is no GPU."""
    if device is None:
        return "cpu"
    if not isinstance(device, str) or not device.strip():
        raise UsageError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    device = device.strip().lower()
    if device == "cpu":
        return device
    import torch

    if device == "auto":
        return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise UsageError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    if not torch.cuda.is_available():
        raise UsageError(f"device {device!r}: no CUDA device here (torch {torch.__version__}); use --device cpu")
    n = int(index) if index else local_rank
    if n >= torch.cuda.device_count():
        raise UsageError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here")
    return f"cuda:{n}"


def resolve_runtime(*, device: str | None = None, threads: int | None = None, interop_threads: int | None = None,
                    precision: str = "fp32", deterministic: bool = False, local_rank: int = 0) -> Runtime:
    """Check the choices and fill in defaults (not applied yet: call :meth:`Runtime.apply`).

    Args:
        device: ``"cpu"`` (default), ``"cuda"``, ``"cuda:N"`` or ``"auto"`` (a GPU if there is one).
        threads: intra-op threads (default: the cores this process may use; more is allowed, with a warning).
        interop_threads: torch inter-op threads (default: torch's).
        precision: ``"fp32"``, ``"fp16"`` or ``"bf16"`` (autocast; fp16 needs a GPU).
        deterministic: deterministic kernels where torch has a choice.
        local_rank: the GPU that ``"cuda"``/``"auto"`` mean (torchrun's ``LOCAL_RANK``).
    """
    device = resolve_device(device, local_rank=local_rank)
    cores = available_cores()
    threads = cores if threads is None else _check_threads(threads)
    if threads > cores:
        log.warning("%d threads on %d available cores: the threads will compete (oversubscription)", threads, cores)
    if interop_threads is not None:
        _check_threads(interop_threads, "interop_threads")
    if precision not in PRECISIONS:
        raise UsageError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "fp16" and device == "cpu":
        raise UsageError("precision fp16 needs a GPU (--device cuda); on the CPU use fp32 or bf16")
    return Runtime(device=device, threads=threads, interop_threads=interop_threads, precision=precision,
                   deterministic=bool(deterministic))


def worker_init(_: object = None, *, threads: int = 1) -> None:
    """In a worker process (``DataLoader(worker_init_fn=...)``, a pool's ``initializer``): ``threads`` torch threads, OpenCV one."""
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    _opencv_single_thread()


def _opencv_single_thread() -> None:
    """OpenCV only resizes small frames here; its own pool would compete with the model."""
    try:
        import cv2

        cv2.setNumThreads(1)
    except ImportError:  # pragma: no cover - opencv is a dependency
        pass


@lru_cache(maxsize=None)
def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def host_info(device: str = "cpu") -> dict[str, Any]:
    """CPU model, cores, the kernels torch picked (``AVX2``, ``AVX512``, ...), versions, and the GPU if used."""
    import torch

    info: dict[str, Any] = {
        "cpu": _cpu_name(), "logical_cpus": os.cpu_count(), "available_cores": available_cores(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(), "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
    return info
