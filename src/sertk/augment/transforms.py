"""Seeded, on-the-fly data augmentation for training (numpy + soxr; no torch).

Waveform steps, applied in this order, each with its own probability ``*_p``:

* ``speed``: resample-based speed perturbation (Kaldi style): a factor ``f`` plays the signal
  ``f`` times faster, so its length becomes ``len / f`` and its pitch rises by ``f``.
* ``time_stretch``: a phase vocoder changes the tempo by a rate ``r`` (length ``len / r``) and keeps
  the pitch. Phase vocoders smear transients a little ("phasiness"); fine for augmentation.
* ``pitch_shift``: ``s`` semitones (ratio ``2 ** (s / 12)``) by time-stretching with the phase
  vocoder and resampling back, so the length is kept (librosa's method).
* ``gain``: a gain in dB (no clipping: signals are floats).
* ``noise``: white Gaussian noise at an SNR in dB relative to the mean power of the whole (already
  augmented) signal; the noise is scaled by its own measured power, so the SNR is exact. Digital
  silence gets no noise (an SNR is undefined there).

Feature step: SpecAugment-style masking of ``[frames, dim]`` (or ``[layers, frames, dim]``)
features with probability ``mask_p``: ``time_masks`` spans of frames and ``freq_masks`` spans of
feature bands, widths drawn from ``time_mask_width``/``freq_mask_width`` (inclusive ranges). Spans
along one axis never overlap, so exactly the sum of the drawn widths is masked. Masked cells get
the mean of the input features (``mask_value="mean"``, one scalar) or 0 (``"zero"``).

Every random choice comes from the ``numpy.random.Generator`` passed in; each waveform step draws
its coin and its parameter every call (used or not), so changing one step's probability does not
shift the others. A config with every probability 0 is the identity (a float32 copy).

>>> import numpy as np
>>> signal = np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32)  # 1 s
>>> config = AugmentConfig(noise_p=0.5, speed_p=1.0, speed=(1.25, 1.25))
>>> augment_waveform(signal, 16000, config, np.random.default_rng(0)).shape  # 1.25x faster
(12800,)
>>> first = Augmenter(config, seed=0).waveform(signal, 16000, epoch=3, index=17)
>>> again = Augmenter(config, seed=0).waveform(signal, 16000, epoch=3, index=17)
>>> bool(np.array_equal(first, again))  # item 17 of epoch 3 is the same in every worker
True
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import soxr

from sertk.audio import check_signal
from sertk.errors import ConfigError, FeatureError

MASK_VALUES = ("mean", "zero")
# (field, lowest, highest) of every range; ranges are inclusive [min, max] pairs
_RANGES = (
    ("noise_snr_db", -30.0, 100.0),
    ("gain_db", -60.0, 60.0),
    ("speed", 0.5, 2.0),
    ("time_stretch", 0.5, 2.0),
    ("pitch_shift", -12.0, 12.0),
)
# waveform steps in the order they are applied -> the field holding their range
_WAVEFORM_STEPS = {
    "speed": "speed",
    "time_stretch": "time_stretch",
    "pitch_shift": "pitch_shift",
    "gain": "gain_db",
    "noise": "noise_snr_db",
}


@dataclasses.dataclass(frozen=True)
class AugmentConfig:
    """Probabilities (``*_p`` in [0, 1]) and ranges of each augmentation; all off by default."""

    noise_p: float = 0.0
    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    gain_p: float = 0.0
    gain_db: tuple[float, float] = (-6.0, 6.0)
    speed_p: float = 0.0
    speed: tuple[float, float] = (0.9, 1.1)
    time_stretch_p: float = 0.0
    time_stretch: tuple[float, float] = (0.9, 1.1)
    pitch_shift_p: float = 0.0
    pitch_shift: tuple[float, float] = (-2.0, 2.0)
    mask_p: float = 0.0
    time_masks: int = 2
    time_mask_width: tuple[int, int] = (0, 20)
    freq_masks: int = 2
    freq_mask_width: tuple[int, int] = (0, 8)
    mask_value: Literal["mean", "zero"] = "mean"

    def __post_init__(self) -> None:
        for step in (*_WAVEFORM_STEPS, "mask"):
            name = f"{step}_p"
            object.__setattr__(self, name, _number(name, getattr(self, name), 0.0, 1.0))
        for name, low, high in _RANGES:
            pair = _pair(name, getattr(self, name), lambda v, n, a=low, b=high: _number(n, v, a, b))
            object.__setattr__(self, name, pair)
        for name in ("time_masks", "freq_masks"):
            object.__setattr__(self, name, _count(getattr(self, name), name))
        for name in ("time_mask_width", "freq_mask_width"):
            object.__setattr__(self, name, _pair(name, getattr(self, name), _count))
        if self.mask_value not in MASK_VALUES:
            raise ConfigError(
                f"augment.mask_value must be one of {', '.join(MASK_VALUES)}, "
                f"got {self.mask_value!r}"
            )

    @property
    def waveform_enabled(self) -> bool:
        """Whether ``augment_waveform`` can change anything."""
        return any(getattr(self, f"{step}_p") > 0 for step in _WAVEFORM_STEPS)

    @property
    def features_enabled(self) -> bool:
        """Whether ``augment_features`` can change anything."""
        return self.mask_p > 0 and (self.time_masks > 0 or self.freq_masks > 0)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML dict (ranges as lists)."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AugmentConfig:
        """Rebuild from :meth:`to_dict` output; missing keys take defaults, unknown keys fail."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"augment config must be a mapping, got {type(data).__name__}")
        known = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise ConfigError(
                f"unknown augment keys: {', '.join(unknown)}; allowed: {', '.join(known)}"
            )
        return cls(**data)


