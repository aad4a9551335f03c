"""Reading audio files and validating in-memory signals.

Every problem with the input raises :class:`~sertk.errors.AudioError` naming the file (or signal) and
what was wrong; no soundfile or soxr exception escapes.
"""

from __future__ import annotations

import io
import os
import struct
from pathlib import Path
from typing import BinaryIO

import numpy as np
import soundfile as sf
import soxr

from sertk.errors import AudioError

MIN_SAMPLING_RATE = 1_000
MAX_SAMPLING_RATE = 384_000
MAX_CHANNELS = 64
SUPPORTED_FORMATS = "WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF, CAF, W64"
# MP3 lengths come from a Xing header or a bitrate estimate, so a short read within this fraction
# of the announced length is normal; every other format must decode exactly what its header says.
_MP3_LENGTH_TOLERANCE = 0.05
# integer PCM dtypes check_signal converts to float: dtype -> (offset, scale)
_PCM_SCALE = {
    np.dtype(np.uint8): (128.0, 128.0),
    np.dtype(np.int8): (0.0, 128.0),
    np.dtype(np.int16): (0.0, 32768.0),
    np.dtype(np.int32): (0.0, 2147483648.0),
}

AudioSource = str | os.PathLike | BinaryIO | bytes | bytearray | memoryview


def is_audio_source(item: object) -> bool:
    """A path, bytes or binary file object (read with ``load_audio``), not an in-memory signal."""
    return isinstance(item, str | os.PathLike | bytes | bytearray | memoryview) or hasattr(
        item, "read"
    )


def check_rate(sampling_rate: object, *, what: str = "sampling_rate") -> int:
    """Return ``sampling_rate`` as an int, or raise AudioError if it is not a sane rate in Hz."""
    valid = isinstance(sampling_rate, int | np.integer | float | np.floating) and not isinstance(
        sampling_rate, bool
    )
    if valid and float(sampling_rate).is_integer():
        rate = int(sampling_rate)
        if MIN_SAMPLING_RATE <= rate <= MAX_SAMPLING_RATE:
            return rate
    raise AudioError(
        f"{what} must be a whole number of Hz between {MIN_SAMPLING_RATE} and {MAX_SAMPLING_RATE}, "
        f"got {sampling_rate!r}"
    )


