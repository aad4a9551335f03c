"""``EmotionFunctionals``: the hand-crafted speech-emotion utterance vector (no pretrained model).

One ``[1, 2798]`` vector per utterance at the defaults, built from frames within ``activity_db``
of the loudest frame (so leading/trailing silence and pauses do not dilute the statistics):

1. functionals (``STATISTICS``: mean, std, percentiles 1/25/50/75/99, range, slope, skewness,
   kurtosis) of ``n_mels`` log-mel bands, their deltas and the 50 ``Lld`` columns, with F0 in
   semitones re 55 Hz over voiced frames only (1958 dims);
2. mean and std of log-mel + the 25 base LLDs in ``segments`` equal parts of the active span
   (coarse temporal shape: 712 dims);
3. the mean log-mel shape (band mean removed) of voiced and of unvoiced active frames (128 dims).

With a linear model on standardised vectors (``sertk.classical`` kind ``ridge``) this is the
toolkit's best pipeline without a pretrained encoder; see ``docs/results.md``.

>>> import numpy as np
>>> t = np.arange(16000) / 16000
>>> EmotionFunctionals()(np.sin(2 * np.pi * 200 * t).astype(np.float32), 16000).shape
(1, 2798)
"""

from __future__ import annotations

import warnings

import numpy as np

from sertk.errors import FeatureError
from sertk.features.frames import delta, mel_filterbank, mono_float64
from sertk.features.handcrafted import BASE_COLUMNS, Lld
from sertk.features.statistics import STATISTICS, masked_statistics


class EmotionFunctionals:
    """The hand-crafted SER utterance vector ``[1, dim]`` (``frame_rate = 0``); 2798 dims at
    defaults. See the module docstring for the three blocks; ``columns`` names every dimension.

    >>> EmotionFunctionals().dim
    2798
    """

    name = "emotion_functionals"
    frame_rate = 0.0

    def __init__(self, *, n_mels: int = 64, activity_db: float = 40.0, segments: int = 4) -> None:
        if not 8 <= n_mels <= 128 or not 10.0 <= activity_db <= 120.0 or not 1 <= segments <= 16:
            raise FeatureError(
                "need 8 <= n_mels <= 128, 10 <= activity_db <= 120 and 1 <= segments <= 16, got "
                f"n_mels={n_mels!r}, activity_db={activity_db!r}, segments={segments!r}"
            )
        self.n_mels, self.activity_db, self.segments = n_mels, activity_db, segments
        self.lld = Lld()
        mel = [f"mel_{i}" for i in range(n_mels)]
        frame_cols = mel + [f"{c}_d" for c in mel] + list(self.lld.columns)
        base = mel + list(self.lld.columns[: len(BASE_COLUMNS) + self.lld.n_mfcc])
        self.columns = tuple(
            [f"{c}__{s}" for c in frame_cols for s in STATISTICS]
            + [f"seg{k}_{c}__{s}" for k in range(segments) for s in ("mean", "std") for c in base]
            + [f"{v}_mel_{i}" for v in ("voiced", "unvoiced") for i in range(n_mels)]
        )
        self.dim = len(self.columns)
        self._f0 = self.lld.columns.index("f0")
        self._voiced = self.lld.columns.index("voiced")

    def config(self) -> dict:
        """JSON-serialisable settings; ``build_extractor(config)`` rebuilds an equal extractor."""
        keys = ("n_mels", "activity_db", "segments")
        return {"name": self.name, **{k: getattr(self, k) for k in keys}}

    def __call__(self, signal: np.ndarray, sampling_rate: int) -> np.ndarray:
        """Utterance vector ``[1, dim]`` float32 of a ``[samples]`` (or multichannel) signal."""
        x = mono_float64(signal, sampling_rate)
        lld, power = self.lld.describe(x, sampling_rate)  # the log-mels share the LLDs' spectrum
        lld = lld.astype(np.float64)
        n_fft = 2 * (power.shape[1] - 1)
        fbank = mel_filterbank(sampling_rate, n_fft, self.n_mels, 0.0, sampling_rate / 2)
        mel = np.log(power @ fbank.T + 1e-8)
        voiced = lld[:, self._voiced] > 0.5
        f0, n_base = self._f0, len(BASE_COLUMNS) + self.lld.n_mfcc
        lld[:, f0] = np.where(voiced, 12 * np.log2(np.maximum(lld[:, f0], 1.0) / 55.0), 0.0)
        lld[:, n_base + f0] = delta(lld[:, [f0]])[:, 0] * voiced
        energy = lld[:, 0]  # natural log of the frame power
        active = energy > energy.max() - self.activity_db * np.log(10.0) / 10.0
        blocks = [
            self._functionals(
                np.concatenate([mel, delta(mel), lld], axis=1), voiced, active, n_base
            ),
            self._segments(mel, lld[:, :n_base], voiced, active),
            self._voicing(mel, voiced, active),
        ]
        return np.concatenate(blocks)[None].astype(np.float32)

    def _functionals(self, frames, voiced, active, n_base) -> np.ndarray:
        frames, voiced = frames[active], voiced[active]
        mask = np.ones_like(frames, dtype=bool)
        mask[:, [2 * self.n_mels + self._f0, 2 * self.n_mels + n_base + self._f0]] = voiced[:, None]
        return masked_statistics(frames, mask).T.reshape(-1)

    def _segments(self, mel, base, voiced, active) -> np.ndarray:
        span = np.flatnonzero(active)
        frames = np.concatenate([mel, base], axis=1)[span[0] : span[-1] + 1]
        frames[~voiced[span[0] : span[-1] + 1], self.n_mels + self._f0] = np.nan
        n = len(frames)
        parts = (
            np.array_split(np.arange(n), self.segments)
            if n >= self.segments
            else [np.arange(n)] * self.segments
        )
        out = []
        with warnings.catch_warnings():  # an all-unvoiced segment has no F0: NaN -> 0 below
            warnings.simplefilter("ignore", RuntimeWarning)
            for part in parts:
                out += [np.nanmean(frames[part], axis=0), np.nanstd(frames[part], axis=0)]
        return np.nan_to_num(np.concatenate(out))

    def _voicing(self, mel, voiced, active) -> np.ndarray:
        on = voiced & active
        on = on if on.sum() >= 3 else active
        off = active & ~on
        mean_on = mel[on].mean(axis=0)
        mean_off = mel[off].mean(axis=0) if off.sum() > 2 else mel[active].mean(axis=0)
        return np.concatenate([mean_on - mean_on.mean(), mean_off - mean_off.mean()])
