"""``actionrec serve``: an HTTP inference service (FastAPI on uvicorn) with a web page.

``create_app(model, ...)`` builds the ASGI app, to run with ``actionrec serve`` or to mount in
another server; see ``docs/serving.md``.
"""

from actionrec.serve.app import ServeSettings, create_app
from actionrec.serve.uploads import Limits

__all__ = ["create_app", "ServeSettings", "Limits"]
