"""Voice-activity gating for live analysis: is there sound worth scoring at the end of a window?"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from sertk.audio import speech_regions
from sertk.errors import ConfigError

SILENCE_DB = -120.0  # level reported for digital silence


def level_db(signal: np.ndarray) -> float:
    """RMS level of float32 ``[samples]`` in dBFS (``SILENCE_DB`` for silence or no samples)."""
    if len(signal) == 0:
        return SILENCE_DB
    power = float(np.mean(np.square(signal, dtype=np.float64)))
    return max(SILENCE_DB, 10.0 * math.log10(power)) if power > 0 else SILENCE_DB


@dataclasses.dataclass(frozen=True)
class EnergyGate:
    """Energy voice-activity gate over the newest ``span`` seconds of a window.

    The span counts as speech when :func:`sertk.audio.speech_regions` finds at least
    ``min_speech`` seconds of sound in it, with ``threshold_db`` as the absolute floor (frames
    quieter than that are silence however quiet the rest is). Looking at the end of the window,
    not all of it, makes the display fall back to "silence" soon after the speaker stops instead
    of a whole window later; a span of about a second bridges the pauses between words.

    >>> gate = EnergyGate()
    >>> gate(np.zeros(48000, np.float32), 16000)
    False
    """

    threshold_db: float = -45.0
    min_speech: float = 0.2
    span: float = 1.0

    def __post_init__(self) -> None:
        checks = (
            ("threshold_db", self.threshold_db, -120.0, 0.0),
            ("min_speech", self.min_speech, 0.01, 60.0),
            ("span", self.span, 0.01, 60.0),
        )
        for name, value, low, high in checks:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"EnergyGate.{name} must be a number, got {value!r}")
            if not low <= value <= high:
                raise ConfigError(f"EnergyGate.{name} must be in [{low}, {high}], got {value!r}")
        if self.min_speech > self.span:
            raise ConfigError(
                f"EnergyGate.min_speech ({self.min_speech} s) cannot exceed span ({self.span} s)"
            )

    def __call__(self, window: np.ndarray, sampling_rate: int) -> bool:
        """True when the end of float32 ``[samples]`` ``window`` holds enough sound."""
        tail = window[-max(1, round(self.span * sampling_rate)) :]
        regions = speech_regions(
            tail, sampling_rate, floor_db=self.threshold_db, min_duration=0.05, merge_gap=0.1
        )
        return sum(end - start for start, end in regions) >= self.min_speech
