"""Hand-crafted acoustic features: frame-level descriptors (``Lld``) and their utterance functionals.

Everything is vectorised numpy/scipy over all frames at once (no librosa at runtime). Frames are
centred every ``hop_s`` seconds (``frames = 1 + samples // hop``), like librosa with ``center=True``.

>>> import numpy as np
>>> t = np.arange(16000) / 16000
>>> lld = Lld()
>>> lld(np.sin(2 * np.pi * 200 * t).astype(np.float32), 16000).shape
(101, 50)
>>> Functionals()(np.sin(2 * np.pi * 200 * t).astype(np.float32), 16000).shape
(1, 550)
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.fft import dct, irfft, next_fast_len, rfft

from sertk.errors import FeatureError

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
STATISTICS = ("mean", "std", "p1", "p25", "p50", "p75", "p99", "range", "slope", "skew", "kurtosis")


def mono_float64(signal: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Validate and mix down to mono float64 ``[samples]``."""
    if not isinstance(sampling_rate, (int, np.integer)) or not 4000 <= sampling_rate <= 384000:
        raise FeatureError(
            f"sampling_rate must be an integer in [4000, 384000] Hz, got {sampling_rate!r}; "
            "pass the rate the signal was recorded or resampled at"
        )
    x = np.asarray(signal)
    if x.ndim == 2:
        x = x.mean(axis=0)
    if x.ndim != 1 or not np.issubdtype(x.dtype, np.number):
        raise FeatureError(
            f"signal must be numeric [samples] or [channels, samples], got shape {x.shape} "
            f"and dtype {x.dtype}"
        )
    if x.size == 0:
        raise FeatureError("signal is empty: give at least one sample of audio")
    x = x.astype(np.float64)
    if not np.all(np.isfinite(x)):
        raise FeatureError("signal contains NaN or infinite samples: clean or re-decode the audio")
    return x


def frame_signal(x: np.ndarray, frame_length: int, hop: int) -> np.ndarray:
    """Centred frames ``[1 + samples // hop, frame_length]`` of a ``[samples]`` signal (zero padded)."""
    n_frames = 1 + len(x) // hop
    half = frame_length // 2
    padded = np.zeros(half + (n_frames - 1) * hop + frame_length, dtype=x.dtype)
    padded[half : half + len(x)] = x
    return np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop][:n_frames]


def mel_filterbank(
    sampling_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """Triangular HTK-mel filters ``[n_mels, n_fft // 2 + 1]`` with unit area (Slaney norm)."""
    mel = 2595.0 * np.log10(1.0 + np.array([fmin, fmax]) / 700.0)
    hz = 700.0 * (10.0 ** (np.linspace(mel[0], mel[1], n_mels + 2) / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sampling_rate)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling))
    return weights * (2.0 / (upper - lower))


def delta(features: np.ndarray, *, width: int = 2) -> np.ndarray:
    """Regression deltas ``[frames, dim]`` over +-``width`` frames (edges repeated)."""
    padded = np.pad(features, ((width, width), (0, 0)), mode="edge")
    n = len(features)
    num = sum(
        k * (padded[width + k : width + k + n] - padded[width - k : width - k + n])
        for k in range(1, width + 1)
    )
    return num / (2.0 * sum(k * k for k in range(1, width + 1)))