def _finite_or_raise(signal: np.ndarray, name: str, sampling_rate: int) -> None:
    bad = ~np.isfinite(signal)
    if bad.any():
        first = int(np.flatnonzero(bad.reshape(-1, signal.shape[-1]).any(axis=0))[0])
        raise AudioError(
            f"{name}: contains {int(bad.sum())} non-finite samples (NaN or inf), the first at "
            f"{first / sampling_rate:.3f} s; clean the audio or re-export it"
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
    _finite_or_raise(array, name, rate)
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


def _open_source(source: AudioSource) -> tuple[object, str]:
    """Return something soundfile can open (a path or a seekable binary file) and a display name."""
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise AudioError("<bytes>: is empty (0 bytes)")
        return io.BytesIO(bytes(source)), "<bytes>"
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        name = str(source)
        if not path.exists():
            raise AudioError(f"{name}: no such file (looked for {path.absolute()})")
        if path.is_dir():
            raise AudioError(f"{name}: is a directory, not an audio file")
        if not path.is_file():
            raise AudioError(f"{name}: is not a regular file (a pipe or device?)")
        if not os.access(path, os.R_OK):
            raise AudioError(f"{name}: permission denied; make the file readable")
        if path.stat().st_size == 0:
            raise AudioError(f"{name}: is empty (0 bytes)")
        return str(path), name
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        name = name if isinstance(name, str) else "<file-like object>"
        if isinstance(source, io.TextIOBase):
            raise AudioError(f"{name}: is opened in text mode; open it with mode 'rb'")
        try:
            seekable = getattr(source, "seekable", None)
            if callable(seekable) and seekable():
                return source, name
            data = source.read()  # a stream: buffer it, soundfile needs to seek
        except (OSError, ValueError) as exc:
            raise AudioError(f"{name}: cannot be read ({exc})") from exc
        if not isinstance(data, bytes | bytearray):
            raise AudioError(f"{name}: is not opened in binary mode")
        return io.BytesIO(data), name
    raise AudioError(
        f"cannot read audio from a {type(source).__name__}; pass a path, bytes or a binary file"
    )


def _read_head(source: object, size: int, name: str) -> tuple[bytes, int]:
    """The first ``size`` bytes of ``source`` and its total length, leaving a file object in place."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as handle:
                return handle.read(size), os.fstat(handle.fileno()).st_size
        start = source.tell()
        try:
            head = source.read(size)
            total = source.seek(0, io.SEEK_END) - start
        finally:
            source.seek(start)
    except (OSError, ValueError) as exc:
        raise AudioError(f"{name}: cannot be read ({exc})") from exc
    if not isinstance(head, bytes | bytearray):
        raise AudioError(f"{name}: is not opened in binary mode")
    return bytes(head), total


def _check_wav_length(source: object, name: str) -> None:
    """Catch a RIFF/WAVE file cut inside its header or data chunk (libsndfile reads those short)."""
    head, total = _read_head(source, 1 << 16, name)
    if not head.startswith(b"RIFF"):
        return
    if len(head) < 12:
        raise AudioError(f"{name}: truncated WAV file: only {total} bytes, cut inside its header")
    if head[8:12] != b"WAVE":
        return
    pos, block_align = 12, 1
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and pos + 22 <= len(head):
            block_align = max(1, struct.unpack("<H", head[pos + 20 : pos + 22])[0])
        if chunk == b"data":
            available = total - pos - 8
            # 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back
            if size not in (0, 0xFFFFFFFF) and size - available >= block_align:
                raise AudioError(
                    f"{name}: truncated WAV file: its header announces {size // block_align} "
                    f"frames but the file holds only {max(available, 0) // block_align} "
                    f"({max(available, 0) / size:.0%}); re-export or re-download it"
                )
            return
        pos += 8 + size + (size & 1)
    if pos >= total or len(head) >= total:
        raise AudioError(
            f"{name}: truncated or malformed WAV file: no 'data' chunk in its {total} bytes "
            "(cut inside the header?)"
        )


def _check_ogg_log(log: str, name: str) -> None:
    """libsndfile opens an OGG cut inside a page without error (reading up to the last whole page,
    often 0 frames) but notes it in its log; turn that note into an error."""
    for marker in ("File ended unexpectedly", "Junk after the last page"):
        line = next((line for line in log.splitlines() if marker in line), None)
        if line is not None:
            raise AudioError(
                f"{name}: truncated or damaged OGG stream; it ends inside a page "
                f"(libsndfile: {line.split(':', 1)[-1].strip()})"
            )


def _decode(source: object, name: str) -> tuple[np.ndarray, int]:
    """Decode the whole file: ``[frames, channels]`` float32 and its rate, after sanity checks."""
    try:
        handle = sf.SoundFile(source)
    except sf.LibsndfileError as exc:
        if "not recognised" in exc.error_string:
            raise AudioError(
                f"{name}: not a recognised audio format (readable: {SUPPORTED_FORMATS}; convert "
                "others, e.g. `ffmpeg -i in.m4a out.wav`)"
            ) from exc
        # libmpg123 reports an undecodable stream as a missing file; the file is there
        detail = "no decodable stream" if "does not exist" in exc.error_string else exc.error_string
        raise AudioError(
            f"{name}: cannot be decoded; it is corrupt, truncated or unsupported "
            f"(libsndfile: {detail})"
        ) from exc
    except Exception as exc:
        raise AudioError(
            f"{name}: cannot be opened as audio ({type(exc).__name__}: {exc})"
        ) from exc
    with handle:
        rate, frames, kind = handle.samplerate, handle.frames, handle.format
        if not MIN_SAMPLING_RATE <= rate <= MAX_SAMPLING_RATE:
            raise AudioError(
                f"{name}: its header says {rate} Hz, outside the supported {MIN_SAMPLING_RATE}.."
                f"{MAX_SAMPLING_RATE} Hz; the header is probably corrupt"
            )
        if kind == "OGG":
            _check_ogg_log(handle.extra_info, name)
        if frames == 0:
            raise AudioError(f"{name}: contains no audio (0 frames)")
        try:
            data = handle.read(dtype="float32", always_2d=True)
        except Exception as exc:
            detail = getattr(exc, "error_string", None) or str(exc)
            raise AudioError(
                f"{name}: audio data is corrupt or truncated; decoding failed "
                f"(libsndfile: {detail})"
            ) from exc
    missing = frames - len(data)
    if missing > (_MP3_LENGTH_TOLERANCE * frames if kind == "MP3" else 0):
        raise AudioError(
            f"{name}: truncated or corrupt: its header announces {frames} frames but only "
            f"{len(data)} could be decoded"
        )
    if len(data) == 0:
        raise AudioError(f"{name}: contains no audio (0 frames)")
    return data, rate


def load_audio(
    path: AudioSource, *, sampling_rate: int | None = 16000, mono: bool = True
) -> tuple[np.ndarray, int]:
    """Read an audio file into ``(signal, sampling_rate)``, float32.

    ``path`` is a file path, bytes, or a binary file object (an upload). The signal is ``[samples]``
    when ``mono`` (channels averaged), else ``[channels, samples]`` (always 2-D). It is resampled to
    ``sampling_rate`` with soxr unless that is None (keep the file's rate). Integer files are scaled
    to [-1, 1). Raises AudioError for missing, empty, truncated, corrupt or non-audio input, NaN/inf
    samples and absurd rates.

    >>> import io, soundfile
    >>> buffer = io.BytesIO()
    >>> soundfile.write(buffer, np.zeros(4410), 44100, format="WAV")
    >>> signal, rate = load_audio(io.BytesIO(buffer.getvalue()))
    >>> signal.shape, signal.dtype, rate
    ((1600,), dtype('float32'), 16000)
    """
    if sampling_rate is not None:
        sampling_rate = check_rate(sampling_rate, what="requested sampling_rate")
    source, name = _open_source(path)
    _check_wav_length(source, name)
    data, rate = _decode(source, name)
    _finite_or_raise(data.T, name, rate)
    signal = data.mean(axis=1) if mono else data.T
    if sampling_rate is not None and sampling_rate != rate:
        signal, rate = resample(signal, rate, sampling_rate), sampling_rate
    return np.ascontiguousarray(signal, dtype=np.float32), rate
