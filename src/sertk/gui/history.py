"""The history table (time, emotion, confidence) and saving what it shows.

Live results are saved with :func:`sertk.live.save_history` (the engine's format); a file's
timeline segments with :func:`save_timeline` (the same columns as ``sertk predict --timeline``).
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from sertk.errors import ConfigError
from sertk.gui.palette import MUTED_TEXT, emotion_color
from sertk.recognizer.long_audio import speech_mean

FORMATS = (".csv", ".jsonl")


def save_timeline(path: str | os.PathLike, timeline: Any) -> Path:
    """Write a :class:`sertk.recognizer.Timeline`'s segments to ``.csv`` (``start, end, label,
    confidence, speech`` and one column per label) or ``.jsonl`` (one segment per line)."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in FORMATS:
        raise ConfigError(f"cannot save as {target.name!r}: use a .csv or .jsonl file name")
    if suffix == ".csv":
        stream = io.StringIO()
        writer = csv.DictWriter(
            stream,
            fieldnames=["start", "end", "label", "confidence", "speech", *timeline.labels],
            lineterminator="\n",
        )
        writer.writeheader()
        writer.writerows(timeline.to_rows())
        text = stream.getvalue()
    else:
        text = "".join(json.dumps(segment.to_dict()) + "\n" for segment in timeline.segments)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    try:  # written beside the target and renamed: never a half file
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as stream_out:
            stream_out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def summarise(timeline: Any) -> tuple[str, float | None, dict[str, float] | None]:
    """The whole recording's emotion: probabilities averaged over speech segments weighted by
    their duration (:func:`sertk.recognizer.long_audio.speech_mean`, what ``sertk predict``
    reports for a long file); ``("silence", None, None)`` (or ``"no speech"`` when there was
    sound) when there is no speech."""
    mean = speech_mean(timeline)
    if mean is None:
        heard = any(s.label == "no speech" for s in timeline.segments)
        return ("no speech" if heard else "silence"), None, None
    best = int(mean.argmax())
    probabilities = {label: float(p) for label, p in zip(timeline.labels, mean, strict=True)}
    return timeline.labels[best], float(mean[best]), probabilities


def _dot(color: str) -> QIcon:
    pixmap = QPixmap(12, 12)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(color))
    painter.drawEllipse(1, 1, 10, 10)
    painter.end()
    return QIcon(pixmap)


class HistoryTable(QTableWidget):
    """Rows of (time, emotion, confidence): live results or a file's segments.

    ``entries`` holds the objects behind the rows (``Result`` or ``Segment``);
    ``entry_selected(entry)`` fires when the user selects a row.
    """

    COLUMNS = ("Time", "Emotion", "Confidence")
    entry_selected = Signal(object)

    def __init__(self, *, limit: int = 20_000, parent=None) -> None:
        super().__init__(0, len(self.COLUMNS), parent)
        self.limit = limit
        self.entries: list[Any] = []
        self._icons: dict[str, QIcon] = {}
        self.setHorizontalHeaderLabels(self.COLUMNS)
        self.verticalHeader().hide()
        self.verticalHeader().setDefaultSectionSize(26)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        header = self.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        header.setDefaultAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self.itemSelectionChanged.connect(self._selected)

    def rows(self) -> list[tuple[str, str, str]]:
        """The shown cell texts, row by row."""
        return [
            tuple(self.item(row, column).text() for column in range(len(self.COLUMNS)))
            for row in range(self.rowCount())
        ]

    def clear_rows(self) -> None:
        self.entries.clear()
        self.setRowCount(0)

    def add_result(self, result: Any) -> None:
        """Append a live :class:`sertk.live.Result` (the view follows it when at the bottom)."""
        bar = self.verticalScrollBar()
        following = bar.value() >= bar.maximum() - 2
        if len(self.entries) >= self.limit:
            self.entries.pop(0)
            self.removeRow(0)
        self._append(result, f"{result.time:.1f} s", result.label, result.confidence)
        if following:
            self.scrollToBottom()

    def set_segments(self, segments: Sequence[Any]) -> None:
        """Show a file's timeline segments (``start``, ``end``, ``label``, ``confidence``)."""
        self.clear_rows()
        for segment in segments:
            span = f"{segment.start:.2f} – {segment.end:.2f} s"
            self._append(segment, span, segment.label, segment.confidence)
        self.scrollToTop()

    def _append(self, entry: Any, when: str, label: str, confidence: float | None) -> None:
        row = self.rowCount()
        self.insertRow(row)
        self.entries.append(entry)
        color = emotion_color(label)
        if color not in self._icons:
            self._icons[color] = _dot(color)
        cells = (
            QTableWidgetItem(when),
            QTableWidgetItem(self._icons[color], label),
            QTableWidgetItem("—" if confidence is None else f"{confidence * 100:.0f} %"),
        )
        if confidence is None:
            cells[1].setForeground(QColor(MUTED_TEXT))
        for column, cell in enumerate(cells):
            self.setItem(row, column, cell)

    def _selected(self) -> None:
        rows = {index.row() for index in self.selectedIndexes()}
        if len(rows) == 1:
            self.entry_selected.emit(self.entries[rows.pop()])
