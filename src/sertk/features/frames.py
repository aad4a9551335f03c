"""Framing helpers shared by the hand-crafted descriptors (``Lld``, YIN, ``EmotionFunctionals``).

Frames are centred every ``hop`` samples (``frames = 1 + samples // hop``, zero padded at both
ends), like librosa with ``center=True``.

>>> import numpy as np
>>> frame_signal(np.arange(5.0), 4, 2)
array([[0., 0., 0., 1.],
       [0., 1., 2., 3.],
       [2., 3., 4., 0.]])
"""

from __future__ import annotations

import functools

import numpy as np

from sertk.errors import FeatureError


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
    """Centred frames ``[1 + samples // hop, frame_length]`` of a ``[samples]`` signal (zero
    padded): a read-only strided view, no copy per frame."""
    n_frames = 1 + len(x) // hop
    half = frame_length // 2
    padded = np.zeros(half + (n_frames - 1) * hop + frame_length, dtype=x.dtype)
    padded[half : half + len(x)] = x
    return np.lib.stride_tricks.sliding_window_view(padded, frame_length)[::hop][:n_frames]


def frame_sizes(sampling_rate: int, frame_s: float, hop_s: float) -> tuple[int, int, int]:
    """``(hop, frame_length, n_fft)`` in samples: ``n_fft`` the power of 2 >= ``frame_length``."""
    hop = max(1, round(hop_s * sampling_rate))
    length = max(hop, round(frame_s * sampling_rate))
    return hop, length, 1 << int(np.ceil(np.log2(length)))


@functools.lru_cache(maxsize=64)
def hann_window(length: int) -> np.ndarray:
    """``np.hanning(length + 2)[1:-1]`` ``[length]`` (no zero end points); cached, read-only."""
    window = np.hanning(length + 2)[1:-1]
    window.flags.writeable = False
    return window


@functools.lru_cache(maxsize=64)
def mel_filterbank(
    sampling_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """Triangular HTK-mel filters ``[n_mels, n_fft // 2 + 1]`` with unit area (Slaney norm);
    cached per arguments, read-only."""
    mel = 2595.0 * np.log10(1.0 + np.array([fmin, fmax]) / 700.0)
    hz = 700.0 * (10.0 ** (np.linspace(mel[0], mel[1], n_mels + 2) / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1.0 / sampling_rate)
    lower, centre, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    weights = np.maximum(0.0, np.minimum(rising, falling)) * (2.0 / (upper - lower))
    weights.flags.writeable = False
    return weights


def delta(features: np.ndarray, *, width: int = 2) -> np.ndarray:
    """Regression deltas ``[frames, dim]`` over +-``width`` frames (edges repeated)."""
    padded = np.pad(features, ((width, width), (0, 0)), mode="edge")
    n = len(features)
    num = sum(
        k * (padded[width + k : width + k + n] - padded[width - k : width - k + n])
        for k in range(1, width + 1)
    )
    return num / (2.0 * sum(k * k for k in range(1, width + 1)))
