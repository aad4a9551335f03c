"""Audio files read block by block: header checks first, a duration limit, bounded memory.

:class:`AudioReader` opens a file (a path, bytes or a binary file object), checks what its
header claims (:mod:`sertk.audio.headers`: sample rate, channels, a WAV cut short; then
libsndfile's view of the same) and refuses a file that announces more than ``max_duration``
seconds before decoding a sample. :meth:`AudioReader.blocks` then decodes at most
``BLOCK_SAMPLES`` samples at a time, counts the frames it decoded (a compressed file whose
header understates its length is stopped as soon as it passes the limit), rejects NaN/inf as
they come, and at the end checks that the file held what its header announced.

Every problem raises :class:`~sertk.errors.AudioError` naming the file and what was wrong (a
recording over the limit: :class:`~sertk.errors.AudioTooLongError`); no soundfile exception
escapes.

>>> with AudioReader(open_source("examples/03a02Wc.flac")) as reader:
...     round(reader.info.duration, 2), sum(len(block) for block in reader.blocks())
(1.5, 23969)
"""

from __future__ import annotations

import dataclasses
import errno
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import numpy as np
import soundfile as sf

from sertk.audio._checks import check_header_channels, check_header_rate, finite_or_raise
from sertk.audio.headers import check_header
from sertk.errors import AudioError, AudioTooLongError

DEFAULT_MAX_DURATION = 4 * 3600.0  # seconds: the CLI's and the API's limit unless told otherwise
BLOCK_SAMPLES = 1 << 20  # samples (all channels together) decoded at once: 4 MB of float32
SUPPORTED_FORMATS = "WAV, FLAC, OGG/Vorbis, OGG/Opus, MP3, AIFF, CAF, W64"
# MP3 lengths come from a Xing header or a bitrate estimate, so a short read within this fraction
# of the announced length is normal; every other format must decode exactly what its header says.
MP3_LENGTH_TOLERANCE = 0.05
_UNKNOWN_FRAMES = 1 << 62  # libsndfile reports "unknown length" (a FLAC with 0 samples) as 2**63-1


class Source(NamedTuple):
    """An opened source: a path or a seekable binary file (at ``start``), and its display name."""

    handle: Any
    name: str
    start: int = 0


AudioSource = str | os.PathLike | BinaryIO | bytes | bytearray | memoryview | Source


@dataclasses.dataclass(frozen=True)
class AudioInfo:
    """What a checked header says: ``frames`` is None when the file does not announce its
    length (it is then known only once decoded)."""

    name: str
    sampling_rate: int
    channels: int
    frames: int | None
    format: str

    @property
    def duration(self) -> float | None:
        """Announced length in seconds (None: unknown)."""
        return None if self.frames is None else self.frames / self.sampling_rate


def check_max_duration(max_duration: Any) -> float | None:
    """``max_duration`` as seconds > 0, or None (no limit); AudioError otherwise."""
    if max_duration is None:
        return None
    number = isinstance(max_duration, int | float | np.integer | np.floating)
    if number and not isinstance(max_duration, bool) and max_duration > 0:
        return float(max_duration)  # inf: no limit either
    raise AudioError(f"max_duration must be a number of seconds > 0 or None, got {max_duration!r}")


def open_source(source: AudioSource) -> Source:
    """Something soundfile can open (a path or a seekable binary file) and a display name; a
    :class:`Source` is returned as it is (a stream is read only once)."""
    if isinstance(source, Source):
        return source
    if isinstance(source, bytes | bytearray | memoryview):
        if len(source) == 0:
            raise AudioError("<bytes>: is empty (0 bytes)")
        return Source(io.BytesIO(bytes(source)), "<bytes>")
    if isinstance(source, str | os.PathLike):
        return Source(*_check_path(source))
    if hasattr(source, "read"):
        return _file_object(source)
    raise AudioError(
        f"cannot read audio from a {type(source).__name__}; pass a path, bytes or a binary file"
    )


def _check_path(source: str | os.PathLike) -> tuple[str, str]:
    name = str(source)
    path = Path(source)
    try:
        os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise AudioError(
                f"{name}: is a symbolic link to {os.readlink(path)}, which does not exist"
            ) from None
        raise AudioError(f"{name}: no such file (looked for {path.absolute()})") from None
    except OSError as error:  # a symlink loop (ELOOP), a name too long, ...
        what = "a symbolic link loop" if error.errno == errno.ELOOP else error.strerror
        raise AudioError(f"{name}: cannot be opened: {what or error}") from None
    if path.is_dir():
        raise AudioError(f"{name}: is a directory, not an audio file")
    if not path.is_file():
        raise AudioError(f"{name}: is not a regular file (a pipe or device?)")
    if not os.access(path, os.R_OK):
        raise AudioError(f"{name}: permission denied; make the file readable")
    if path.stat().st_size == 0:
        raise AudioError(f"{name}: is empty (0 bytes)")
    return str(path), name


def _file_object(source: Any) -> Source:
    name = getattr(source, "name", None)
    name = name if isinstance(name, str) else "<file-like object>"
    if isinstance(source, io.TextIOBase):
        raise AudioError(f"{name}: is opened in text mode; open it with mode 'rb'")
    try:
        seekable = getattr(source, "seekable", None)
        if callable(seekable) and seekable():
            return Source(source, name, source.tell())
        data = source.read()  # a stream: buffer it, soundfile needs to seek
    except (OSError, ValueError) as exc:
        raise AudioError(f"{name}: cannot be read ({exc})") from exc
    if not isinstance(data, bytes | bytearray):
        raise AudioError(f"{name}: is not opened in binary mode")
    if not data:
        raise AudioError(f"{name}: is empty (0 bytes)")
    return Source(io.BytesIO(data), name)


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


