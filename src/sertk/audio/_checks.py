"""Argument checks shared by the audio functions: a float signal, a number in a range, a sane
sampling rate and channel count, finite samples."""

from __future__ import annotations

import math

import numpy as np

from sertk.errors import AudioError, ConfigError

MIN_SAMPLING_RATE = 1_000
MAX_SAMPLING_RATE = 384_000
MAX_CHANNELS = 64


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


def check_rate(sampling_rate: object, *, what: str = "sampling_rate") -> int:
    """Return ``sampling_rate`` as an int, or raise AudioError if it is not a sane rate in Hz."""
    valid = isinstance(sampling_rate, int | np.integer | float | np.floating) and not isinstance(
        sampling_rate, bool
    )
    if valid and float(sampling_rate).is_integer():
        rate = int(sampling_rate)
        if MIN_SAMPLING_RATE <= rate <= MAX_SAMPLING_RATE:
            return rate
    raise AudioError(
        f"{what} must be a whole number of Hz between {MIN_SAMPLING_RATE} and {MAX_SAMPLING_RATE}, "
        f"got {sampling_rate!r}"
    )


def check_header_rate(rate: int, name: str) -> None:
    """AudioError naming the sample rate when a file's header announces an absurd one."""
    if not MIN_SAMPLING_RATE <= rate <= MAX_SAMPLING_RATE:
        raise AudioError(
            f"{name}: its header says {rate} Hz, outside the supported sample rates "
            f"({MIN_SAMPLING_RATE}..{MAX_SAMPLING_RATE} Hz); the header is probably corrupt"
        )


def check_header_channels(channels: int, name: str) -> None:
    """AudioError naming the channel count when a file's header announces an absurd one."""
    if not 1 <= channels <= MAX_CHANNELS:
        raise AudioError(
            f"{name}: its header says {channels} channels; sertk reads 1 to {MAX_CHANNELS} "
            "channels, so the header is probably corrupt"
        )


def finite_or_raise(
    signal: np.ndarray, name: str, sampling_rate: int, *, offset: int = 0, read: int | None = None
) -> None:
    """AudioError when ``signal`` (``[samples]`` or ``[channels, samples]``, starting ``offset``
    samples into the recording; ``read`` samples of it decoded so far, None: all of it) holds
    NaN or inf, saying how many and where the first one is."""
    bad = ~np.isfinite(signal)
    if bad.any():
        first = offset + int(np.flatnonzero(bad.reshape(-1, signal.shape[-1]).any(axis=0))[0])
        where = "" if read is None else f" in its first {read / sampling_rate:.1f} s"
        raise AudioError(
            f"{name}: contains {int(bad.sum())} non-finite samples (NaN or inf){where}, the first "
            f"at {first / sampling_rate:.3f} s; clean the audio or re-export it"
        )
