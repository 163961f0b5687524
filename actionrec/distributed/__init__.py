"""Beyond one machine: the Ray engine (``pip install 'actionrec[ray]'``; Ray is imported only when used).

* :func:`predict_dataset` / :func:`segment_dataset`: a ``ray.data.Dataset`` of videos in, one of rows out
  (:mod:`actionrec.distributed.datasets`), for users' own pipelines.
* :class:`RayOptions`, :func:`connect`: the cluster and the width of a run (:mod:`actionrec.distributed.cluster`).
* :func:`map_unordered`: ``prep frames|flow`` tasks on the cluster (:mod:`actionrec.distributed.tasks`).

The CLI's ``--engine ray`` (``predict``, ``predict --segments``, ``prep frames|flow``) is built on these;
see docs/scale.md for when to use it rather than ``--shard``.
"""

from __future__ import annotations

from typing import Any

from actionrec.distributed.cluster import RayOptions, connect, ray_available

__all__ = ["RayOptions", "connect", "ray_available", "predict_dataset", "segment_dataset", "map_unordered"]


def __getattr__(name: str) -> Any:
    if name in ("predict_dataset", "segment_dataset"):
        from actionrec.distributed import datasets

        return getattr(datasets, name)
    if name == "map_unordered":
        from actionrec.distributed.tasks import map_unordered

        return map_unordered
    raise AttributeError(f"module 'actionrec.distributed' has no attribute {name!r}")
