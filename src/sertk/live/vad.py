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
    floor. The gate follows the stream: each call tracks the noise floor over the ``new``
    samples at the end of the window (those the previous call did not see; all of them when
    not given, and on the first call, whose leading silence then counts), carrying the estimate
    and the decisions of the last ``span`` seconds from call to call, as
    :func:`sertk.audio.speech_frames` does block by block; ``reset()`` forgets them.
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
        self._recent = np.zeros(0, bool)  # decisions of the frames of the last span seconds

    def __repr__(self) -> str:
        return (
            f"EnergyGate(floor_db={self.floor_db:g}, margin_db={self.margin_db:g}, "
            f"min_speech={self.min_speech:g}, span={self.span:g})"
        )

    def reset(self) -> None:
        """Forget the noise-floor estimate and the recent decisions (a new stream starts)."""
        self.noise_db = None
        self._recent = np.zeros(0, bool)

    def __call__(self, window: np.ndarray, sampling_rate: int, *, new: int | None = None) -> bool:
        """True when the last ``span`` seconds of float32 ``[samples]`` ``window`` hold enough
        speech; ``new``: how many samples at its end arrived since the previous call."""
        new = len(window) if new is None or self.noise_db is None else min(new, len(window))
        if new > 0:
            self._track(window, sampling_rate, new)
        frame, hop = round(0.025 * sampling_rate), round(0.010 * sampling_rate)
        regions = frame_regions(
            self._recent,
            frame=frame,
            hop=hop,
            sampling_rate=sampling_rate,
            samples=(len(self._recent) - 1) * hop + frame,
            merge_gap=0.1,
            min_duration=0.05,
        )
        return sum(end - start for start, end in regions) >= self.min_speech

    def _track(self, window: np.ndarray, sampling_rate: int, new: int) -> None:
        """Decide the frames of the ``new`` samples (with a frame's context before them) and
        keep the decisions of the last ``span`` seconds."""
        frame, hop = round(0.025 * sampling_rate), round(0.010 * sampling_rate)
        piece = window[max(0, len(window) - new - (frame - hop)) :]
        levels, _, _ = frame_levels(piece, sampling_rate)
        levels = levels[: max(1, (len(piece) - frame) // hop + 1)]  # full frames only
        active, noise = decide(
            levels,
            hop_s=hop / sampling_rate,
            floor_db=self.floor_db,
            margin_db=self.margin_db,
            noise_db=self.noise_db,
        )
        self.noise_db = float(noise[-1])
        keep = max(1, round(self.span * sampling_rate / hop))
        self._recent = np.concatenate([self._recent, active])[-keep:]
