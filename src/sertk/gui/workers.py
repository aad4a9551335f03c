"""Bridges from worker threads to the Qt UI thread: nothing here touches a widget.

- :class:`Task`: one function (load a bundle, analyse a file) on its own ``QThread``; its
  outcome arrives on the UI thread as a ``succeeded(value)`` or ``failed(message)`` signal.
- :class:`Tasks`: keeps running tasks alive, and waits for them on shutdown.
- :class:`LiveSession`: a :class:`sertk.live.StreamingEngine` over a source; the engine's
  callbacks (on its worker thread) only *emit* signals, which Qt queues to the UI thread.

Errors become one-line messages (:func:`describe`) for the window, never tracebacks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal

from sertk.errors import SertkError
from sertk.live import EnergyGate, StreamingEngine, level_db
from sertk.smoothing import LIVE_SMOOTH

HISTORY_LIMIT = 20_000  # live results kept (~2.8 hours at a 0.5 s hop)
QUEUED = Qt.ConnectionType.QueuedConnection


def describe(error: BaseException) -> str:
    """The message to show for ``error``: a SertkError's own text, else its type and text."""
    if isinstance(error, SertkError):
        return str(error)
    return f"unexpected error: {type(error).__name__}: {error}"


class Task(QThread):
    """Runs ``function()`` once on its own thread (never the UI thread)."""

    succeeded = Signal(object)
    failed = Signal(str)

    def __init__(self, function: Callable[[], Any], *, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._function = function

    def run(self) -> None:
        try:
            value = self._function()
        except Exception as error:  # shown in the window
            self.failed.emit(describe(error))
            return
        self.succeeded.emit(value)


class Tasks(QObject):
    """Starts :class:`Task` objects and holds them until they finish."""

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._running: set[Task] = set()

    @property
    def active(self) -> int:
        """How many tasks are still running."""
        return sum(1 for task in self._running if not task.isFinished())

    def start(
        self,
        function: Callable[[], Any],
        *,
        done: Callable[[Any], None],
        failed: Callable[[str], None],
    ) -> Task:
        """Run ``function`` on a new thread; ``done(value)`` or ``failed(message)`` then run on
        the UI thread (queued connections)."""
        task = Task(function, parent=self)
        task.succeeded.connect(done, QUEUED)
        task.failed.connect(failed, QUEUED)
        task.finished.connect(lambda: self._forget(task), QUEUED)
        self._running.add(task)
        task.start()
        return task

    def _forget(self, task: Task) -> None:
        self._running.discard(task)
        task.deleteLater()

    def wait(self, timeout_ms: int = 10_000) -> bool:
        """Block until every task has finished (shutdown only); True when all did."""
        return all(task.wait(timeout_ms) for task in list(self._running))


class LevelTap:
    """A source wrapper that reports the level (dBFS) of each block as it passes to the engine,
    so the meter moves at the block rate rather than once per analysis hop."""

    def __init__(self, source: Any, on_level: Callable[[float], None]) -> None:
        self._source = source
        self._on_level = on_level

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self._source:
            self._on_level(level_db(np.asarray(block, dtype=np.float32).reshape(-1)))
            yield block

    def __getattr__(self, name: str) -> Any:  # sampling_rate, realtime, close, dropped...
        return getattr(self._source, name)


class LiveSession(QObject):
    """One run of the streaming engine over ``source``, reported through Qt signals.

    ``result(Result)`` per analysed hop, ``level(dBFS)`` per block of a real-time source,
    ``failed(message)`` when the source or the model fails, ``finished()`` once the engine has
    stopped (end of the source, ``stop()`` or an error). ``hop`` and ``smooth`` are the
    engine's (seconds), ``vad`` the options of its :class:`sertk.live.EnergyGate`;
    ``deterministic`` analyses every hop in order (a file fed as fast as it is read: demos and
    tests).
    """

    result = Signal(object)
    level = Signal(float)
    failed = Signal(str)
    finished = Signal()

    def __init__(
        self,
        recognizer: Any,
        source: Any,
        *,
        hop: float = 0.5,
        smooth: float = LIVE_SMOOTH,
        vad: Mapping[str, float] | None = None,
        deterministic: bool = False,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.source = source
        self.engine = StreamingEngine.from_recognizer(
            recognizer,
            hop=hop,
            smooth=smooth,
            vad=EnergyGate(**(vad or {})),
            deterministic=deterministic,
            on_result=self.result.emit,  # called on the engine's worker thread: emit only
            on_error=lambda error: self.failed.emit(describe(error)),
            history=HISTORY_LIMIT,
        )
        realtime = bool(getattr(source, "realtime", False))
        self._feed = LevelTap(source, self.level.emit) if realtime else source
        self._timer = QTimer(self)
        self._timer.setInterval(100)
        self._timer.timeout.connect(self._poll)
        self._started = self._finished = False

    @property
    def running(self) -> bool:
        return self._started and not self._finished

    def start(self) -> None:
        """Start the engine's threads (returns at once)."""
        self.engine.start(self._feed)
        self._started = True
        self._timer.start()

    def stop(self) -> None:
        """Stop the source and join the engine's threads (results made so far are kept)."""
        if self._started:
            self.engine.stop()
        self._finish()

    def _poll(self) -> None:
        if self.engine.wait(0):
            self.engine.stop()  # joins the finished threads
            self._finish()

    def _finish(self) -> None:
        self._timer.stop()
        if self._started and not self._finished:
            self._finished = True
            self.finished.emit()
