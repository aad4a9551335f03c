"""Is there speech in a clip at all? A cheap detector from signal properties, so that silence,
a tone, a DC offset or noise get "no speech" instead of an emotion.

A frame (25 ms every 20 ms, at 16 kHz; other rates are resampled) counts as *voiced speech*
when all of these hold:

- **above the speech floor**: its level is at least ``floor_db`` dBFS (the absolute floor of
  :mod:`sertk.audio.speech`), so digital silence and dither never count;
- **periodic**: YIN (:func:`sertk.features.pitch.yin`, 60-500 Hz, the extractor's settings)
  finds a pitch period; noise, DC and a lone click have none;
- **harmonic, not a pure tone and not an impulse**: the strongest spectral peak (±3 FFT bins)
  holds between ``min_peak`` and ``max_peak`` of the frame's power and lies below
  ``MAX_PEAK_HZ``. A voice spreads its power over harmonics and formants (median 0.6-0.8 on
  the corpora, 99.98 % of voiced frames above 0.15; the peak below 4 kHz in 99.7-100 %); a
  sine, a chirp or a whistle keeps nearly all of it in one peak (> 0.99, or a fast chirp's
  smeared peak high up); a click's flat spectrum keeps almost none there (< 0.05).

A clip is speech when its voiced-speech frames add up to at least ``min_voiced`` seconds *and*
their F0 moves: the spread (90th minus 10th percentile, in semitones) is at least
``min_f0_spread``. A steady periodic sound with harmonics (a square or sawtooth wave, a buzz, a
click train, DTMF) has a flat F0 (0.01 semitone at most on the synthetic set, ten times under
the threshold); intonation never is. The thresholds
were chosen on every clip of five corpora and on synthetic non-speech signals
(``benchmarks/bench_no_speech.py``; figures in ``docs/results.md``). ``speech_seconds`` (how
much speech a clip holds, for test-time adaptation) counts the frames above the floor and
within ``SPEECH_RANGE_DB`` of the median level of its voiced-speech frames.

Known limits: whispered speech has no voicing and comes out as "no speech" (so do a few
breathy, unvoiced acted-fear clips); a singing voice or an instrument with vibrato and
harmonics comes out as speech.

>>> import numpy as np
>>> t = np.arange(48000) / 16000
>>> check_speech(np.sin(2 * np.pi * 220 * t).astype(np.float32), 16000).reason
'pure tone'
"""

from __future__ import annotations

import dataclasses

import numpy as np

from sertk.audio import resample
from sertk.audio.speech import FLOOR_DB, SILENCE_DB
from sertk.features.frames import frame_signal, mono_float64
from sertk.features.handcrafted import power_spectrum
from sertk.features.pitch import yin

RATE = 16000  # the detector's working rate
HOP, FRAME, N_FFT = 320, 400, 512  # 20 ms hop, 25 ms frames
PEAK_BINS = 3  # ±bins around the strongest peak that count as "the peak"
MIN_VOICED = 0.04  # seconds of voiced speech frames a clip needs (two frames)
MIN_PEAK, MAX_PEAK = 0.1, 0.99  # share of a voiced frame's power in its strongest peak
MAX_PEAK_HZ = 4000.0  # where a voiced frame's strongest peak may lie
MIN_F0_SPREAD = 0.1  # semitones (90th - 10th percentile of F0 over voiced speech frames)
SPEECH_RANGE_DB = 25.0  # speech_seconds: frames at most this far below the voiced frames' median


@dataclasses.dataclass(frozen=True)
class SpeechCheck:
    """The detector's verdict on one clip and what it rests on.

    ``speech``: the verdict; ``reason``: why not (``""`` when speech): ``"too short"`` (under
    one 25 ms frame), ``"silent"`` (nothing above the floor), ``"no voicing"`` (nothing
    periodic: noise, DC, a click), ``"pure tone"`` (periodic, one spectral peak: tones, chirps),
    ``"clicks"`` (periodic, a flat spectrum: click trains) or ``"steady pitch"`` (harmonic,
    flat F0: square waves, buzzes, DTMF); ``duration``, ``speech_seconds`` (see the module docstring; 0 when not speech)
    and ``voiced_seconds`` (voiced speech frames), in seconds; ``f0_spread`` in semitones.
    """

    speech: bool
    reason: str
    duration: float
    speech_seconds: float
    voiced_seconds: float
    f0_spread: float

    def to_dict(self) -> dict[str, float | bool | str]:
        return dataclasses.asdict(self)


