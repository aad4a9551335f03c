"""Reading whole audio files and validating in-memory signals.

Every problem with the input raises :class:`~sertk.errors.AudioError` naming the file (or signal) and
what was wrong; no soundfile or soxr exception escapes. Files are decoded block by block by
:class:`sertk.audio.reader.AudioReader` (header checks and the ``max_duration`` limit first);
:mod:`sertk.audio.stream` reads long recordings without holding them whole.
"""

from __future__ import annotations

import os

import numpy as np
import soxr

from sertk.audio._checks import (
    MAX_CHANNELS,
    MAX_SAMPLING_RATE,
    MIN_SAMPLING_RATE,
    check_rate,
    finite_or_raise,
)
from sertk.audio.reader import (
    DEFAULT_MAX_DURATION,
    AudioReader,
    AudioSource,
    Source,
    open_source,
)
from sertk.errors import AudioError

__all__ = [
    "MAX_CHANNELS", "MAX_SAMPLING_RATE", "MIN_SAMPLING_RATE", "check_rate", "check_signal",
    "is_audio_source", "load_audio", "resample",
]  # fmt: skip

# integer PCM dtypes check_signal converts to float: dtype -> (offset, scale)
_PCM_SCALE = {
    np.dtype(np.uint8): (128.0, 128.0),
    np.dtype(np.int8): (0.0, 128.0),
    np.dtype(np.int16): (0.0, 32768.0),
    np.dtype(np.int32): (0.0, 2147483648.0),
}


def is_audio_source(item: object) -> bool:
    """A path, bytes or binary file object (read with ``load_audio``), not an in-memory signal."""
    return isinstance(item, str | os.PathLike | bytes | bytearray | memoryview | Source) or hasattr(
        item, "read"
    )


def check_signal(signal: object, sampling_rate: object, *, name: str = "signal") -> np.ndarray:
    """Validate an in-memory signal and return it as a new float32 array.

    ``signal`` is ``[samples]`` or ``[channels, samples]``; floats are kept as they are, integer PCM
    (uint8, int8, int16, int32) is scaled to [-1, 1). Raises AudioError when the rate is absurd, the
    samples are not numbers, the shape is wrong, the signal is empty or holds NaN/inf.

    >>> check_signal(np.zeros(160, dtype=np.int16), 16000).dtype
    dtype('float32')
    """
    rate = check_rate(sampling_rate, what=f"{name}: sampling_rate")
    try:
        array = np.asarray(signal)
    except (TypeError, ValueError) as exc:
        raise AudioError(f"{name}: cannot be converted to an array of samples ({exc})") from exc
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype in _PCM_SCALE:
        offset, scale = _PCM_SCALE[array.dtype]
        array = ((array.astype(np.float64) - offset) / scale).astype(np.float32)
    else:
        raise AudioError(
            f"{name}: samples must be floats or 8/16/32-bit integer PCM, got dtype {array.dtype}"
        )
    if array.ndim not in (1, 2):
        raise AudioError(
            f"{name}: expected shape [samples] or [channels, samples], got {array.shape}"
        )
    if array.ndim == 2 and array.shape[0] > MAX_CHANNELS:
        raise AudioError(
            f"{name}: shape {array.shape} would mean {array.shape[0]} channels (at most "
            f"{MAX_CHANNELS}); if it is [samples, channels], pass its transpose"
        )
    if array.size == 0:
        raise AudioError(f"{name}: is empty (shape {array.shape}); it holds no audio")
    finite_or_raise(array, name, rate)
    return array


def resample(signal: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample ``[samples]`` or ``[channels, samples]`` with soxr (quality 'HQ'); a new float32 array.

    >>> resample(np.zeros(44100, dtype=np.float32), 44100, 16000).shape
    (16000,)
    """
    orig = check_rate(orig_sr, what="orig_sr")
    target = check_rate(target_sr, what="target_sr")
    array = np.asarray(signal, dtype=np.float32)
    if array.ndim not in (1, 2):
        raise AudioError(
            f"signal: expected shape [samples] or [channels, samples], got {array.shape}"
        )
    if orig == target:
        return array.copy()
    try:
        # soxr wants [frames, channels]
        out = soxr.resample(np.ascontiguousarray(array.T), orig, target, quality="HQ")
    except Exception as exc:  # soxr raises plain ValueError/RuntimeError
        raise AudioError(
            f"cannot resample {array.shape} from {orig} to {target} Hz: {exc}"
        ) from exc
    return np.ascontiguousarray(out.T, dtype=np.float32)


def load_audio(
    path: AudioSource,
    *,
    sampling_rate: int | None = 16000,
    mono: bool = True,
    max_duration: float | None = DEFAULT_MAX_DURATION,
) -> tuple[np.ndarray, int]:
    """Read an audio file into ``(signal, sampling_rate)``, float32.

    ``path`` is a file path, bytes, or a binary file object (an upload). The signal is ``[samples]``
    when ``mono`` (channels averaged), else ``[channels, samples]`` (always 2-D). It is resampled to
    ``sampling_rate`` with soxr unless that is None (keep the file's rate). Integer files are scaled
    to [-1, 1). A file whose header announces more than ``max_duration`` seconds (default 4 h;
    None: no limit) is refused before decoding, and one that turns out longer while decoding is
    stopped there (:class:`~sertk.errors.AudioTooLongError`). Raises AudioError for missing,
    empty, truncated, corrupt or non-audio input, NaN/inf samples, absurd rates or channel counts.

    >>> import io, soundfile
    >>> buffer = io.BytesIO()
    >>> soundfile.write(buffer, np.zeros(4410), 44100, format="WAV")
    >>> signal, rate = load_audio(io.BytesIO(buffer.getvalue()))
    >>> signal.shape, signal.dtype, rate
    ((1600,), dtype('float32'), 16000)
    """
    if sampling_rate is not None:
        sampling_rate = check_rate(sampling_rate, what="requested sampling_rate")
    with AudioReader(open_source(path), max_duration=max_duration) as reader:
        rate = reader.info.sampling_rate
        # downmixed block by block: the same values as averaging the whole file's channels
        parts = [block.mean(axis=1) if mono else block.T for block in reader.blocks()]
    signal = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)
    if sampling_rate is not None and sampling_rate != rate:
        signal, rate = resample(signal, rate, sampling_rate), sampling_rate
    return np.ascontiguousarray(signal, dtype=np.float32), rate
