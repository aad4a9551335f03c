"""Log-mel spectrogram and MFCC extractors in numpy/scipy (no librosa at runtime).

Both match librosa 0.11 with the same parameters (``center=True``, zero padding, periodic Hann
window, Slaney mel scale and area normalisation by default): ``LogMel`` equals
``log(librosa.feature.melspectrogram(...) + log_offset)`` and ``Mfcc`` equals
``librosa.feature.mfcc(..., dct_type=2, norm="ortho")`` (plus ``librosa.feature.delta`` rows),
within 1e-3 absolute in float32 (tested). Frames are centred every ``hop_length`` samples, so a
signal of ``n`` samples gives ``1 + (n + 2 * (n_fft // 2) - n_fft) // hop_length`` frames (at
least one: signals shorter than ``n_fft`` are zero padded).

>>> import numpy as np
>>> signal = np.sin(2 * np.pi * 440 * np.arange(16000) / 16000).astype(np.float32)
>>> LogMel()(signal, 16000).shape
(101, 64)
>>> Mfcc(n_mfcc=13, deltas=2)(signal, 16000).shape
(101, 39)
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.fft

from sertk.errors import FeatureError
from sertk.features.base import Extractor, check_number


def hz_to_mel(hz: np.ndarray, *, htk: bool = False) -> np.ndarray:
    """Hertz to mels: HTK formula, or Slaney's (linear below 1 kHz, logarithmic above)."""
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    logstep = np.log(6.4) / 27.0
    linear = hz / f_sp
    log = min_log_hz / f_sp + np.log(np.maximum(hz, min_log_hz) / min_log_hz) / logstep
    return np.where(hz >= min_log_hz, log, linear)


def mel_to_hz(mel: np.ndarray, *, htk: bool = False) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    f_sp, min_log_hz = 200.0 / 3, 1000.0
    min_log_mel = min_log_hz / f_sp
    logstep = np.log(6.4) / 27.0
    return np.where(
        mel >= min_log_mel, min_log_hz * np.exp(logstep * (mel - min_log_mel)), f_sp * mel
    )


def mel_filterbank(
    *,
    sampling_rate: int,
    n_fft: int,
    n_mels: int,
    f_min: float,
    f_max: float,
    htk: bool = False,
    norm: str | None = "slaney",
) -> np.ndarray:
    """Triangular mel filters ``[n_mels, n_fft // 2 + 1]`` float32, as ``librosa.filters.mel``."""
    bins = np.fft.rfftfreq(n_fft, 1.0 / sampling_rate)
    edges = mel_to_hz(
        np.linspace(hz_to_mel(f_min, htk=htk), hz_to_mel(f_max, htk=htk), n_mels + 2), htk=htk
    )
    widths = np.diff(edges)
    ramps = edges[:, None] - bins[None, :]
    rising = -ramps[:-2] / widths[:-1, None]
    falling = ramps[2:] / widths[1:, None]
    weights = np.maximum(0.0, np.minimum(rising, falling))
    if norm == "slaney":
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    return weights.astype(np.float32)


def _hann_window(win_length: int, n_fft: int) -> np.ndarray:
    """Periodic Hann window of ``win_length`` centred in ``n_fft`` zeros (librosa's ``pad_center``)."""
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(win_length) / win_length)
    out = np.zeros(n_fft)
    start = (n_fft - win_length) // 2
    out[start : start + win_length] = window
    return out.astype(np.float32)