def frame_measures(signal: np.ndarray) -> dict[str, np.ndarray]:
    """Per frame (every 20 ms) of a 16 kHz float64 ``[samples]`` signal: ``level`` (dBFS),
    ``voiced`` (bool, YIN), ``peak`` (the strongest peak's share of the power), ``peak_hz``
    (where it lies) and ``f0`` (semitones re 55 Hz, 0 when unvoiced); each
    ``[1 + samples // 320]``."""
    frames = frame_signal(signal, FRAME, HOP)
    power = power_spectrum(frames, N_FFT)[:, 1:]  # without DC: an offset is no spectral peak
    best = power.argmax(axis=1)
    around = np.clip(best[:, None] + np.arange(-PEAK_BINS, PEAK_BINS + 1), 0, power.shape[1] - 1)
    held = np.take_along_axis(power, around, axis=1)
    held[around != best[:, None] + np.arange(-PEAK_BINS, PEAK_BINS + 1)] = 0.0  # off the edge
    peak = held.sum(axis=1) / np.maximum(power.sum(axis=1), 1e-20)
    with np.errstate(divide="ignore"):
        levels = np.maximum(10.0 * np.log10(np.mean(np.square(frames), axis=1)), SILENCE_DB)
    f0, _, voiced = yin(signal, RATE, hop=HOP)
    voiced = voiced > 0.5
    semitones = np.where(voiced, 12.0 * np.log2(np.maximum(f0, 1.0) / 55.0), 0.0)
    return {"level": levels, "voiced": voiced, "peak": peak, "f0": semitones,
            "peak_hz": (best + 1) * RATE / N_FFT}  # fmt: skip


def check_speech(
    signal: np.ndarray,
    sampling_rate: int,
    *,
    floor_db: float = FLOOR_DB,
    min_voiced: float = MIN_VOICED,
    min_peak: float = MIN_PEAK,
    max_peak: float = MAX_PEAK,
    min_f0_spread: float = MIN_F0_SPREAD,
) -> SpeechCheck:
    """Whether ``signal`` (``[samples]`` or ``[channels, samples]`` at ``sampling_rate``) holds
    speech, by the rule of the module docstring; about 1 ms per second of audio (half the cost of
    ``emotion_functionals``)."""
    x = mono_float64(signal, sampling_rate)
    if sampling_rate != RATE:
        x = resample(x.astype(np.float32), sampling_rate, RATE).astype(np.float64)
    duration = len(x) / RATE
    if len(x) < FRAME:
        return SpeechCheck(False, "too short", duration, 0.0, 0.0, 0.0)
    measures = frame_measures(x)
    level, peak = measures["level"], measures["peak"]
    above = level >= floor_db
    good = above & measures["voiced"] & (peak >= min_peak) & (peak <= max_peak)
    good &= measures["peak_hz"] <= MAX_PEAK_HZ
    f0 = measures["f0"][good]
    spread = float(np.percentile(f0, 90) - np.percentile(f0, 10)) if len(f0) else 0.0
    voiced_seconds = good.sum() * HOP / RATE
    if voiced_seconds >= min_voiced and spread >= min_f0_spread:
        active = above & (level >= np.median(level[good]) - SPEECH_RANGE_DB)
        return SpeechCheck(
            True, "", duration, float(active.sum() * HOP / RATE), float(voiced_seconds), spread
        )
    periodic = above & measures["voiced"]
    flat = (periodic & (peak < min_peak)).sum() > (periodic & (peak > max_peak)).sum()
    reason = (
        "silent" if not above.any()
        else "no voicing" if periodic.sum() * HOP / RATE < min_voiced
        else ("clicks" if flat else "pure tone") if voiced_seconds < min_voiced
        else "steady pitch"
    )  # fmt: skip
    return SpeechCheck(False, reason, duration, 0.0, float(voiced_seconds), spread)