def yin(
    x: np.ndarray,
    sampling_rate: int,
    *,
    hop: int,
    fmin: float = 60.0,
    fmax: float = 500.0,
    threshold: float = 0.25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised YIN F0 tracker over all frames at once.

    Returns ``(f0, voicing_prob, voiced)``, each ``[1 + samples // hop]``; ``f0`` is 0 on unvoiced frames.
    """
    tau_min = max(2, int(sampling_rate // fmax))
    tau_max = int(np.ceil(sampling_rate / fmin))
    win = tau_max + 1  # integration window: one longest period
    frames = frame_signal(x, win + tau_max + 1, hop)
    frames = frames - frames.mean(axis=1, keepdims=True)
    # single precision and a 2-3-5 smooth length make the FFTs ~6x faster; the lag products stay exact enough
    n_fft = next_fast_len(frames.shape[1] + win, real=True)
    single = frames.astype(np.float32)
    spectrum = rfft(single, n_fft, axis=1) * np.conj(rfft(single[:, :win], n_fft, axis=1))
    acf = irfft(spectrum, n_fft, axis=1).astype(np.float64)
    acf = acf[:, : tau_max + 2]
    power = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames**2, axis=1)], axis=1)
    lags = np.arange(tau_max + 2)
    energy_lag = power[:, lags + win] - power[:, lags]
    diff = np.maximum(energy_lag[:, :1] + energy_lag - 2.0 * acf, 0.0)
    cum = np.cumsum(diff[:, 1:], axis=1)
    cmnd = np.ones_like(diff)
    with np.errstate(divide="ignore", invalid="ignore"):
        cmnd[:, 1:] = np.where(cum > _EPS, diff[:, 1:] * lags[1:] / cum, 1.0)
    inner = cmnd[:, tau_min : tau_max + 1]
    is_min = (inner <= cmnd[:, tau_min - 1 : tau_max]) & (
        inner <= cmnd[:, tau_min + 1 : tau_max + 2]
    )
    dips = is_min & (inner < threshold)
    first = np.argmax(dips, axis=1)
    best = np.where(dips.any(axis=1), first, np.argmin(inner, axis=1)) + tau_min
    rows = np.arange(len(frames))
    left, mid, right = cmnd[rows, best - 1], cmnd[rows, best], cmnd[rows, best + 1]
    curvature = left - 2.0 * mid + right
    shift = np.where(curvature > _EPS, 0.5 * (left - right) / np.maximum(curvature, _EPS), 0.0)
    period = best + np.clip(shift, -1.0, 1.0)
    prob = np.clip(1.0 - mid, 0.0, 1.0)
    frame_energy = energy_lag[:, 0] / win
    loud = frame_energy > max(1e-10, 1e-5 * frame_energy.max())
    voiced = dips.any(axis=1) & loud
    f0 = np.where(voiced, sampling_rate / period, 0.0)
    return f0, np.where(loud, prob, 0.0), voiced.astype(np.float64)


def _spectral(power: np.ndarray, freqs: np.ndarray, rolloff: float) -> np.ndarray:
    """Centroid, entropy, peak, rolloff, flatness and flux ``[frames, 6]`` of a power spectrum."""
    total = power.sum(axis=1, keepdims=True) + _EPS
    dist = power / total
    centroid = dist @ freqs
    entropy = -(dist * np.log(dist + _EPS)).sum(axis=1) / np.log(power.shape[1])
    peak = freqs[np.argmax(power, axis=1)]
    above = np.cumsum(dist, axis=1) >= rolloff
    roll = freqs[np.argmax(above, axis=1)]
    flatness = np.exp(np.mean(np.log(power + _EPS), axis=1)) / (power.mean(axis=1) + _EPS)
    magnitude = np.sqrt(dist)
    flux = np.zeros(len(power))
    flux[1:] = np.sqrt(np.sum(np.diff(magnitude, axis=0) ** 2, axis=1))
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
        self._filters: dict[int, np.ndarray] = {}

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
        x = mono_float64(signal, sampling_rate)
        if self.fmax >= sampling_rate / 2:
            raise FeatureError(
                f"F0 fmax={self.fmax} Hz must be below Nyquist ({sampling_rate / 2} Hz)"
            )
        hop = max(1, round(self.hop_s * sampling_rate))
        length = max(hop, round(self.frame_s * sampling_rate))
        n_fft = 1 << int(np.ceil(np.log2(length)))
        frames = frame_signal(x, length, hop)
        log_energy = np.log(np.mean(frames**2, axis=1) + _EPS)
        signs = np.signbit(frames)
        zcr = (
            np.mean(signs[:, 1:] != signs[:, :-1], axis=1) if length > 1 else np.zeros(len(frames))
        )
        envelope = np.max(np.abs(frames), axis=1)
        power = np.abs(rfft(frames * np.hanning(length + 2)[1:-1], n_fft, axis=1)) ** 2
        freqs = np.fft.rfftfreq(n_fft, 1.0 / sampling_rate)
        spectral = _spectral(power, freqs, self.rolloff)
        f0, prob, voiced = yin(
            x,
            sampling_rate,
            hop=hop,
            fmin=self.fmin,
            fmax=self.fmax,
            threshold=self.voicing_threshold,
        )
        if n_fft not in self._filters:
            self._filters[n_fft] = mel_filterbank(
                sampling_rate, n_fft, self.n_mels, 0.0, sampling_rate / 2
            )
        log_mel = np.log(power @ self._filters[n_fft].T + _EPS)
        mfcc = dct(log_mel, type=2, norm="ortho", axis=1)[:, : self.n_mfcc]
        base = np.column_stack([log_energy, zcr, envelope, spectral, f0, prob, voiced, mfcc])
        out = np.concatenate([base, delta(base)], axis=1) if self.deltas else base
        return out.astype(np.float32)


def masked_statistics(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Masked statistics ``[len(STATISTICS), dim]`` of ``values [frames, dim]`` (``mask`` same shape)."""
    count = mask.sum(axis=0)
    safe = np.maximum(count, 1)
    mean = (values * mask).sum(axis=0) / safe
    centred = (values - mean) * mask
    var = (centred**2).sum(axis=0) / safe
    std = np.sqrt(var)
    scale = np.where(std > 1e-8, std, 1.0)
    skew = np.where(std > 1e-8, (centred**3).sum(axis=0) / safe / scale**3, 0.0)
    kurt = np.where(std > 1e-8, (centred**4).sum(axis=0) / safe / scale**4 - 3.0, 0.0)
    masked = np.where(mask, values, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        pct = np.nanpercentile(masked, [1, 25, 50, 75, 99], axis=0)
    pct = np.where(count > 0, np.nan_to_num(pct), 0.0)
    t = np.arange(len(values), dtype=np.float64)[:, None] * mask
    t_mean = t.sum(axis=0) / safe
    t_var = (((t - t_mean) * mask) ** 2).sum(axis=0)
    slope = np.where(
        t_var > 0, (((t - t_mean) * centred).sum(axis=0)) / np.maximum(t_var, _EPS), 0.0
    )
    stats = [mean, std, *pct, pct[4] - pct[0], slope, skew, kurt]
    return np.where(count > 0, np.stack(stats), 0.0)


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
        values = lld.astype(np.float64)
        voiced = values[:, self.lld.columns.index("voiced")] > 0.5
        mask = np.ones_like(values, dtype=bool)
        mask[:, self._voiced_only] = voiced[:, None]
        stats = masked_statistics(values, mask)[self._rows]  # [statistics, dim]
        return stats.T.reshape(1, -1).astype(np.float32)
