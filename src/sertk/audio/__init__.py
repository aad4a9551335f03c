"""Audio foundation: reading files, validating signals, pure preprocessing, speech detection and
``Preprocess``.

Audio is always ``(signal, sampling_rate)`` with ``signal`` float32 ``[samples]`` (mono) or
``[channels, samples]``. Bad signals and files raise :class:`~sertk.errors.AudioError`; bad options
(policies, thresholds, ``Preprocess`` fields) raise :class:`~sertk.errors.ConfigError`.

>>> from sertk.audio import Preprocess, load_audio
>>> signal, rate = load_audio("speech.flac")  # doctest: +SKIP
>>> Preprocess()(signal, rate).shape  # doctest: +SKIP
(48000,)
"""

from sertk.audio.dsp import (
    CROP_POLICIES,
    crop_or_pad,
    denoise,
    normalize_loudness,
    normalize_peak,
    trim_silence,
)
from sertk.audio.loading import (
    MAX_SAMPLING_RATE,
    MIN_SAMPLING_RATE,
    check_rate,
    check_signal,
    is_audio_source,
    load_audio,
    resample,
)
from sertk.audio.preprocess import NORMALIZATIONS, Preprocess
from sertk.audio.speech import frame_levels, speech_frames, speech_regions

__all__ = [
    "CROP_POLICIES",
    "MAX_SAMPLING_RATE",
    "MIN_SAMPLING_RATE",
    "NORMALIZATIONS",
    "Preprocess",
    "check_rate",
    "check_signal",
    "crop_or_pad",
    "denoise",
    "frame_levels",
    "is_audio_source",
    "load_audio",
    "normalize_loudness",
    "normalize_peak",
    "resample",
    "speech_frames",
    "speech_regions",
    "trim_silence",
]