class LogMel(Extractor):
    """Log mel spectrogram ``[frames, n_mels]`` at ``sampling_rate / hop_length`` frames/s.

    ``log(mel_power + log_offset)`` with natural log; ``power=2`` is the power spectrum,
    ``power=1`` the magnitude. ``f_max=None`` means Nyquist; ``win_length=None`` means ``n_fft``.
    """

    name = "logmel"

    def __init__(
        self,
        *,
        n_mels: int = 64,
        n_fft: int = 400,
        hop_length: int = 160,
        win_length: int | None = None,
        f_min: float = 0.0,
        f_max: float | None = None,
        sampling_rate: int = 16000,
        log_offset: float = 1e-6,
        power: float = 2.0,
        htk: bool = False,
        norm: str | None = "slaney",
    ) -> None:
        self.sampling_rate = check_number("sampling_rate", sampling_rate, minimum=1000)
        self.n_fft = check_number("n_fft", n_fft, minimum=16, maximum=1 << 16)
        self.hop_length = check_number("hop_length", hop_length, minimum=1)
        self.win_length = (
            None
            if win_length is None
            else check_number("win_length", win_length, minimum=2, maximum=self.n_fft)
        )
        self.n_mels = check_number("n_mels", n_mels, minimum=1, maximum=self.n_fft // 2 + 1)
        nyquist = self.sampling_rate / 2
        self.f_min = check_number("f_min", f_min, kind=float, minimum=0.0, maximum=nyquist)
        self.f_max = (
            None
            if f_max is None
            else check_number("f_max", f_max, kind=float, minimum=self.f_min, maximum=nyquist)
        )
        self.log_offset = check_number("log_offset", log_offset, kind=float, minimum=1e-30)
        self.power = check_number("power", power, kind=float, minimum=0.5, maximum=2.0)
        if not isinstance(htk, bool):
            raise FeatureError(f"htk must be true or false, got {htk!r}")
        if norm not in ("slaney", None):
            raise FeatureError(f"norm must be 'slaney' or null, got {norm!r}")
        self.htk, self.norm = htk, norm
        self.dim = self.n_mels
        self.frame_rate = self.sampling_rate / self.hop_length
        self._window = _hann_window(self.win_length or self.n_fft, self.n_fft)
        filters = mel_filterbank(
            sampling_rate=self.sampling_rate,
            n_fft=self.n_fft,
            n_mels=self.n_mels,
            f_min=self.f_min,
            f_max=nyquist if self.f_max is None else self.f_max,
            htk=htk,
            norm=norm,
        )
        # sparse (each filter spans a few bins) and single-threaded: a multithreaded BLAS matmul
        # this small is up to 10x slower on a loaded machine, where its threads must wake up
        from scipy.sparse import csr_array

        self._filters = csr_array(filters)  # [n_mels, bins]

    def config(self) -> dict[str, Any]:
        """All constructor options plus ``name`` (JSON-serialisable)."""
        keys = ("n_mels", "n_fft", "hop_length", "win_length", "f_min", "f_max")
        keys += ("sampling_rate", "log_offset", "power", "htk", "norm")
        return {"name": self.name, **{key: getattr(self, key) for key in keys}}

    def frames(self, signal: np.ndarray) -> np.ndarray:
        """Windowed, centred frames ``[frames, n_fft]`` of a float32 ``[samples]`` signal."""
        half = self.n_fft // 2
        count = 1 + (len(signal) + 2 * half - self.n_fft) // self.hop_length
        padded = np.zeros(self.n_fft + (count - 1) * self.hop_length, dtype=np.float32)
        end = min(len(signal), len(padded) - half)
        padded[half : half + end] = signal[:end]
        view = np.lib.stride_tricks.sliding_window_view(padded, self.n_fft)[:: self.hop_length]
        return view * self._window

    def mel_power(self, signal: np.ndarray) -> np.ndarray:
        """Mel spectrogram ``[frames, n_mels]`` float32 (before the log)."""
        spectrum = scipy.fft.rfft(self.frames(signal), axis=1)
        magnitude = spectrum.real**2 + spectrum.imag**2
        if self.power != 2.0:
            magnitude = magnitude ** (self.power / 2.0)
        return np.ascontiguousarray((self._filters @ magnitude.T).T)

    def _extract(self, signal: np.ndarray) -> np.ndarray:
        return np.log(self.mel_power(signal) + np.float32(self.log_offset)).astype(np.float32)


class Mfcc(Extractor):
    """MFCCs ``[frames, n_mfcc * (1 + deltas)]``: DCT-II (ortho) of the mel power in dB.

    As librosa: ``10 * log10(max(mel, 1e-10))`` floored at ``max - top_db`` over the utterance
    (``top_db=None`` disables the floor). ``deltas=1`` appends Savitzky-Golay deltas over
    ``delta_width`` frames and ``deltas=2`` also the second derivative (``librosa.feature.delta``
    with ``mode="interp"``; utterances shorter than ``delta_width`` frames use ``mode="nearest"``).
    The remaining options are :class:`LogMel`'s.
    """

    name = "mfcc"

    def __init__(
        self,
        *,
        n_mfcc: int = 40,
        deltas: int = 0,
        delta_width: int = 9,
        top_db: float | None = 80.0,
        n_mels: int = 64,
        n_fft: int = 400,
        hop_length: int = 160,
        win_length: int | None = None,
        f_min: float = 0.0,
        f_max: float | None = None,
        sampling_rate: int = 16000,
        htk: bool = False,
        norm: str | None = "slaney",
    ) -> None:
        self._mel = LogMel(
            n_mels=n_mels,
            n_fft=n_fft,
            hop_length=hop_length,
            win_length=win_length,
            f_min=f_min,
            f_max=f_max,
            sampling_rate=sampling_rate,
            htk=htk,
            norm=norm,
        )
        self.n_mfcc = check_number("n_mfcc", n_mfcc, minimum=1, maximum=n_mels)
        self.deltas = check_number("deltas", deltas, minimum=0, maximum=2)
        self.delta_width = check_number("delta_width", delta_width, minimum=3)
        if self.delta_width % 2 == 0:
            raise FeatureError(f"delta_width must be odd, got {delta_width}")
        self.top_db = (
            None if top_db is None else check_number("top_db", top_db, kind=float, minimum=0.0)
        )
        self.sampling_rate = self._mel.sampling_rate
        self.frame_rate = self._mel.frame_rate
        self.dim = self.n_mfcc * (1 + self.deltas)

    def config(self) -> dict[str, Any]:
        """All constructor options plus ``name`` (JSON-serialisable)."""
        mel = self._mel.config()
        for key in ("name", "log_offset", "power"):
            del mel[key]
        own = {"n_mfcc": self.n_mfcc, "deltas": self.deltas, "delta_width": self.delta_width}
        return {"name": self.name, **own, "top_db": self.top_db, **mel}

    def _extract(self, signal: np.ndarray) -> np.ndarray:
        db = 10.0 * np.log10(np.maximum(self._mel.mel_power(signal), np.float32(1e-10)))
        if self.top_db is not None:
            db = np.maximum(db, db.max() - np.float32(self.top_db))
        mfcc = scipy.fft.dct(db, type=2, norm="ortho", axis=1)[:, : self.n_mfcc]
        if self.deltas:
            from scipy.signal import savgol_filter

            mode = "interp" if len(mfcc) >= self.delta_width else "nearest"
            blocks = [mfcc] + [
                savgol_filter(mfcc, self.delta_width, order, deriv=order, axis=0, mode=mode)
                for order in range(1, self.deltas + 1)
            ]
            mfcc = np.concatenate(blocks, axis=1)
        return mfcc.astype(np.float32)
