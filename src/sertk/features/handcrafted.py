"""Hand-crafted acoustic features: frame-level descriptors (``Lld``) and their utterance functionals.

Everything is vectorised numpy/scipy over all frames at once (no librosa at runtime). Frames are
centred every ``hop_s`` seconds (``frames = 1 + samples // hop``), like librosa with ``center=True``.
The shared pieces live beside this module: framing and filters in :mod:`sertk.features.frames`,
YIN in :mod:`sertk.features.pitch`, the functionals in :mod:`sertk.features.statistics`.

>>> import numpy as np
>>> t = np.arange(16000) / 16000
>>> lld = Lld()
>>> lld(np.sin(2 * np.pi * 200 * t).astype(np.float32), 16000).shape
(101, 50)
>>> Functionals()(np.sin(2 * np.pi * 200 * t).astype(np.float32), 16000).shape
(1, 550)
"""

from __future__ import annotations

import numpy as np
from scipy.fft import dct, rfft

from sertk.errors import FeatureError
from sertk.features.frames import (
    delta,
    frame_signal,
    frame_sizes,
    hann_window,
    mel_filterbank,
    mono_float64,
)
from sertk.features.pitch import yin
from sertk.features.scratch import scratch
from sertk.features.statistics import STATISTICS, masked_statistics

__all__ = ["BASE_COLUMNS", "STATISTICS", "Functionals", "Lld", "masked_statistics", "yin"]

_EPS = 1e-10
BASE_COLUMNS = (
    "log_energy",
    "zcr",
    "envelope",
    "spectral_centroid",
    "spectral_entropy",
    "spectral_peak",
    "spectral_rolloff",
    "spectral_flatness",
    "spectral_flux",
    "f0",
    "voicing_prob",
    "voiced",
)


def _spectral(power: np.ndarray, freqs: np.ndarray, rolloff: float) -> np.ndarray:
    """Centroid, entropy, peak, rolloff, flatness and flux ``[frames, 6]`` of a power spectrum."""
    shape = power.shape
    total = power.sum(axis=1, keepdims=True) + _EPS
    dist = power / total
    centroid = dist @ freqs
    work = np.add(dist, _EPS, out=scratch("spectral.work", shape))
    np.log(work, out=work)
    work *= dist
    entropy = -work.sum(axis=1) / np.log(shape[1])
    peak = freqs[np.argmax(power, axis=1)]
    above = np.cumsum(dist, axis=1, out=work) >= rolloff
    roll = freqs[np.argmax(above, axis=1)]
    log_power = np.log(np.add(power, _EPS, out=work), out=work)
    flatness = np.exp(np.mean(log_power, axis=1)) / (power.mean(axis=1) + _EPS)
    magnitude = np.sqrt(dist, out=dist)
    step = np.subtract(magnitude[1:], magnitude[:-1], out=work[1:])
    flux = np.zeros(shape[0])
    flux[1:] = np.sqrt(np.sum(np.square(step, out=step), axis=1))
    return np.stack([centroid, entropy, peak, roll, flatness, flux], axis=1)


