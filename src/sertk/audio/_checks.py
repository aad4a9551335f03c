"""Argument checks shared by the audio functions: a float signal, a number in a range."""

from __future__ import annotations

import math

import numpy as np

from sertk.errors import AudioError, ConfigError


def as_signal(signal: object) -> np.ndarray:
    """``signal`` as float32 ``[samples]`` or ``[channels, samples]`` (no copy when it already
    is one), else AudioError."""
    array = np.asarray(signal)
    if array.dtype.kind != "f":
        raise AudioError(
            f"signal: expected float samples, got dtype {array.dtype}; "
            "convert integer PCM with sertk.audio.check_signal"
        )
    if array.ndim not in (1, 2):
        raise AudioError(
            f"signal: expected shape [samples] or [channels, samples], got {array.shape}"
        )
    return array.astype(np.float32, copy=False)


def number(name: str, value: object, *, low: float = -math.inf, high: float = math.inf) -> float:
    """``value`` as a float in ``[low, high]``, else ConfigError."""
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        if math.isfinite(value) and low <= value <= high:
            return float(value)
    raise ConfigError(f"{name} must be a finite number in [{low}, {high}], got {value!r}")