def _open_soundfile(handle: Any, name: str) -> sf.SoundFile:
    try:
        return sf.SoundFile(handle)
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


def too_long(name: str, seconds: float, limit: float, *, announced: bool) -> AudioTooLongError:
    """The error for a recording over ``limit`` seconds (``announced`` by its header, or found
    while decoding)."""
    how = (
        f"its header announces {clock(seconds)}"
        if announced
        else f"decoding passed {clock(seconds)} (more than its header announced)"
    )
    return AudioTooLongError(
        f"{name}: {how}, longer than the limit of {clock(limit)} (max_duration={limit:g} s; "
        "CLI: --max-duration); raise the limit or cut the recording",
        duration=seconds,
        limit=limit,
    )


def clock(seconds: float) -> str:
    """``8.0 s`` under a minute, else ``2:03:04 (7384 s)``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = int(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d} ({seconds:.0f} s)"


class AudioReader:
    """An open audio file with checked :attr:`info`, read with :meth:`blocks` (see the module
    docstring). A context manager; ``max_duration`` None means no limit."""

    def __init__(
        self, source: Source, *, max_duration: float | None = DEFAULT_MAX_DURATION
    ) -> None:
        self.max_duration = check_max_duration(max_duration)
        handle, name, start = source
        if not isinstance(handle, str):
            handle.seek(start)
        check_header(handle, name)
        self._file = _open_soundfile(handle, name)
        try:
            self.info = self._check(name)
        except BaseException:
            self._file.close()
            raise

    def _check(self, name: str) -> AudioInfo:
        file = self._file
        check_header_rate(file.samplerate, name)
        check_header_channels(file.channels, name)
        if file.format == "OGG":
            _check_ogg_log(file.extra_info, name)
        frames = None if file.frames >= _UNKNOWN_FRAMES else int(file.frames)
        if frames == 0:
            raise AudioError(f"{name}: contains no audio (0 frames)")
        info = AudioInfo(name, int(file.samplerate), int(file.channels), frames, file.format)
        slack = 1 + MP3_LENGTH_TOLERANCE if info.format == "MP3" else 1.0
        limit = self.max_duration
        if limit is not None and info.duration is not None and info.duration > limit * slack:
            raise too_long(name, info.duration, limit, announced=True)
        return info

    def __enter__(self) -> AudioReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def blocks(self, frames: int | None = None) -> Iterator[np.ndarray]:
        """Decoded float32 blocks ``[frames, channels]`` at the file's rate, in order, of at
        most ``frames`` frames (default: ``BLOCK_SAMPLES`` samples over all channels). Integer
        files are scaled to [-1, 1). Raises AudioError (see the module docstring) as soon as a
        problem shows; the end-of-file checks run when the last block has been taken."""
        info = self.info
        size = frames or max(1024, BLOCK_SAMPLES // info.channels)
        limit = None if self.max_duration is None else self.max_duration * info.sampling_rate
        decoded = 0
        while True:
            block = self._read(size)
            if len(block) == 0:
                break
            decoded += len(block)
            if limit is not None and decoded > limit:
                seconds = decoded / info.sampling_rate
                raise too_long(info.name, seconds, self.max_duration, announced=False)
            whole = decoded == len(block) and decoded == info.frames
            finite_or_raise(
                block.T, info.name, info.sampling_rate, offset=decoded - len(block),
                read=None if whole else decoded,
            )  # fmt: skip
            yield block
        self._check_length(decoded)

    def _read(self, size: int) -> np.ndarray:
        try:
            if self.info.frames is None:
                return self._read_unknown_length(size)
            return self._file.read(size, dtype="float32", always_2d=True)
        except Exception as exc:
            detail = getattr(exc, "error_string", None) or str(exc)
            raise AudioError(
                f"{self.info.name}: audio data is corrupt or truncated; decoding failed "
                f"(libsndfile: {detail})"
            ) from exc

    def _read_unknown_length(self, size: int) -> np.ndarray:
        """``SoundFile.read`` seeks to its own position after every read, which libsndfile
        refuses in a FLAC that does not announce its length (a stream written to a pipe); read
        through the C function soundfile wraps, without that seek."""
        out = np.empty((size, self.info.channels), np.float32)
        pointer = sf._ffi.cast("float *", out.__array_interface__["data"][0])
        count = sf._snd.sf_readf_float(self._file._file, pointer, size)
        error = sf._snd.sf_error(self._file._file)
        if error:
            raise sf.LibsndfileError(error)
        return out[:count]

    def _check_length(self, decoded: int) -> None:
        info = self.info
        if info.frames is not None:
            missing = info.frames - decoded
            if missing > (MP3_LENGTH_TOLERANCE * info.frames if info.format == "MP3" else 0):
                raise AudioError(
                    f"{info.name}: truncated or corrupt: its header announces {info.frames} "
                    f"frames but only {decoded} could be decoded"
                )
        if decoded == 0:
            raise AudioError(f"{info.name}: contains no audio (0 frames)")


def probe_audio(
    source: AudioSource, *, max_duration: float | None = DEFAULT_MAX_DURATION
) -> AudioInfo:
    """The checked header of ``source`` (nothing decoded): AudioError for a file that cannot be
    read, lies in its header or announces more than ``max_duration`` seconds.

    >>> info = probe_audio("examples/03a02Wc.flac")
    >>> info.sampling_rate, info.channels, round(info.duration, 2)
    (16000, 1, 1.5)
    """
    opened = open_source(source)
    with AudioReader(opened, max_duration=max_duration) as reader:
        info = reader.info
    if not isinstance(opened.handle, str):
        opened.handle.seek(opened.start)
    return info