class Lld:
    """Frame-level low-level descriptors ``[frames, dim]`` at ``1 / hop_s`` frames per second.

    Columns (``columns``): log energy, zero-crossing rate (per sample), peak amplitude, spectral
    centroid / entropy (normalised, 0..1) / peak / rolloff (Hz), flatness (0..1), flux, YIN F0 (Hz, 0 when
    unvoiced), voicing probability, voiced flag (0/1), ``mfcc_0..mfcc_{n_mfcc-1}``; then, with
    ``deltas=True``, the delta of every column (suffix ``_d``).

    >>> Lld(n_mfcc=13, deltas=True).dim
    50
    """

    name = "lld"

    def __init__(
        self,
        *,
        frame_s: float = 0.025,
        hop_s: float = 0.010,
        n_mfcc: int = 13,
        n_mels: int = 40,
        fmin: float = 60.0,
        fmax: float = 500.0,
        voicing_threshold: float = 0.25,
        rolloff: float = 0.85,
        deltas: bool = True,
    ) -> None:
        if not 0.0 < hop_s <= frame_s <= 0.2:
            raise FeatureError(
                f"need 0 < hop_s <= frame_s <= 0.2 s, got hop_s={hop_s}, frame_s={frame_s}"
            )
        if not 1 <= n_mfcc <= n_mels:
            raise FeatureError(f"need 1 <= n_mfcc <= n_mels, got n_mfcc={n_mfcc}, n_mels={n_mels}")
        if not 20.0 <= fmin < fmax:
            raise FeatureError(f"need 20 <= fmin < fmax (Hz) for F0, got fmin={fmin}, fmax={fmax}")
        if not 0.0 < rolloff < 1.0 or not 0.0 < voicing_threshold < 1.0:
            raise FeatureError("rolloff and voicing_threshold must lie strictly between 0 and 1")
        self.frame_s, self.hop_s, self.n_mfcc, self.n_mels = frame_s, hop_s, n_mfcc, n_mels
        self.fmin, self.fmax, self.voicing_threshold = fmin, fmax, voicing_threshold
        self.rolloff, self.deltas = rolloff, deltas
        base = list(BASE_COLUMNS) + [f"mfcc_{i}" for i in range(n_mfcc)]
        self.columns: tuple[str, ...] = tuple(base + ([f"{c}_d" for c in base] if deltas else []))
        self.dim = len(self.columns)
        self.frame_rate = 1.0 / hop_s

    def config(self) -> dict:
        """JSON-serialisable settings; ``Lld(**{k: v for k, v in config.items() if k != "name"})``."""
        keys = (
            "frame_s",
            "hop_s",
            "n_mfcc",
            "n_mels",
            "fmin",
            "fmax",
            "voicing_threshold",
            "rolloff",
            "deltas",
        )
        return {"name": self.name, **{k: getattr(self, k) for k in keys}}

    def __call__(self, signal: np.ndarray, sampling_rate: int) -> np.ndarray:
        """LLDs ``[1 + samples // hop, dim]`` float32 of a ``[samples]`` (or multichannel) signal."""
        return self.describe(mono_float64(signal, sampling_rate), sampling_rate)[0]

    def describe(self, x: np.ndarray, sampling_rate: int) -> tuple[np.ndarray, np.ndarray]:
        """LLDs ``[frames, dim]`` float32 of a float64 ``[samples]`` signal (as returned by
        ``mono_float64``) and the power spectrum ``[frames, n_fft // 2 + 1]`` float64 of its
        Hann-windowed frames, which the spectral columns and MFCCs come from (so a caller that
        needs other bands of it, like ``EmotionFunctionals``, does not compute it again)."""
        if self.fmax >= sampling_rate / 2:
            raise FeatureError(
                f"F0 fmax={self.fmax} Hz must be below Nyquist ({sampling_rate / 2} Hz)"
            )
        hop, length, n_fft = frame_sizes(sampling_rate, self.frame_s, self.hop_s)
        frames = frame_signal(x, length, hop)
        power = power_spectrum(frames, n_fft)
        n_base = len(BASE_COLUMNS) + self.n_mfcc
        base = np.empty((len(frames), n_base))
        base[:, :3] = _waveform(frames)
        base[:, 3:9] = _spectral(power, np.fft.rfftfreq(n_fft, 1.0 / sampling_rate), self.rolloff)
        pitch = yin(
            x, sampling_rate, hop=hop, fmin=self.fmin, fmax=self.fmax,
            threshold=self.voicing_threshold,
        )  # fmt: skip
        base[:, 9:12] = np.column_stack(pitch)
        filters = mel_filterbank(sampling_rate, n_fft, self.n_mels, 0.0, sampling_rate / 2)
        log_mel = np.log(power @ filters.T + _EPS)
        base[:, 12:] = dct(log_mel, type=2, norm="ortho", axis=1)[:, : self.n_mfcc]
        out = np.empty((len(frames), self.dim), dtype=np.float32)
        out[:, :n_base] = base
        if self.deltas:
            out[:, n_base:] = delta(base)
        return out, power