def _number(name: str, value: Any, low: float, high: float) -> float:
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
        if math.isfinite(value) and low <= value <= high:
            return float(value)
    raise ConfigError(f"augment.{name} must be a number in [{low}, {high}], got {value!r}")


def _count(value: Any, name: str, prefix: str = "augment.") -> int:
    if isinstance(value, int | np.integer) and not isinstance(value, bool) and value >= 0:
        return int(value)
    raise ConfigError(f"{prefix}{name} must be a whole number >= 0, got {value!r}")


def _pair(name: str, value: Any, check: Any) -> tuple:
    if isinstance(value, list | tuple) and len(value) == 2:
        low, high = (check(v, f"{name}[{i}]") for i, v in enumerate(value))
        if low <= high:
            return (low, high)
    raise ConfigError(f"augment.{name} must be a [min, max] pair with min <= max, got {value!r}")


# --- waveform ------------------------------------------------------------------------------


def augment_waveform(
    signal: np.ndarray, sampling_rate: int, config: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """Augment ``[samples]`` or ``[channels, samples]``; returns a new float32 array.

    Speed and time stretch change the length; everything else keeps it. AudioError for a bad
    signal (see :func:`sertk.audio.check_signal`).
    """
    array = check_signal(signal, sampling_rate)
    if not config.waveform_enabled:
        return array
    draws = {}
    for step, field in _WAVEFORM_STEPS.items():
        low, high = getattr(config, field)
        coin, value = rng.random(), rng.uniform(low, high)
        draws[step] = value if coin < getattr(config, f"{step}_p") else None
    out = array.astype(np.float64)
    if draws["speed"] is not None and draws["speed"] != 1.0:
        out = _resample(out, sampling_rate * draws["speed"], sampling_rate)
    if draws["time_stretch"] is not None and draws["time_stretch"] != 1.0:
        out = time_stretch(out, draws["time_stretch"], sampling_rate=sampling_rate)
    if draws["pitch_shift"] is not None and draws["pitch_shift"] != 0.0:
        out = pitch_shift(out, draws["pitch_shift"], sampling_rate=sampling_rate)
    if draws["gain"] is not None:
        out = out * 10.0 ** (draws["gain"] / 20.0)
    if draws["noise"] is not None:
        out = add_noise(out, draws["noise"], rng)
    return np.ascontiguousarray(out, dtype=np.float32)


def add_noise(signal: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """``signal`` plus white Gaussian noise exactly ``snr_db`` below its mean power (float64)."""
    power = float(np.mean(np.square(signal, dtype=np.float64)))
    if power == 0.0:
        return np.array(signal, dtype=np.float64)
    noise = rng.standard_normal(signal.shape)
    noise *= math.sqrt(power / 10.0 ** (snr_db / 10.0) / np.mean(noise**2))
    return signal + noise


def change_speed(signal: np.ndarray, factor: float, *, sampling_rate: int) -> np.ndarray:
    """Speed perturbation: tempo and pitch times ``factor`` (resampling), float32 with
    ``len / factor`` samples. The speed step of :func:`augment_waveform` with a fixed factor;
    also what test-time augmentation (``features.tta_speeds``) applies."""
    if isinstance(factor, bool) or not isinstance(factor, int | float) or not 0.5 <= factor <= 2:
        raise ConfigError(f"a speed factor must be a number in [0.5, 2], got {factor!r}")
    array = check_signal(signal, sampling_rate).astype(np.float64)
    if factor == 1.0:
        return array.astype(np.float32)
    out = _resample(array, sampling_rate * factor, sampling_rate)
    return np.ascontiguousarray(out, dtype=np.float32)


def _resample(signal: np.ndarray, in_rate: float, out_rate: float) -> np.ndarray:
    """soxr (HQ) along the last axis with fractional rates; ``len * out_rate / in_rate`` samples."""
    out = soxr.resample(np.ascontiguousarray(signal.T), in_rate, out_rate, quality="HQ")
    return np.ascontiguousarray(out.T, dtype=np.float64)


def time_stretch(signal: np.ndarray, rate: float, *, sampling_rate: int) -> np.ndarray:
    """Phase-vocoder tempo change of ``[samples]``/``[channels, samples]``: ``round(len / rate)``
    samples, pitch kept. FFT size ~64 ms (1024 at 16 kHz), hop a quarter of it, Hann window."""
    if signal.ndim == 2:
        return np.stack([time_stretch(c, rate, sampling_rate=sampling_rate) for c in signal])
    n_fft = 1 << max(8, round(math.log2(0.064 * sampling_rate)))
    hop = n_fft // 4
    length = max(1, round(signal.shape[-1] / rate))
    spectrum = _stft(signal, n_fft, hop)
    return _istft(_phase_vocoder(spectrum, rate, hop, n_fft), n_fft, hop, length)


def pitch_shift(signal: np.ndarray, semitones: float, *, sampling_rate: int) -> np.ndarray:
    """Shift the pitch by ``semitones`` and keep the length: stretch by the frequency ratio, then
    resample by it (as ``librosa.effects.pitch_shift`` does)."""
    ratio = 2.0 ** (semitones / 12.0)
    stretched = time_stretch(signal, 1.0 / ratio, sampling_rate=sampling_rate)
    shifted = _resample(stretched, sampling_rate * ratio, sampling_rate)
    length = signal.shape[-1]
    if shifted.shape[-1] >= length:
        return shifted[..., :length]
    return np.pad(shifted, [(0, 0)] * (shifted.ndim - 1) + [(0, length - shifted.shape[-1])])


def _window(n_fft: int) -> np.ndarray:
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n_fft) / n_fft)  # periodic Hann


