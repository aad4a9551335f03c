"""The main window's widgets and where they go (Qt Designer's ``setup_ui`` idiom): toolbar,
error banner, emotion card beside the history, timeline below, status bar. Behaviour lives in
:class:`~sertk.gui.main_window.MainWindow`; this only builds and connects."""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QLabel, QPushButton, QSplitter, QStyle, QVBoxLayout, QWidget

from sertk.gui.choosers import InputChooser, ModelChooser
from sertk.gui.history import HistoryTable
from sertk.gui.panels import EmotionPanel, card
from sertk.gui.widgets import ErrorBanner, TimelineView

LIVE_TITLE = "Timeline · last 30 s"


def _action(window: Any, text: str, icon: QStyle.StandardPixmap, slot) -> QAction:
    action = QAction(window.style().standardIcon(icon), text, window)
    action.triggered.connect(slot)
    return action


def setup_ui(window: Any, *, audio_input: int | str | None, file: str | os.PathLike | None) -> None:
    """Create the widgets of ``window`` as attributes (``start_action``, ``stop_action``,
    ``open_action``, ``model_combo``, ``input_combo``, ``error_banner``, ``panel``, ``table``,
    ``save_button``, ``timeline``, ``timeline_card``, ``latency_label``, ``skipped_label``,
    ``model_label``) and connect them to its slots."""
    _toolbar(window, audio_input, file)
    central = QWidget()
    central.setObjectName("central")
    layout = QVBoxLayout(central)
    layout.setContentsMargins(12, 10, 12, 10)
    layout.setSpacing(10)
    window.error_banner = ErrorBanner()
    window.panel = EmotionPanel()
    window.table = HistoryTable()
    window.table.entry_selected.connect(window._show_entry)
    window.save_button = QPushButton("Save…")
    window.save_button.clicked.connect(window.save_dialog)
    history = card("History", window.table, stretch=0)
    history.layout().addWidget(window.save_button, 0, Qt.AlignmentFlag.AlignRight)
    splitter = QSplitter(Qt.Orientation.Horizontal)
    splitter.addWidget(window.panel)
    splitter.addWidget(history)
    splitter.setSizes([560, 480])
    splitter.setChildrenCollapsible(False)
    window.timeline = TimelineView(span=30.0)
    window.timeline_card = card(LIVE_TITLE, window.timeline, stretch=0)
    layout.addWidget(window.error_banner)
    layout.addWidget(splitter, 1)
    layout.addWidget(window.timeline_card)
    window.setCentralWidget(central)
    _status_bar(window)


def _toolbar(window: Any, audio_input, file) -> None:
    bar = window.addToolBar("Main")
    bar.setMovable(False)
    bar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
    pixmap = QStyle.StandardPixmap
    window.start_action = _action(window, "Start", pixmap.SP_MediaPlay, window.start)
    window.stop_action = _action(window, "Stop", pixmap.SP_MediaStop, window.stop)
    window.open_action = _action(window, "Open file…", pixmap.SP_DialogOpenButton, window.open_file)
    window.model_combo = ModelChooser(window)
    window.model_combo.chosen.connect(window.load_model)
    window.input_combo = InputChooser(audio_input=audio_input, file=file, parent=window)
    for item in (window.start_action, window.stop_action, None, window.open_action, None):
        bar.addSeparator() if item is None else bar.addAction(item)
    for text, combo in (("Model", window.model_combo), ("Input", window.input_combo)):
        bar.addWidget(QLabel(f"  {text} "))
        bar.addWidget(combo)


def _status_bar(window: Any) -> None:
    status = window.statusBar()
    window.latency_label, window.skipped_label, window.model_label = QLabel(), QLabel(), QLabel()
    for label in (window.latency_label, window.skipped_label, window.model_label):
        status.addPermanentWidget(label)
    window.model_label.setText("no model")
