"""``sertk gui``: a Qt (PySide6) desktop front end over :class:`sertk.recognizer.Recognizer` and
:class:`sertk.live.StreamingEngine`.

- ``main_window.py``: :class:`MainWindow` (start/stop, open file, model and input choosers).
- ``widgets.py``: level meter, confidence bars, emotion timeline, error banner (QPainter).
- ``layout.py``, ``panels.py``, ``choosers.py``, ``history.py``: where widgets go, the emotion
  card, the toolbar choosers, the history table and saving it.
- ``workers.py``: :class:`~sertk.gui.workers.Task` and :class:`~sertk.gui.workers.LiveSession`,
  the only code that runs off the UI thread; results reach widgets through queued signals.
- ``app.py``: :func:`run_app`, the QApplication around the window.
- ``palette.py``: one colour per emotion, shared by bars, table and timeline (no Qt needed).

Importing :mod:`sertk.gui` does not import Qt; its attributes do (``pip install 'sertk[gui]'``).

>>> from sertk.gui import run_app  # opens a window  # doctest: +SKIP
>>> run_app(model="runs/emodb/final/bundle", file="speech.wav")  # opens a window  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__all__ = ["MainWindow", "run_app"]


def __getattr__(name: str) -> Any:
    if name == "MainWindow":
        from sertk.gui.main_window import MainWindow

        return MainWindow
    if name == "run_app":
        from sertk.gui.app import run_app

        return run_app
    raise AttributeError(f"module 'sertk.gui' has no attribute {name!r}")
