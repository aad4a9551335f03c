"""Long recordings as mono blocks at one rate, never held whole.

:func:`audio_blocks` turns a file (path, bytes, binary file object) or an in-memory signal into a
re-iterable :class:`AudioStream`: each pass yields float32 ``[samples]`` blocks of the recording,
downmixed and resampled block by block. A file is decoded again on every pass (so an analysis
can look at the recording twice in bounded memory); its header is checked, and the
``max_duration`` limit applied, when the stream is made. Resampling uses soxr's
``ResampleStream``, whose output equals resampling the whole recording at once (tested).

>>> stream = audio_blocks("examples/03a02Wc.flac", sampling_rate=8000)
>>> round(stream.duration, 2), sum(len(block) for block in stream) / 8000
(1.5, 1.49...)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import soxr

from sertk.audio._checks import check_rate
from sertk.audio.loading import check_signal, is_audio_source, resample
from sertk.audio.reader import (
    BLOCK_SAMPLES,
    DEFAULT_MAX_DURATION,
    AudioReader,
    check_max_duration,
    open_source,
    too_long,
)
from sertk.errors import AudioError


class AudioStream:
    """A recording as mono float32 blocks ``[samples]`` at :attr:`sampling_rate`; iterate it
    (again) to read it (again). ``duration`` is its announced length in seconds (None when the
    file does not say), ``name`` how messages name it."""

    name: str
    sampling_rate: int
    duration: float | None

    def __iter__(self) -> Iterator[np.ndarray]:
        raise NotImplementedError


class FileStream(AudioStream):
    """A file decoded block by block on every pass (see the module docstring)."""

    def __init__(self, source: Any, *, sampling_rate: int, max_duration: float | None) -> None:
        self.sampling_rate = check_rate(sampling_rate, what="requested sampling_rate")
        self.max_duration = check_max_duration(max_duration)
        self._source = open_source(source)
        with self._reader() as reader:  # header checks and the limit, before any decoding
            self.info = reader.info
        self.name, self.duration = self.info.name, self.info.duration

    def _reader(self) -> AudioReader:
        return AudioReader(self._source, max_duration=self.max_duration)

    def __iter__(self) -> Iterator[np.ndarray]:
        with self._reader() as reader:
            rate, target = reader.info.sampling_rate, self.sampling_rate
            resampler = (
                None
                if rate == target
                else soxr.ResampleStream(rate, target, 1, dtype="float32", quality="HQ")
            )
            for block in reader.blocks():
                mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1)
                if resampler is not None:
                    mono = resampler.resample_chunk(np.ascontiguousarray(mono), last=False)
                if len(mono):
                    yield np.ascontiguousarray(mono, dtype=np.float32)
            if resampler is not None:
                tail = resampler.resample_chunk(np.zeros(0, np.float32), last=True)
                if len(tail):
                    yield np.ascontiguousarray(tail, dtype=np.float32)


class SignalStream(AudioStream):
    """An in-memory signal, checked, downmixed and resampled once, then served in blocks."""

    def __init__(
        self, signal: Any, source_rate: Any, *, sampling_rate: int, max_duration: float | None
    ) -> None:
        self.name = "signal"
        self.sampling_rate = check_rate(sampling_rate, what="requested sampling_rate")
        if source_rate is None:
            raise AudioError("an in-memory signal needs its sampling_rate; pass sampling_rate=")
        array = check_signal(signal, source_rate)
        limit = check_max_duration(max_duration)
        seconds = array.shape[-1] / int(source_rate)
        if limit is not None and seconds > limit:
            raise too_long(self.name, seconds, limit, announced=True)
        array = array.mean(axis=0) if array.ndim == 2 else array
        self._signal = resample(array, int(source_rate), self.sampling_rate)
        self.duration = len(self._signal) / self.sampling_rate

    def __iter__(self) -> Iterator[np.ndarray]:
        for start in range(0, len(self._signal), BLOCK_SAMPLES):
            yield self._signal[start : start + BLOCK_SAMPLES]


def audio_blocks(
    source: Any,
    *,
    sampling_rate: int = 16000,
    source_rate: int | None = None,
    max_duration: float | None = DEFAULT_MAX_DURATION,
) -> AudioStream:
    """``source`` (a path, bytes, binary file object, or a signal ``[samples]`` or ``[channels,
    samples]`` at ``source_rate``) as an :class:`AudioStream` at ``sampling_rate`` Hz.

    Raises AudioError now for a file that cannot be opened, lies in its header or announces
    more than ``max_duration`` seconds (None: no limit), or a bad signal; errors found while
    decoding (truncation, NaN, a file longer than announced and the limit) come from the
    iteration that meets them.
    """
    if is_audio_source(source):
        return FileStream(source, sampling_rate=sampling_rate, max_duration=max_duration)
    return SignalStream(source, source_rate, sampling_rate=sampling_rate, max_duration=max_duration)


def envelope(stream: AudioStream, *, sampling_rate: int = 1000) -> np.ndarray:
    """A small stand-in for drawing a long recording: float32 ``[samples]`` at
    ``sampling_rate`` Hz that holds, for every stretch of ``2 / sampling_rate`` seconds, the
    stretch's minimum then its maximum, so a waveform drawn from it has the recording's outline
    (1 kHz: 29 MB for two hours, read block by block).

    >>> envelope(audio_blocks(np.ones(16000, np.float32), source_rate=16000)).shape
    (1000,)
    """
    rate = check_rate(sampling_rate, what="envelope sampling_rate")
    step = max(1, round(2 * stream.sampling_rate / rate))  # input samples per (min, max) pair
    carry, parts = np.zeros(0, np.float32), []
    for block in stream:
        buffer = np.concatenate([carry, block])
        whole = len(buffer) // step * step
        stretches = buffer[:whole].reshape(-1, step)
        parts.append(np.stack([stretches.min(axis=1), stretches.max(axis=1)], axis=1).ravel())
        carry = buffer[whole:]
    if len(carry):
        parts.append(np.array([carry.min(), carry.max()], np.float32))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)
