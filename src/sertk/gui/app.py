"""The QApplication around :class:`~sertk.gui.main_window.MainWindow`."""

from __future__ import annotations

import os
import signal
import sys
import traceback
from collections.abc import Mapping
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from sertk.gui.main_window import MainWindow
from sertk.gui.workers import describe
from sertk.smoothing import LIVE_SMOOTH

# The model is loaded on one thread and run on the live engine's; with OpenMP's default
# busy-waiting, each 3 s window then took 0.2-4.5 s instead of ~20 ms on a busy 2-core machine
# (measured; windows were skipped). Passive waiting fixes it; OpenMP reads it when torch loads.
if "torch" not in sys.modules:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def application(argv: list[str] | None = None) -> QApplication:
    """The running QApplication (created when there is none), with the app's style and font."""
    app = QApplication.instance() or QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("sertk")
    app.setStyle("Fusion")  # the same look on every platform and offscreen
    font = app.font()
    font.setPointSizeF(max(font.pointSizeF(), 10.0))
    app.setFont(font)
    return app


def error_hook(window: MainWindow) -> Any:
    """A ``sys.excepthook`` that shows an uncaught error in ``window`` instead of a traceback
    (the traceback goes to stderr only when ``SERTK_DEBUG`` is set)."""

    def hook(kind: type[BaseException], error: BaseException, tb: Any) -> None:
        if issubclass(kind, KeyboardInterrupt):
            QApplication.quit()
            return
        message = describe(error)
        if os.environ.get("SERTK_DEBUG"):
            traceback.print_exception(kind, error, tb)
        else:
            print(f"sertk gui: error: {message}", file=sys.stderr)
        window.show_error(message)

    return hook


def run_app(
    *,
    model: str = "default",
    device: str = "cpu",
    audio_input: int | str | None = None,
    file: str | os.PathLike | None = None,
    hop: float = 0.5,
    smooth: float = LIVE_SMOOTH,
    vad: Mapping[str, float] | None = None,
    autostart: bool = False,
    quit_after: float | None = None,
) -> int:
    """Show the main window and run the event loop until it is closed; returns the exit code.

    The options are :class:`~sertk.gui.main_window.MainWindow`'s; ``autostart`` starts the live
    session once the model is loaded; ``quit_after`` closes the window after that many seconds
    (demos, smoke tests).
    """
    app = application()
    window = MainWindow(
        model=model,
        device=device,
        audio_input=audio_input,
        file=file,
        hop=hop,
        smooth=smooth,
        vad=vad,
        autostart=autostart,
    )
    previous, sys.excepthook = sys.excepthook, error_hook(window)
    interrupt = signal.signal(signal.SIGINT, lambda *_: window.close())  # Ctrl-C in a terminal
    heartbeat = QTimer(window)  # lets Python run its signal handlers while Qt waits
    heartbeat.timeout.connect(lambda: None)
    heartbeat.start(250)
    try:
        window.show()
        if quit_after is not None:
            QTimer.singleShot(round(quit_after * 1000), window.close)
        return int(app.exec())
    finally:
        sys.excepthook = previous
        signal.signal(signal.SIGINT, interrupt)
        window.shutdown()
