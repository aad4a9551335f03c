"""Pure preprocessing functions: numpy in, new float32 numpy out, no I/O and no state.

Signals are ``[samples]`` or ``[channels, samples]``; inputs are never modified and outputs never
share memory with them. A bad signal raises AudioError, a bad option ConfigError.
"""

from __future__ import annotations

import math

import numpy as np

from sertk.audio._checks import as_signal, number
from sertk.audio.loading import check_rate
from sertk.audio.speech import frame_levels
from sertk.errors import ConfigError

CROP_POLICIES = ("start", "center", "random")
_SILENCE_RMS = 1e-8  # about -160 dBFS: below this a signal is treated as digital silence


def crop_or_pad(
    signal: np.ndarray,
    length: int,
    *,
    policy: str = "start",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Cut or zero-pad the last axis to exactly ``length`` samples.

    ``policy``: "start" keeps the first ``length`` samples and pads at the end (the reference
    system); "center" crops the middle and pads both sides equally; "random" crops at an offset
    drawn from ``rng`` (required; one draw per call, even when padding) and pads at the end.

    >>> crop_or_pad(np.ones(3, dtype=np.float32), 5, policy="center")
    array([0., 1., 1., 1., 0.], dtype=float32)
    """
    array = as_signal(signal)
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length < 1:
        raise ConfigError(f"length must be a positive number of samples, got {length!r}")
    if policy not in CROP_POLICIES:
        raise ConfigError(f"crop policy must be one of {', '.join(CROP_POLICIES)}; got {policy!r}")
    if policy == "random" and not isinstance(rng, np.random.Generator):
        raise ConfigError("crop policy 'random' needs rng=numpy.random.default_rng(seed)")
    excess = array.shape[-1] - length
    if policy == "random":
        offset = int(rng.integers(0, max(excess, 0) + 1))
    else:
        offset = excess // 2 if policy == "center" else 0
    if excess >= 0:
        return array[..., offset : offset + length].copy()
    out = np.zeros(array.shape[:-1] + (length,), dtype=np.float32)
    left = -excess // 2 if policy == "center" else 0
    out[..., left : left + array.shape[-1]] = array
    return out


def normalize_peak(signal: np.ndarray, *, peak: float = 0.99) -> np.ndarray:
    """Scale so the largest absolute sample (over all channels) is ``peak``; silence stays zero."""
    array = as_signal(signal)
    peak = number("peak", peak, low=1e-6, high=1e6)
    top = float(np.max(np.abs(array))) if array.size else 0.0
    if top == 0.0:
        return array.copy()
    return (array * np.float32(peak / top)).astype(np.float32)


def normalize_loudness(
    signal: np.ndarray, sampling_rate: int, *, target_db: float = -23.0
) -> np.ndarray:
    """Scale to an RMS level of ``target_db`` dBFS over the whole signal.

    dBFS here is ``20 * log10(rms)`` with full scale 1.0 (a full-scale sine is -3.01 dBFS); it is not
    LUFS (no K-weighting, no gating). No clipping is applied: peaks may exceed 1.0 when the crest
    factor is above ``-target_db`` dB. Silence (RMS below -160 dBFS) is returned unchanged.
    """
    array = as_signal(signal)
    check_rate(sampling_rate)
    target_db = number("target_db", target_db, low=-120.0, high=0.0)
    rms = float(np.sqrt(np.mean(np.square(array, dtype=np.float64)))) if array.size else 0.0
    if rms < _SILENCE_RMS:
        return array.copy()
    return (array * np.float32(10.0 ** (target_db / 20.0) / rms)).astype(np.float32)


def _trim_active(
    db: np.ndarray, threshold_db: float, floor_db: float, noise_margin_db: float | None
) -> np.ndarray:
    """Frames loud enough to keep (see trim_silence for the rule)."""
    threshold_db = number("threshold_db", threshold_db, low=-200.0, high=0.0)
    floor_db = number("floor_db", floor_db, low=-200.0, high=0.0)
    peak = float(db.max())
    threshold = peak + threshold_db
    if noise_margin_db is not None:
        margin = number("noise_margin_db", noise_margin_db, low=0.0, high=200.0)
        noise = float(np.percentile(db, 5))
        if peak - noise >= 2 * margin:
            threshold = max(threshold, noise + margin)
    return db >= max(threshold, floor_db)


def trim_silence(
    signal: np.ndarray,
    sampling_rate: int,
    *,
    threshold_db: float = -40.0,
    floor_db: float = -60.0,
    noise_margin_db: float | None = 6.0,
    frame_ms: float = 25.0,
    hop_ms: float = 10.0,
    margin_ms: float = 100.0,
) -> np.ndarray:
    """Cut leading and trailing silence, keeping ``margin_ms`` around the sound.

    A frame (levels from :func:`sertk.audio.speech.frame_levels`) is sound when it is within
    ``-threshold_db`` dB of the loudest frame, above ``floor_db`` dBFS and, when the quietest
    frames (5th percentile) are at least ``2 * noise_margin_db`` below the loudest,
    ``noise_margin_db`` above them. This is the rule bundles were trained with (``Preprocess``'s
    ``trim_silence``), kept as it is so their features do not change; it looks at one utterance
    at a time. Long recordings are split with :func:`sertk.audio.speech_regions` instead, whose
    rule keeps quiet speakers. A signal with no sound at all is returned unchanged.
    """
    array = as_signal(signal)
    margin_ms = number("margin_ms", margin_ms, low=0.0, high=1e6)
    if array.shape[-1] == 0:
        return array.copy()
    db, frame, hop = frame_levels(array, sampling_rate, frame_ms=frame_ms, hop_ms=hop_ms)
    active = np.flatnonzero(_trim_active(db, threshold_db, floor_db, noise_margin_db))
    if len(active) == 0:
        return array.copy()
    margin = round(margin_ms * sampling_rate / 1000)
    start = max(0, active[0] * hop - margin)
    end = min(array.shape[-1], active[-1] * hop + frame + margin)
    return array[..., start:end].copy()


def denoise(
    signal: np.ndarray,
    sampling_rate: int,
    *,
    noise_fraction: float = 0.1,
    over_subtraction: float = 2.0,
    floor: float = 0.05,
    frame_ms: float = 32.0,
) -> np.ndarray:
    """Spectral subtraction; same shape as the input.

    The noise power spectrum (per channel) is the mean over the quietest ``noise_fraction`` of STFT
    frames, so the signal needs some noise-only stretches (pauses); a steady tone is noise to it.
    Each bin's power gain is ``max(1 - over_subtraction * noise / power, floor)``: ``floor`` (0.05 is
    about -13 dB) bounds the attenuation, which limits musical noise. Signals shorter than one
    frame are returned unchanged.
    """
    array = as_signal(signal)
    check_rate(sampling_rate)
    options = (
        number("noise_fraction", noise_fraction, low=1e-6, high=1.0),
        number("over_subtraction", over_subtraction, low=0.0, high=100.0),
        number("floor", floor, low=0.0, high=1.0),
    )
    frame_ms = number("frame_ms", frame_ms, low=1.0, high=1000.0)
    nperseg = 2 ** math.ceil(math.log2(max(16.0, frame_ms * sampling_rate / 1000)))
    if array.shape[-1] < nperseg:
        return array.copy()
    if array.ndim == 1:
        return _denoise_channel(array, nperseg, *options)
    return np.stack([_denoise_channel(channel, nperseg, *options) for channel in array])


def _denoise_channel(
    channel: np.ndarray, nperseg: int, fraction: float, over: float, floor: float
) -> np.ndarray:
    from scipy.signal import istft, stft

    _, _, spectrum = stft(channel, nperseg=nperseg, noverlap=nperseg // 2, window="hann")
    power = np.abs(spectrum) ** 2
    # edge frames are half zero padding: keep them out of the quietest-frame pick
    energy = power.sum(axis=0)[1:-1] if power.shape[1] > 2 else power.sum(axis=0)
    offset = 1 if power.shape[1] > 2 else 0
    quietest = np.argsort(energy)[: max(1, math.ceil(fraction * len(energy)))] + offset
    noise = power[:, quietest].mean(axis=1, keepdims=True)
    gain = np.sqrt(np.clip(1.0 - over * noise / np.maximum(power, 1e-30), floor, 1.0))
    _, cleaned = istft(spectrum * gain, nperseg=nperseg, noverlap=nperseg // 2, window="hann")
    out = np.zeros(len(channel), dtype=np.float32)
    usable = min(len(channel), len(cleaned))
    out[:usable] = cleaned[:usable]
    return out
