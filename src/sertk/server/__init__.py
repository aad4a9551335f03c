"""The REST server and web page: a thin FastAPI adapter over :class:`~sertk.recognizer.Recognizer`.

- :func:`create_app` (``app.py``): the app (``/v1/predict``, ``/v1/timeline``, ``/v1/labels``,
  ``/healthz``, the page at ``/``); run it with ``sertk serve`` or any ASGI server.
- :class:`MicroBatcher` (``batching.py``): the one inference thread that batches concurrent
  predictions.
- ``uploads.py``: uploads read into memory within limits, decoded with ``load_audio``, and the
  JSON errors; ``schemas.py``: the response models.

Importing this package imports FastAPI (the ``serve`` extra); ``sertk serve`` imports it lazily.

>>> from sertk.server import create_app
>>> app = create_app("runs/emodb/final/bundle", max_upload_mb=10)  # doctest: +SKIP
"""

from sertk.server.app import create_app
from sertk.server.batching import MicroBatcher, Overloaded

__all__ = ["MicroBatcher", "Overloaded", "create_app"]