def _stft(signal: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    """Centred STFT ``[frames, bins]`` (zero padding of ``n_fft // 2`` on both sides)."""
    padded = np.pad(signal, n_fft // 2)
    if padded.shape[0] < n_fft:
        padded = np.pad(padded, (0, n_fft - padded.shape[0]))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]
    return np.fft.rfft(frames * _window(n_fft), axis=1)


def _phase_vocoder(spectrum: np.ndarray, rate: float, hop: int, n_fft: int) -> np.ndarray:
    """Resample ``[frames, bins]`` in time by ``rate``, advancing each bin's phase coherently."""
    steps = np.arange(0.0, spectrum.shape[0], rate)
    padded = np.concatenate([spectrum, np.zeros((2, spectrum.shape[1]), spectrum.dtype)])
    index = steps.astype(np.int64)
    alpha = (steps - index)[:, None]
    left, right = padded[index], padded[index + 1]
    magnitude = (1.0 - alpha) * np.abs(left) + alpha * np.abs(right)
    expected = 2.0 * np.pi * hop * np.arange(spectrum.shape[1]) / n_fft  # phase advance per hop
    delta = np.angle(right) - np.angle(left) - expected
    delta -= 2.0 * np.pi * np.round(delta / (2.0 * np.pi))
    increments = expected + delta
    phase = np.angle(spectrum[0]) + np.concatenate(
        [np.zeros((1, spectrum.shape[1])), np.cumsum(increments[:-1], axis=0)]
    )
    return magnitude * np.exp(1j * phase)


def _istft(spectrum: np.ndarray, n_fft: int, hop: int, length: int) -> np.ndarray:
    """Overlap-add inverse of :func:`_stft`, cut (or zero-padded) to ``length`` samples."""
    window = _window(n_fft)
    frames = np.fft.irfft(spectrum, n=n_fft, axis=1) * window
    total = n_fft + hop * (frames.shape[0] - 1)
    out, norm = np.zeros(total), np.zeros(total)
    for i, frame in enumerate(frames):
        out[i * hop : i * hop + n_fft] += frame
        norm[i * hop : i * hop + n_fft] += window**2
    nonzero = norm > 1e-10
    out[nonzero] /= norm[nonzero]
    out = out[n_fft // 2 : n_fft // 2 + length]
    return np.pad(out, (0, length - out.shape[0]))


# --- features ------------------------------------------------------------------------------


def augment_features(
    features: np.ndarray, config: AugmentConfig, rng: np.random.Generator
) -> np.ndarray:
    """SpecAugment-style masks on ``[frames, dim]`` (or ``[layers, frames, dim]``, same masks on
    every layer); returns a new float32 array. FeatureError for a bad array."""
    array = np.array(features, dtype=np.float32)
    if array.ndim not in (2, 3) or array.shape[-1] == 0 or array.shape[-2] == 0:
        raise FeatureError(
            f"features: expected [frames, dim] or [layers, frames, dim], got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise FeatureError("features: contain NaN or inf; check the feature extractor")
    if not config.features_enabled or rng.random() >= config.mask_p:
        return array
    fill = float(array.mean()) if config.mask_value == "mean" else 0.0
    frames, dim = array.shape[-2], array.shape[-1]
    for start, stop in mask_spans(frames, config.time_masks, config.time_mask_width, rng):
        array[..., start:stop, :] = fill
    for start, stop in mask_spans(dim, config.freq_masks, config.freq_mask_width, rng):
        array[..., start:stop] = fill
    return array


def mask_spans(
    length: int, count: int, width: tuple[int, int], rng: np.random.Generator
) -> list[tuple[int, int]]:
    """``count`` non-overlapping ``(start, stop)`` spans in ``[0, length)``, widths drawn from the
    inclusive range ``width`` (shrunk proportionally if they cannot all fit), placed uniformly."""
    if count == 0:
        return []
    widths = rng.integers(width[0], width[1] + 1, size=count)
    if widths.sum() > length:
        widths = widths * length // widths.sum()
    cuts = np.sort(rng.integers(0, length - widths.sum() + 1, size=count))
    starts = cuts + np.concatenate([[0], np.cumsum(widths)[:-1]])
    return [(int(s), int(s + w)) for s, w in zip(starts, widths, strict=True)]


# --- per-item helper -----------------------------------------------------------------------


class Augmenter:
    """Reproducible augmentation for a training dataset, independent of worker order.

    The generator of item ``index`` in ``epoch`` is seeded from ``(seed, epoch, index, stream)``
    alone, so any worker, in any order, gives the same result for that item and epoch.

    >>> import numpy as np
    >>> signal = np.sin(2 * np.pi * 220 * np.arange(16000) / 16000).astype(np.float32)
    >>> augment = Augmenter(AugmentConfig(noise_p=1.0, noise_snr_db=(20.0, 20.0)), seed=0)
    >>> out = augment.waveform(signal, 16000, epoch=0, index=5)
    >>> round(float(10 * np.log10(np.mean(signal**2) / np.mean((out - signal) ** 2))))  # SNR
    20
    """

    _WAVEFORM, _FEATURES = 1, 2  # stream ids: fixed length keeps the seed tuples distinct

    def __init__(self, config: AugmentConfig, seed: int = 0) -> None:
        if not isinstance(config, AugmentConfig):
            raise ConfigError(f"Augmenter needs an AugmentConfig, got {type(config).__name__}")
        self.config = config
        self.seed = _count(seed, "seed", "Augmenter ")

    def rng(self, epoch: int, index: int, stream: int = _WAVEFORM) -> np.random.Generator:
        """The generator for one item of one epoch (``stream`` 1: waveform, 2: features)."""
        return np.random.default_rng(
            [self.seed, _count(epoch, "epoch", ""), _count(index, "index", ""), stream]
        )

    def waveform(
        self, signal: np.ndarray, sampling_rate: int, epoch: int, index: int
    ) -> np.ndarray:
        """:func:`augment_waveform` with this item's generator."""
        return augment_waveform(signal, sampling_rate, self.config, self.rng(epoch, index))

    def features(self, features: np.ndarray, epoch: int, index: int) -> np.ndarray:
        """:func:`augment_features` with this item's generator."""
        return augment_features(features, self.config, self.rng(epoch, index, self._FEATURES))

    __call__ = waveform
