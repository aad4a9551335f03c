"""``MainWindow``: live emotion from a microphone (or a file played live), and file analysis.

Everything slow runs off the UI thread: loading a bundle and analysing a file in a
:class:`~sertk.gui.workers.Task`, live analysis in :class:`sertk.live.StreamingEngine`'s own
threads. Their results reach the widgets through queued Qt signals only. Errors are shown in
the window's banner and status bar.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QFileDialog, QMainWindow

from sertk.errors import SertkError
from sertk.gui import choosers
from sertk.gui.history import save_timeline, summarise
from sertk.gui.layout import LIVE_TITLE, setup_ui
from sertk.gui.palette import STYLE_SHEET
from sertk.gui.widgets import TimelineSegment
from sertk.gui.workers import QUEUED, LiveSession, Tasks, describe
from sertk.smoothing import LIVE_SMOOTH, check_smooth

AUDIO_FILTER = "Audio (*.wav *.flac *.ogg *.opus *.mp3 *.m4a *.aac);;All files (*)"


class MainWindow(QMainWindow):
    """The ``sertk gui`` window (see the module docstring).

    ``model``: bundle name or path, loaded at once on a worker thread onto the compute
    ``device`` (cpu, cuda, cuda:N); ``audio_input``: the microphone (index or part of a name)
    preselected; ``file``: a recording offered as a live input (played in real time); ``hop``:
    seconds between analyses, live and for files; ``smooth``: seconds over which probabilities
    are averaged (up to each live result, centred on each window of a file; see
    :mod:`sertk.smoothing`); ``vad``: the speech/silence threshold (``floor_db``,
    ``margin_db``; see :mod:`sertk.audio.speech`), live and for files; ``autostart``: start the
    live session as soon as the model is loaded.
    """

    def __init__(
        self,
        *,
        model: str | os.PathLike | None = "default",
        device: str = "cpu",
        audio_input: int | str | None = None,
        file: str | os.PathLike | None = None,
        hop: float = 0.5,
        smooth: float = LIVE_SMOOTH,
        vad: Mapping[str, float] | None = None,
        autostart: bool = False,
    ) -> None:
        super().__init__()
        self.hop, self.device, self.autostart = hop, device, autostart
        self.smooth, self.vad = check_smooth(smooth), dict(vad or {})
        self.recognizer: Any = None
        self.session: LiveSession | None = None
        self.file_timeline: Any = None  # the Timeline shown in file mode
        self.mode = "live"  # what the timeline and table show: "live" or "file"
        self.tasks = Tasks(self)
        self._loading = self._analysing = 0  # generation numbers of the newest requests
        self._busy: set[str] = set()
        self._skipped = 0
        self.setWindowTitle("sertk — speech emotion")
        self.setStyleSheet(STYLE_SHEET)
        self.resize(1080, 720)
        setup_ui(self, audio_input=audio_input, file=file)
        self._update_actions()
        if model is not None:
            self.load_model(model)

    def _update_actions(self) -> None:
        ready = self.recognizer is not None and "model" not in self._busy
        running = self.session is not None and self.session.running
        self.start_action.setEnabled(ready and not running)
        self.stop_action.setEnabled(running)
        self.open_action.setEnabled(ready and "file" not in self._busy)
        self.model_combo.setEnabled(not running)
        self.input_combo.setEnabled(not running)
        self.save_button.setEnabled(self.table.rowCount() > 0)

    # --- errors -------------------------------------------------------------------------

    def show_error(self, message: str) -> None:
        """Show ``message`` in the error banner and the status bar (never raises)."""
        self.error_banner.show_message(message)
        self.statusBar().showMessage(message.splitlines()[0] if message else "", 15_000)

    # --- model --------------------------------------------------------------------------

    def load_model(self, name_or_path: str | os.PathLike) -> None:
        """Load a bundle on a worker thread; the window keeps working meanwhile."""
        from sertk.recognizer import Recognizer

        self._loading += 1
        generation, device = self._loading, self.device
        self._busy.add("model")
        self.statusBar().showMessage(f"loading model {name_or_path} …")
        self._update_actions()
        self.tasks.start(
            lambda: Recognizer.load(name_or_path, device=device),
            done=lambda recognizer: self._model_loaded(generation, name_or_path, recognizer),
            failed=lambda message: self._model_failed(generation, name_or_path, message),
        )

    def _model_loaded(self, generation: int, name: Any, recognizer: Any) -> None:
        if generation != self._loading:
            return  # a newer request wins
        self._busy.discard("model")
        self.recognizer = recognizer
        self.model_combo.set_current(name)
        self.panel.set_labels(recognizer.labels)
        path = Path(recognizer.bundle.path)
        title = "default" if name == "default" else choosers.bundle_title(str(path))
        self.model_label.setText(
            f"model {title} · {len(recognizer.labels)} classes · {recognizer.extractor.name}"
        )
        self.model_label.setToolTip(str(path))
        self.statusBar().showMessage(f"model loaded: {path}", 8000)
        self._update_actions()
        if self.autostart:
            self.autostart = False
            self.start()

    def _model_failed(self, generation: int, name: Any, message: str) -> None:
        if generation != self._loading:
            return
        self._busy.discard("model")
        current = None if self.recognizer is None else self.model_combo.current_name
        self.model_combo.set_current(current)
        self.show_error(f"Could not load the model {str(name)!r}: {message}")
        self._update_actions()

    # --- live session -------------------------------------------------------------------

    def start(self) -> None:
        """Start the live session on the chosen input (slot of the Start button)."""
        if self.recognizer is None:
            self.show_error("No model is loaded: choose one in the Model list first.")
            return
        try:
            source = self.input_combo.open_source(self.recognizer.sampling_rate)
        except SertkError as error:
            self.show_error(describe(error))
            return
        self.start_session(source)

    def start_session(self, source: Any, *, deterministic: bool = False) -> LiveSession | None:
        """Analyse ``source`` (any :mod:`sertk.live` source) live; None if it cannot start."""
        self.stop()
        try:
            session = LiveSession(
                self.recognizer,
                source,
                hop=self.hop,
                smooth=self.smooth,
                vad=self.vad,
                deterministic=deterministic,
                parent=self,
            )
        except SertkError as error:
            self.show_error(describe(error))
            return None
        session.result.connect(self._on_result, QUEUED)
        session.level.connect(self.panel.show_level, QUEUED)
        session.failed.connect(self._on_failed, QUEUED)
        session.finished.connect(self._on_finished, QUEUED)
        self.session, self.mode, self._skipped = session, "live", 0
        self.error_banner.dismiss()
        self.timeline.clear()
        self.table.clear_rows()
        self.timeline_card.title.setText(LIVE_TITLE)
        self.panel.show_emotion(None, None, None, note="listening…")
        self.panel.source.setText(f"input: {choosers.describe_source(source)}")
        session.start()
        self.statusBar().showMessage("listening…")
        self._update_actions()
        return session

    def stop(self) -> None:
        """Stop the live session (its results stay in the table and can be saved)."""
        if self.session is not None and self.session.running:
            self.session.stop()

    def _on_result(self, result: Any) -> None:
        if self.sender() is not self.session:
            return  # a result of an earlier session, still in the queue
        self.panel.show_emotion(result.label, result.confidence, result.probabilities)
        self.panel.show_adaptation(result.adaptation)
        self.panel.show_level(result.level_db)
        self.timeline.add(result.time, result.label, result.confidence, start=result.start)
        self.table.add_result(result)
        self._skipped += result.skipped
        self.latency_label.setText(f"latency {result.latency_s * 1000:.0f} ms")
        self.skipped_label.setText(f"skipped windows {self._skipped}")
        self._update_actions()

    def _on_failed(self, message: str) -> None:
        self.show_error(f"Live analysis stopped: {message}")

    def _on_finished(self) -> None:
        if self.sender() is self.session:
            count = self.table.rowCount()
            self.statusBar().showMessage(f"stopped: {count} results", 10_000)
            self._update_actions()

    # --- file analysis ------------------------------------------------------------------

    def open_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Analyse a recording", "", AUDIO_FILTER)
        if path:
            self.analyse_file(path)

    def analyse_file(self, path: str | os.PathLike) -> None:
        """Analyse a recording with ``Recognizer.timeline`` on a worker thread; the timeline and
        the table then show its segments."""
        if self.recognizer is None:
            self.show_error("No model is loaded: choose one in the Model list first.")
            return
        self.stop()
        self._analysing += 1
        generation, recognizer = self._analysing, self.recognizer
        options = {"hop": self.hop, "smooth": self.smooth, "vad": self.vad,
                   "adapt": recognizer.adaptive}  # the recording's own speech  # fmt: skip
        self._busy.add("file")
        self.statusBar().showMessage(f"analysing {Path(path).name} …")
        self._update_actions()
        self.tasks.start(
            lambda: recognizer.timeline(path, **options),
            done=lambda timeline: self._file_done(generation, path, timeline),
            failed=lambda message: self._file_failed(generation, path, message),
        )

    def _file_done(self, generation: int, path: Any, timeline: Any) -> None:
        if generation != self._analysing:
            return
        self._busy.discard("file")
        self.mode, self.file_timeline = "file", timeline
        self.error_banner.dismiss()
        self.timeline.set_segments(
            (TimelineSegment(s.start, s.end, s.label, s.confidence) for s in timeline.segments),
            duration=timeline.duration,
        )
        self.timeline_card.title.setText(f"Timeline · {Path(path).name}")
        self.table.set_segments(timeline.segments)
        label, confidence, probabilities = summarise(timeline)
        speech = sum(s.duration for s in timeline.segments if s.speech)
        self.panel.show_emotion(label, confidence, probabilities, note="whole file")
        self.panel.show_adaptation(timeline.adaptation)
        self.panel.show_level(None)
        self.latency_label.clear()
        self.skipped_label.clear()
        self.panel.source.setText(
            f"file: {Path(path).name} · {timeline.duration:.1f} s · speech {speech:.1f} s · "
            f"{len(timeline.segments)} segments"
        )
        self.statusBar().showMessage(f"analysed {Path(path).name}", 10_000)
        self._update_actions()

    def _file_failed(self, generation: int, path: Any, message: str) -> None:
        if generation == self._analysing:
            self._busy.discard("file")
            self.show_error(f"Could not analyse {Path(path).name}: {message}")
            self._update_actions()

    def _show_entry(self, entry: Any) -> None:
        """A selected table row: its emotion and probabilities in the panel."""
        if self.session is None or not self.session.running:
            self.panel.show_emotion(entry.label, entry.confidence, entry.probabilities)

    # --- saving and closing -------------------------------------------------------------

    def save_history(self, path: str | os.PathLike) -> Path | None:
        """Save what the table shows to ``.csv``/``.jsonl``: the live results (engine format)
        or the file's segments. Errors go to the banner; returns the path or None."""
        try:
            if self.mode == "file" and self.file_timeline is not None:
                saved = save_timeline(path, self.file_timeline)
            elif self.session is not None:
                saved = self.session.engine.save_history(path)
            else:
                raise SertkError("nothing to save yet: start a session or open a file")
        except (SertkError, OSError) as error:
            self.show_error(f"Could not save the history: {describe(error)}")
            return None
        self.statusBar().showMessage(f"saved {saved}", 10_000)
        return saved

    def save_dialog(self) -> None:
        path, chosen = QFileDialog.getSaveFileName(
            self, "Save the history", "sertk-history.csv", "CSV (*.csv);;JSON Lines (*.jsonl)"
        )
        if path:
            if Path(path).suffix.lower() not in (".csv", ".jsonl"):
                path += ".jsonl" if "jsonl" in chosen else ".csv"
            self.save_history(path)

    def shutdown(self) -> None:
        """Stop the live session and wait for background tasks (idempotent)."""
        self.stop()
        self.tasks.wait()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        event.accept()
