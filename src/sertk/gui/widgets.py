"""Painted widgets of the GUI: input level meter, per-class confidence bars, emotion timeline,
and the error banner. They only display values handed to them (on the UI thread); they never
compute anything from audio.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Mapping, Sequence
from typing import NamedTuple

from PySide6.QtCore import QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QFont,
    QFontMetrics,
    QLinearGradient,
    QPainter,
    QPaintEvent,
)
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from sertk.gui.palette import CARD_BORDER, MUTED_TEXT, TEXT, emotion_color
from sertk.live.display import LEVEL_FLOOR_DB, level_fraction

TRACK = QColor("#eef1f5")
_TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)


def _text_color(background: QColor) -> QColor:
    """Dark text on light colours, white on dark ones (perceived luminance)."""
    r, g, b = background.red(), background.green(), background.blue()
    return QColor(TEXT) if 0.299 * r + 0.587 * g + 0.114 * b > 165 else QColor("#ffffff")


def format_seconds(seconds: float) -> str:
    """``"42 s"`` below a minute, else ``"m:ss"``."""
    if seconds < 60:
        return f"{seconds:g} s"
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}:{rest:02d}"


class LevelMeter(QWidget):
    """Horizontal input level meter from ``LEVEL_FLOOR_DB`` to 0 dBFS (green, amber, red)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.level_db: float | None = None
        self.setMinimumHeight(26)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(240, 26)

    def set_level(self, level_db: float | None) -> None:
        """Show ``level_db`` (dBFS); None empties the meter."""
        self.level_db = None if level_db is None else float(level_db)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        text = "— dBFS" if self.level_db is None else f"{self.level_db:5.1f} dBFS"
        metrics = QFontMetrics(self.font())
        text_width = metrics.horizontalAdvance("-120.0 dBFS") + 10
        track = QRectF(0, 4, max(10, self.width() - text_width), self.height() - 8)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(TRACK)
        painter.drawRoundedRect(track, 4, 4)
        if self.level_db is not None:
            gradient = QLinearGradient(track.left(), 0, track.right(), 0)
            for db, color in ((-60, "#43a047"), (-18, "#7cb342"), (-9, "#fbc02d"), (0, "#e53935")):
                gradient.setColorAt(level_fraction(db) if db > LEVEL_FLOOR_DB else 0.0, color)
            filled = QRectF(track)
            filled.setWidth(track.width() * level_fraction(self.level_db))
            painter.setBrush(gradient)
            painter.drawRoundedRect(filled, 4, 4)
        painter.setPen(QColor(MUTED_TEXT))
        painter.drawText(
            QRectF(track.right() + 6, 0, text_width, self.height()),
            Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
            text,
        )


class ConfidenceBars(QWidget):
    """One bar per class: label, probability bar in the class colour, percentage."""

    ROW = 30

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: tuple[str, ...] = ()
        self.values: dict[str, float | None] = {}
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Minimum)

    def sizeHint(self) -> QSize:
        return QSize(320, max(1, len(self.labels)) * self.ROW + 4)

    def minimumSizeHint(self) -> QSize:
        return QSize(200, max(1, len(self.labels)) * 22)

    def set_labels(self, labels: Sequence[str]) -> None:
        """The classes shown, in the model's order (all values cleared)."""
        self.labels = tuple(labels)
        self.values = dict.fromkeys(self.labels)
        self.updateGeometry()
        self.update()

    def set_probabilities(self, probabilities: Mapping[str, float] | None) -> None:
        """Show ``{label: p}``; None (silence, nothing yet) shows empty bars."""
        probabilities = probabilities or {}
        self.values = {label: probabilities.get(label) for label in self.labels}
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        if not self.labels:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = QFontMetrics(self.font())
        name_width = max(metrics.horizontalAdvance(label) for label in self.labels) + 12
        value_width = metrics.horizontalAdvance("100 %") + 8
        row = min(self.ROW, self.height() / len(self.labels))
        known = [v for v in self.values.values() if v is not None]
        best = max(known) if known else None
        bold = QFont(self.font())
        bold.setBold(True)
        for index, label in enumerate(self.labels):
            top, value = index * row, self.values.get(label)
            highlight = value is not None and value == best
            painter.setFont(bold if highlight else self.font())
            painter.setPen(QColor(TEXT if highlight else MUTED_TEXT))
            align = Qt.AlignmentFlag.AlignVCenter
            painter.drawText(QRectF(0, top, name_width, row), align, label)
            track = QRectF(
                name_width, top + row * 0.22, self.width() - name_width - value_width, row * 0.56
            )
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(TRACK)
            painter.drawRoundedRect(track, 4, 4)
            if value:
                filled = QRectF(track)
                filled.setWidth(max(track.height(), track.width() * min(1.0, value)))
                painter.setBrush(QColor(emotion_color(label)))
                painter.drawRoundedRect(filled, 4, 4)
            painter.setPen(QColor(TEXT if highlight else MUTED_TEXT))
            shown = "–" if value is None else f"{value * 100:.0f} %"
            painter.drawText(
                QRectF(track.right(), top, value_width, row),
                align | Qt.AlignmentFlag.AlignRight,
                shown,
            )


class TimelineSegment(NamedTuple):
    """A stretch ``[start, end)`` seconds with one label (``confidence`` None for silence)."""

    start: float
    end: float
    label: str
    confidence: float | None


