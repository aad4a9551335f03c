"""The REST server and web page: a thin FastAPI adapter over :class:`~sertk.recognizer.Recognizer`.

- :func:`create_app` (``app.py``): the app (``/v1/predict``, ``/v1/timeline``, ``/v1/labels``,
  ``/healthz``, the page at ``/``); run it with ``sertk serve`` or any ASGI server
  (:func:`uvicorn_config`, ``run.py``, adds the header timeout).
- :class:`WorkerPool` (``pool.py``): worker processes, each with its own model, fed by bounded
  queues in two lanes (short recordings micro-batched; long ones apart); ``processes.py`` is
  the server's handle on a worker process, ``worker.py`` what a worker does with a job,
  ``worker_main.py`` the worker process, ``protocol.py``
  the messages between them (JSON and bytes, no pickle); ``handling.py`` how a request is handled.
- ``limits.py``: admission, rate limit, body and header timeouts; ``security.py``: origin
  checks, API key, security headers; ``uploads.py``: uploads read into memory within limits,
  decoded with ``load_audio``, and the JSON errors; ``schemas.py``: the response models.

Importing this package imports FastAPI (the ``serve`` extra); ``sertk serve`` imports it lazily.

>>> from sertk.server import create_app
>>> app = create_app("runs/emodb/final/bundle", max_upload_mb=10, workers=2)  # starts worker processes  # doctest: +SKIP
"""

import importlib
from typing import Any

_PUBLIC = {
    "create_app": "sertk.server.app",
    "Lane": "sertk.server.pool",
    "Overloaded": "sertk.server.pool",
    "WorkerPool": "sertk.server.pool",
    "uvicorn_config": "sertk.server.run",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    """The public names, imported when first used: a worker process (``worker_main``) imports
    this package without FastAPI."""
    if name not in _PUBLIC:
        raise AttributeError(f"module 'sertk.server' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
