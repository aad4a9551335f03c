"""Cards of the main window: the current emotion (big label, confidence, per-class bars,
level meter) and a titled frame helper."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from PySide6.QtWidgets import QFrame, QLabel, QVBoxLayout, QWidget

from sertk.gui.palette import MUTED_TEXT, emotion_color
from sertk.gui.widgets import ConfidenceBars, LevelMeter


def card(title: str, *widgets: QWidget, stretch: int | None = None) -> QFrame:
    """A white rounded frame with a small grey title above ``widgets``."""
    frame = QFrame()
    frame.setObjectName("card")
    layout = QVBoxLayout(frame)
    layout.setContentsMargins(14, 10, 14, 12)
    layout.setSpacing(8)
    heading = QLabel(title)
    heading.setObjectName("cardTitle")
    layout.addWidget(heading)
    frame.title = heading  # so the window can retitle the card
    for index, widget in enumerate(widgets):
        layout.addWidget(widget, 1 if index == stretch else 0)
    if stretch is None:
        layout.addStretch(1)
    return frame


class EmotionPanel(QFrame):
    """The current emotion: its name in its colour, the confidence, one bar per class, the
    input level, and a line saying what is being shown."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("card")
        self.emotion = QLabel("—")
        self.emotion.setObjectName("emotion")
        self.confidence = QLabel("Load a model, then press Start or open a file")
        self.confidence.setObjectName("confidence")
        self.adaptation = QLabel("")  # which model answers: global, or adapted to the speaker
        self.adaptation.setObjectName("adaptation")
        self.adaptation.setWordWrap(True)
        self.source = QLabel("")
        self.source.setObjectName("source")
        self.source.setWordWrap(True)
        self.bars = ConfidenceBars()
        self.meter = LevelMeter()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(14, 10, 14, 12)
        layout.setSpacing(6)
        for text, widgets in (
            ("Current emotion", (self.emotion, self.confidence, self.adaptation)),
            ("Classes", (self.bars,)),
            ("Input level", (self.meter, self.source)),
        ):
            heading = QLabel(text)
            heading.setObjectName("cardTitle")
            layout.addSpacing(4)
            layout.addWidget(heading)
            for widget in widgets:
                layout.addWidget(widget)
        layout.addStretch(1)

    def set_labels(self, labels: Sequence[str]) -> None:
        """A new model: its classes, nothing shown yet."""
        self.bars.set_labels(labels)
        self.show_emotion(None, None, None)

    def show_emotion(
        self,
        label: str | None,
        confidence: float | None,
        probabilities: Mapping[str, float] | None,
        *,
        note: str = "",
    ) -> None:
        """Show ``label`` (None: nothing yet; ``"silence"``, ``"no speech"``: grey) and its
        probabilities."""
        color = emotion_color(label) if label not in (None, "silence", "no speech") else MUTED_TEXT
        self.emotion.setText("—" if label is None else label)
        self.emotion.setStyleSheet(f"color: {color};")
        if confidence is not None:
            text = f"confidence {confidence * 100:.0f} %"
        elif label == "silence":
            text = "no speech in the newest audio"
        elif label == "no speech":
            text = "sound, but no speech in it"
        else:
            text = ""
        self.confidence.setText(" · ".join(part for part in (text, note) if part))
        self.bars.set_probabilities(probabilities)

    def show_adaptation(self, state: Any) -> None:
        """Which model answers: ``state`` is a :class:`sertk.recognizer.AdaptationState` (None:
        the bundle does not adapt; the line is empty)."""
        if state is None:
            text = ""
        elif state.adapted:
            text = f"model: adapted to the speaker ({state.seconds:.0f} s of speech)"
        else:
            text = f"model: global until {state.min_seconds:g} s of speech ({state.seconds:.0f} s so far)"
        self.adaptation.setText(text)

    def show_level(self, level_db: float | None) -> None:
        self.meter.set_level(level_db)