def power_spectrum(frames: np.ndarray, n_fft: int) -> np.ndarray:
    """``|rfft|^2`` ``[frames, n_fft // 2 + 1]`` of ``frames`` ``[frames, length]`` under a Hann
    window (``np.hanning(length + 2)[1:-1]``: no zero end points)."""
    length = frames.shape[1]
    padded = scratch("lld.windowed", (len(frames), n_fft))  # zero padded here, not in scipy
    padded[:, length:] = 0.0
    np.multiply(frames, hann_window(length), out=padded[:, :length])
    power = np.abs(rfft(padded, axis=1))
    return np.square(power, out=power)


def _waveform(frames: np.ndarray) -> np.ndarray:
    """Log energy, zero-crossing rate and peak amplitude ``[frames, 3]``."""
    work = scratch("lld.work", frames.shape)
    log_energy = np.log(np.mean(np.square(frames, out=work), axis=1) + _EPS)
    length = frames.shape[1]
    if length > 1:
        signs = np.signbit(frames)
        zcr = np.count_nonzero(signs[:, 1:] != signs[:, :-1], axis=1) / (length - 1)
    else:
        zcr = np.zeros(len(frames))
    envelope = np.max(np.abs(frames, out=work), axis=1)
    return np.column_stack([log_energy, zcr, envelope])


class Functionals:
    """Utterance functionals ``[1, dim]`` of ``Lld`` descriptors (``frame_rate = 0``).

    Every LLD column gets ``statistics`` (default: mean, std, percentiles 1/25/50/75/99, range p99-p1,
    linear-regression slope per frame, skewness, excess kurtosis); the F0 column (and its delta) uses
    voiced frames only. Columns are named ``<lld column>__<statistic>``.

    >>> Functionals(lld={"n_mfcc": 13, "deltas": True}).dim
    550
    """

    name = "functionals"
    frame_rate = 0.0

    def __init__(
        self, *, lld: dict | None = None, statistics: tuple[str, ...] | list[str] = STATISTICS
    ) -> None:
        unknown = sorted(set(statistics) - set(STATISTICS))
        if unknown or not statistics:
            raise FeatureError(
                f"unknown statistics {unknown or statistics}; choose from {list(STATISTICS)}"
            )
        self.lld = Lld(**{k: v for k, v in (lld or {}).items() if k != "name"})
        self.statistics = tuple(s for s in STATISTICS if s in statistics)
        self._rows = [STATISTICS.index(s) for s in self.statistics]
        self.columns = tuple(f"{c}__{s}" for c in self.lld.columns for s in self.statistics)
        self.dim = len(self.columns)
        self._voiced_only = np.array([c in ("f0", "f0_d") for c in self.lld.columns])

    def config(self) -> dict:
        """JSON-serialisable settings, nesting the ``Lld`` config."""
        return {"name": self.name, "lld": self.lld.config(), "statistics": list(self.statistics)}

    def __call__(self, signal: np.ndarray, sampling_rate: int) -> np.ndarray:
        """Functionals ``[1, dim]`` float32 of one utterance."""
        return self.from_lld(self.lld(signal, sampling_rate))

    def from_lld(self, lld: np.ndarray) -> np.ndarray:
        """Functionals ``[1, dim]`` of precomputed ``Lld`` output ``[frames, lld.dim]``."""
        if lld.ndim != 2 or lld.shape[1] != self.lld.dim or len(lld) == 0:
            raise FeatureError(f"expected LLDs [frames>0, {self.lld.dim}], got shape {lld.shape}")
        if not np.isfinite(lld).all():
            raise FeatureError("LLDs contain NaN or infinite values: recompute them with Lld")
        values = lld.astype(np.float64)
        voiced = values[:, self.lld.columns.index("voiced")] > 0.5
        mask = np.ones_like(values, dtype=bool)
        mask[:, self._voiced_only] = voiced[:, None]
        stats = masked_statistics(values, mask)[self._rows]  # [statistics, dim]
        return stats.T.reshape(1, -1).astype(np.float32)
