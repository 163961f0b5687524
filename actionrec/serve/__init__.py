"""``actionrec serve``: an HTTP inference service (FastAPI on uvicorn) with a web page.

``create_app(model, ...)`` builds the ASGI app, to run with ``actionrec serve`` or to mount in
another server; see ``docs/serving.md``. Names are imported on first use (the CLI's ``--help`` stays fast).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {"create_app": "actionrec.serve.app", "ServeSettings": "actionrec.serve.app", "Limits": "actionrec.serve.uploads",
            "JobSettings": "actionrec.serve.jobs"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'actionrec.serve' has no attribute {name!r}")
