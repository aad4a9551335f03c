"""Voice-activity gating for live analysis: is there speech at the end of a window?"""

from __future__ import annotations

import math
import warnings

import numpy as np

from sertk.audio.speech import FLOOR_DB, MARGIN_DB, SILENCE_DB, frame_levels, frame_regions
from sertk.audio.speech import speech_frames as decide
from sertk.errors import ConfigError


def level_db(signal: np.ndarray) -> float:
    """RMS level of float32 ``[samples]`` in dBFS (``SILENCE_DB`` for silence or no samples)."""
    if len(signal) == 0:
        return SILENCE_DB
    power = float(np.mean(np.square(signal, dtype=np.float64)))
    return max(SILENCE_DB, 10.0 * math.log10(power)) if power > 0 else SILENCE_DB


class EnergyGate:
    """Energy voice-activity gate over the newest ``span`` seconds of a window.

    The span counts as speech when at least ``min_speech`` seconds of its frames are speech by
    the one rule of :mod:`sertk.audio.speech` (the rule of :func:`sertk.audio.speech_regions`,
    which splits timelines): at least ``floor_db`` dBFS and ``margin_db`` dB above the noise
    floor. The noise floor is tracked over the whole window, starting from the estimate the
    previous call ended with (windows arrive in order), so a steady background is learned as
    the stream goes on and the first window's leading silence counts; ``reset()`` forgets it.
    Looking at the end of the window, not all of it, makes the display fall back to "silence"
    soon after the speaker stops instead of a whole window later; a span of about a second
    bridges the pauses between words. ``threshold_db`` is the old name of ``floor_db``
    (deprecated, for one release).

    >>> gate = EnergyGate()
    >>> gate(np.zeros(48000, np.float32), 16000)
    False
    """

    def __init__(
        self,
        *,
        floor_db: float = FLOOR_DB,
        margin_db: float = MARGIN_DB,
        min_speech: float = 0.2,
        span: float = 1.0,
        threshold_db: float | None = None,
    ) -> None:
        if threshold_db is not None:
            warnings.warn(
                "EnergyGate(threshold_db=...) is deprecated: it is called floor_db now (an "
                "absolute floor in dBFS, with margin_db over the noise floor)",
                DeprecationWarning,
                stacklevel=2,
            )
            floor_db = threshold_db
        checks = (
            ("floor_db", floor_db, SILENCE_DB, 0.0),
            ("margin_db", margin_db, 0.0, 120.0),
            ("min_speech", min_speech, 0.01, 60.0),
            ("span", span, 0.01, 60.0),
        )
        for name, value, low, high in checks:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"EnergyGate.{name} must be a number, got {value!r}")
            if not low <= value <= high:
                raise ConfigError(f"EnergyGate.{name} must be in [{low}, {high}], got {value!r}")
        if min_speech > span:
            raise ConfigError(
                f"EnergyGate.min_speech ({min_speech} s) cannot exceed span ({span} s)"
            )
        self.floor_db, self.margin_db = float(floor_db), float(margin_db)
        self.min_speech, self.span = float(min_speech), float(span)
        self.noise_db: float | None = None  # the carried noise-floor estimate (dBFS)

    def __repr__(self) -> str:
        return (
            f"EnergyGate(floor_db={self.floor_db:g}, margin_db={self.margin_db:g}, "
            f"min_speech={self.min_speech:g}, span={self.span:g})"
        )

    def reset(self) -> None:
        """Forget the noise-floor estimate (a new stream starts)."""
        self.noise_db = None

    def __call__(self, window: np.ndarray, sampling_rate: int) -> bool:
        """True when the end of float32 ``[samples]`` ``window`` holds enough speech."""
        if len(window) == 0:
            return False
        levels, frame, hop = frame_levels(window, sampling_rate)
        active, noise = decide(
            levels,
            hop_s=hop / sampling_rate,
            floor_db=self.floor_db,
            margin_db=self.margin_db,
            noise_db=self.noise_db,
        )
        self.noise_db = float(noise[-1])
        span = min(len(window), max(1, round(self.span * sampling_rate)))
        first = -(-(len(window) - span) // hop)  # the first frame starting inside the span
        regions = frame_regions(
            active[first:],
            frame=frame,
            hop=hop,
            sampling_rate=sampling_rate,
            samples=len(window) - first * hop,
            merge_gap=0.1,
            min_duration=0.05,
        )
        return sum(end - start for start, end in regions) >= self.min_speech