class TimelineView(QWidget):
    """Coloured emotion segments over time; silence grey.

    Live mode (``add``) follows the newest result and shows the last ``span`` seconds; file mode
    (``set_segments``) fits a whole recording. At most ``limit`` segments are kept.
    """

    def __init__(self, *, span: float = 30.0, limit: int = 5000, parent: QWidget | None = None):
        super().__init__(parent)
        self.span = float(span)
        self._segments: collections.deque[TimelineSegment] = collections.deque(maxlen=limit)
        self.duration: float | None = None  # set in file mode
        self.setMinimumHeight(84)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(800, 96)

    @property
    def segments(self) -> list[TimelineSegment]:
        """The kept segments, in time order (a copy)."""
        return list(self._segments)

    def clear(self) -> None:
        self._segments.clear()
        self.duration = None
        self.update()

    def add(self, end: float, label: str, confidence: float | None, *, start: float) -> None:
        """Live: the result at ``end`` seconds covers the stretch since the previous one (the
        first one its whole window, from ``start``)."""
        start = self._segments[-1].end if self._segments else max(0.0, start)
        self._segments.append(TimelineSegment(min(start, end), end, label, confidence))
        self.update()

    def set_segments(self, segments: Iterable[TimelineSegment], *, duration: float) -> None:
        """File mode: show ``segments`` over ``[0, duration]`` seconds."""
        self._segments.clear()
        self._segments.extend(segments)
        self.duration = float(duration)
        self.update()

    def visible_range(self) -> tuple[float, float]:
        """``(first, last)`` seconds shown."""
        if self.duration is not None:
            return 0.0, max(self.duration, 1e-3)
        latest = self._segments[-1].end if self._segments else 0.0
        return max(0.0, latest - self.span), max(self.span, latest)

    def _runs(self) -> list[TimelineSegment]:
        """Adjacent segments with the same label drawn as one (mean confidence)."""
        runs: list[list[TimelineSegment]] = []
        for segment in self._segments:
            if runs and runs[-1][-1].label == segment.label:
                runs[-1].append(segment)
            else:
                runs.append([segment])
        merged = []
        for run in runs:
            known = [s.confidence for s in run if s.confidence is not None]
            mean = sum(known) / len(known) if known else None
            merged.append(TimelineSegment(run[0].start, run[-1].end, run[0].label, mean))
        return merged

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        metrics = QFontMetrics(self.font())
        axis = metrics.height() + 6
        band = QRectF(6, 6, self.width() - 12, self.height() - axis - 10)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(TRACK)
        painter.drawRoundedRect(band, 6, 6)
        first, last = self.visible_range()
        scale = band.width() / (last - first)
        if not self._segments:
            painter.setPen(QColor(MUTED_TEXT))
            painter.drawText(
                band, Qt.AlignmentFlag.AlignCenter, "No results yet: press Start or open a file"
            )
        painter.setClipRect(band)
        for segment in self._runs():
            x0 = band.left() + (max(segment.start, first) - first) * scale
            x1 = band.left() + (min(segment.end, last) - first) * scale
            if x1 <= x0:
                continue
            color = QColor(emotion_color(segment.label))
            rect = QRectF(x0, band.top() + 3, x1 - x0, band.height() - 6)
            painter.setPen(Qt.PenStyle.NoPen)
            if segment.confidence is None:  # silence: hatched, never mistaken for a class
                painter.setBrush(QColor("#e6e9ee"))
                painter.drawRoundedRect(rect, 3, 3)
                painter.setBrush(QBrush(color, Qt.BrushStyle.BDiagPattern))
            else:  # paler when the model is unsure
                color.setAlphaF(0.55 + 0.45 * min(1.0, segment.confidence))
                painter.setBrush(color)
            painter.drawRoundedRect(rect, 3, 3)
            if (
                segment.confidence is not None
                and rect.width() > metrics.horizontalAdvance(segment.label) + 10
            ):
                painter.setPen(_text_color(QColor(emotion_color(segment.label))))
                painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, segment.label)
        painter.setClipping(False)
        self._paint_axis(painter, band, first, last, scale, metrics)

    def _paint_axis(self, painter, band, first, last, scale, metrics) -> None:
        label_width = metrics.horizontalAdvance("00:00") + 24
        step = next((s for s in _TICK_STEPS if s * scale >= label_width), _TICK_STEPS[-1])
        painter.setPen(QColor(CARD_BORDER))
        painter.drawLine(band.left(), band.bottom() + 2, band.right(), band.bottom() + 2)
        tick = (int(first // step) + 1) * step if first > 0 else 0
        while tick <= last + 1e-9:
            x = band.left() + (tick - first) * scale
            painter.setPen(QColor(CARD_BORDER))
            painter.drawLine(x, band.bottom() + 2, x, band.bottom() + 6)
            painter.setPen(QColor(MUTED_TEXT))
            text = format_seconds(tick)
            width = metrics.horizontalAdvance(text)
            left = min(max(x - width / 2, band.left()), band.right() - width)
            painter.drawText(QRectF(left, band.bottom() + 6, width + 2, metrics.height()), 0, text)
            tick += step


class ErrorBanner(QFrame):
    """A dismissable red banner with the latest error message (hidden when there is none)."""

    dismissed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("errorBanner")
        self.label = QLabel()
        self.label.setObjectName("errorText")
        self.label.setWordWrap(True)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        button = QPushButton("Dismiss")
        button.setFlat(True)
        button.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(12, 8, 8, 8)
        layout.addWidget(self.label, 1)
        layout.addWidget(button, 0, Qt.AlignmentFlag.AlignTop)
        self.hide()

    def text(self) -> str:
        """The message shown ('' when hidden)."""
        return self.label.text() if not self.isHidden() else ""

    def show_message(self, message: str) -> None:
        self.label.setText(message)
        self.show()

    def dismiss(self) -> None:
        self.label.clear()
        self.hide()
        self.dismissed.emit()
