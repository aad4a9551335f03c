"""Colours and type sizes shared by every GUI widget, so a class looks the same everywhere.

One colour per canonical emotion (``sertk.corpora`` label names); a label the table does not
know gets a stable colour from a spare palette (the same label always gets the same colour).
Silence is a light grey in every view. Pure Python: importing this module needs no Qt.
"""

from __future__ import annotations

import zlib

SILENCE_COLOR = "#cfd4dc"
EMOTION_COLORS = {
    "neutral": "#8a9bb0",
    "calm": "#4db6ac",
    "happy": "#f2b705",
    "excited": "#f57c00",
    "surprised": "#ec407a",
    "sad": "#3f7fd9",
    "boredom": "#a1887f",
    "angry": "#e53935",
    "frustrated": "#b0413e",
    "fearful": "#8e5bd0",
    "disgust": "#43a047",
    "contempt": "#6d8f3c",
    "other": "#90a4ae",
}
_SPARE = ("#26a69a", "#7e57c2", "#ff7043", "#5c6bc0", "#9ccc65", "#ab47bc", "#29b6f6", "#d4e157")

WINDOW_BACKGROUND = "#f4f6f9"
CARD_BACKGROUND = "#ffffff"
CARD_BORDER = "#dfe3ea"
TEXT = "#1f2933"
MUTED_TEXT = "#6b7685"
ERROR_BACKGROUND = "#fdecea"
ERROR_BORDER = "#f5c2bd"
ERROR_TEXT = "#8a1c14"


def emotion_color(label: str | None) -> str:
    """The ``#rrggbb`` colour of ``label``; silence, no speech (or None) are grey.

    >>> emotion_color("angry"), emotion_color("silence"), emotion_color("no speech")
    ('#e53935', '#cfd4dc', '#cfd4dc')
    """
    if label is None or label in ("silence", "no speech"):
        return SILENCE_COLOR
    known = EMOTION_COLORS.get(label.lower())
    if known is not None:
        return known
    return _SPARE[zlib.crc32(label.encode("utf-8")) % len(_SPARE)]


STYLE_SHEET = f"""
QMainWindow, QWidget#central {{ background: {WINDOW_BACKGROUND}; }}
QFrame#card {{
    background: {CARD_BACKGROUND}; border: 1px solid {CARD_BORDER}; border-radius: 8px;
}}
QLabel#cardTitle {{
    color: {MUTED_TEXT}; font-size: 9pt; font-weight: 600;
}}
QLabel#emotion {{ font-size: 28pt; font-weight: 700; }}
QLabel#confidence {{ color: {MUTED_TEXT}; font-size: 11pt; }}
QLabel#source {{ color: {MUTED_TEXT}; font-size: 9pt; }}
QLabel#adaptation {{ color: {MUTED_TEXT}; font-size: 9pt; }}
QFrame#errorBanner {{
    background: {ERROR_BACKGROUND}; border: 1px solid {ERROR_BORDER}; border-radius: 6px;
}}
QLabel#errorText {{ color: {ERROR_TEXT}; }}
QToolBar {{ background: {CARD_BACKGROUND}; border-bottom: 1px solid {CARD_BORDER}; spacing: 6px; padding: 4px; }}
QTableWidget {{ border: none; gridline-color: {CARD_BORDER}; }}
QHeaderView::section {{
    background: {WINDOW_BACKGROUND}; color: {MUTED_TEXT}; border: none;
    border-bottom: 1px solid {CARD_BORDER}; padding: 4px; font-weight: 600;
}}
QStatusBar {{ background: {CARD_BACKGROUND}; border-top: 1px solid {CARD_BORDER}; }}
QStatusBar QLabel {{ color: {MUTED_TEXT}; padding: 0 8px; }}
"""
