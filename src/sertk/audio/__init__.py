"""Audio foundation: reading files, validating signals, pure preprocessing, speech detection and
``Preprocess``.

Audio is always ``(signal, sampling_rate)`` with ``signal`` float32 ``[samples]`` (mono) or
``[channels, samples]``. Long recordings are read block by block (``audio_blocks``: decoded,
downmixed and resampled per block; ``probe_audio``: the checked header, nothing decoded); files
longer than ``max_duration`` (default ``DEFAULT_MAX_DURATION``, 4 h) are refused. Bad signals
and files raise :class:`~sertk.errors.AudioError`; bad options (policies, thresholds,
``Preprocess`` fields) raise :class:`~sertk.errors.ConfigError`.

>>> from sertk.audio import Preprocess, load_audio
>>> signal, rate = load_audio("examples/03a02Wc.flac")
>>> signal.shape, rate
((23969,), 16000)
>>> Preprocess()(signal, rate).shape  # padded to the default 3 s
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
from sertk.audio.reader import DEFAULT_MAX_DURATION, AudioInfo, probe_audio
from sertk.audio.speech import (
    LevelMeter,
    frame_levels,
    regions_of_levels,
    speech_frames,
    speech_regions,
)
from sertk.audio.stream import AudioStream, audio_blocks

__all__ = [
    "CROP_POLICIES",
    "DEFAULT_MAX_DURATION",
    "MAX_SAMPLING_RATE",
    "MIN_SAMPLING_RATE",
    "NORMALIZATIONS",
    "AudioInfo",
    "AudioStream",
    "LevelMeter",
    "Preprocess",
    "audio_blocks",
    "check_rate",
    "check_signal",
    "crop_or_pad",
    "denoise",
    "frame_levels",
    "is_audio_source",
    "load_audio",
    "normalize_loudness",
    "normalize_peak",
    "probe_audio",
    "regions_of_levels",
    "resample",
    "speech_frames",
    "speech_regions",
    "trim_silence",
]
