"""Energy speech detection: one per-frame decision for timelines, the live gate and the GUI.

A frame (``frame_ms`` of audio every ``hop_ms``; RMS level in dBFS, channels pooled) is speech
when both hold:

- its level is at least ``floor_db`` dBFS, an absolute floor: digital silence, dither and a
  very quiet line never count as speech, however quiet the rest of the recording is;
- its level is at least ``margin_db`` dB above the noise floor estimated up to that frame.

The noise floor follows the quietest frames: it drops at once to any frame quieter than the
estimate and otherwise rises by at most ``NOISE_RISE_DB`` dB per second, so it settles on the
background between words and sentences and adapts to a noise that gets louder (a fan switched
on) within seconds. It never goes below ``floor_db - margin_db`` (where the floor decides
anyway), so digital silence does not leave it far under the background that follows. It starts
at the 5th percentile of the first block's levels (the whole signal, in one call): a steady
sound that fills the first block with no quieter moment (a hum, a lone test tone) is taken as
the background. Nothing is relative to the loudest frame, so a quiet speaker is kept next to a
loud one: two speakers 35 dB apart are both speech as long as each is ``margin_db`` above the
background.

After the start the estimate only looks back, so :func:`speech_frames` can run block by block,
carrying ``noise_db`` (the last value of the returned estimate) from one block to the next:
from the same starting estimate, the decisions are those of one call over the whole signal.
Levels are computed in float32, a bounded chunk of frames at a time, so a long recording is
never copied as float64.

>>> tone = np.sin(np.arange(8000, dtype=np.float32) / 3)
>>> speech_regions(np.concatenate([np.zeros(8000, np.float32), tone]), 16000)
[(0.48, 1.0)]
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from sertk.audio._checks import as_signal, number
from sertk.audio.loading import check_rate

SILENCE_DB = -120.0  # level of digital silence (frame levels are clipped here)
MAX_DB = 400.0  # frame levels above this (samples over 10**19) are taken as this
FLOOR_DB = -80.0  # default absolute floor: 16-bit dither (about -100 dBFS) stays silence
MARGIN_DB = 10.0  # default margin over the noise floor
NOISE_RISE_DB = 3.0  # the noise-floor estimate rises by at most this many dB per second
NOISE_START_PERCENTILE = 5.0  # the estimate starts at this percentile of the first block
_CHUNK_FRAMES = 4096  # frames whose levels are computed at once (bounds the working memory)
DECIDE_BLOCK = 1 << 16  # frame decisions made at once by regions_of_levels (11 min at 10 ms)


def frame_levels(
    signal: np.ndarray, sampling_rate: int, *, frame_ms: float = 25.0, hop_ms: float = 10.0
) -> tuple[np.ndarray, int, int]:
    """RMS level in dBFS of every frame, float32 ``[frames]`` (channels pooled, clipped at
    ``SILENCE_DB``), and the frame length and hop in samples. Frame ``k`` starts at sample
    ``k * hop``; the last frame is zero-padded to full length.

    >>> levels, frame, hop = frame_levels(np.full(16000, 0.1, np.float32), 16000)
    >>> len(levels), frame, hop, round(float(levels[0]), 1)
    (99, 400, 160, -20.0)
    """
    array = as_signal(signal)
    check_rate(sampling_rate)
    frame_ms = number("frame_ms", frame_ms, low=0.1, high=10_000.0)
    hop_ms = number("hop_ms", hop_ms, low=0.1, high=10_000.0)
    frame = max(1, round(frame_ms * sampling_rate / 1000))
    hop = max(1, round(hop_ms * sampling_rate / 1000))
    channels = array.reshape(-1, array.shape[-1])
    samples = channels.shape[1]
    count = 1 + max(0, math.ceil((samples - frame) / hop))
    full = (samples - frame) // hop + 1 if samples >= frame else 0  # frames without padding
    power = np.zeros(count, np.float32)
    for channel in channels:
        for first in range(0, full, _CHUNK_FRAMES):
            last = min(full, first + _CHUNK_FRAMES)
            view = sliding_window_view(channel[first * hop : (last - 1) * hop + frame], frame)
            view = view[::hop]
            power[first:last] += np.einsum("ij,ij->i", view, view) / np.float32(frame)
        for index in range(full, count):
            tail = channel[index * hop :]
            power[index] += np.dot(tail, tail) / np.float32(frame)
    power /= np.float32(len(channels))
    with np.errstate(divide="ignore"):
        levels = 10.0 * np.log10(power)
    return np.maximum(levels, np.float32(SILENCE_DB)).astype(np.float32), frame, hop


def check_thresholds(
    floor_db: float, margin_db: float, *, names: tuple[str, str] = ("floor_db", "margin_db")
) -> tuple[float, float]:
    """``(floor_db, margin_db)`` as floats in range (ConfigError naming ``names`` if not)."""
    return (
        number(names[0], floor_db, low=SILENCE_DB, high=0.0),
        number(names[1], margin_db, low=0.0, high=120.0),
    )


def speech_frames(
    levels_db: np.ndarray,
    *,
    hop_s: float,
    floor_db: float = FLOOR_DB,
    margin_db: float = MARGIN_DB,
    noise_db: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The decision (see the module docstring): bool ``[frames]`` (speech or not) and the noise
    floor estimate float32 ``[frames]`` in dBFS, for frame levels ``levels_db`` ``[frames]``
    spaced ``hop_s`` seconds apart. ``noise_db`` carries the estimate from the previous block
    (its last value); None starts afresh, from these levels.

    >>> active, noise = speech_frames(np.array([-90, -90, -30, -30, -90.0]), hop_s=0.01)
    >>> active.tolist(), [round(float(x), 2) for x in noise]
    ([False, False, True, True, False], [-90.0, -90.0, -89.97, -89.94, -90.0])
    """
    levels = np.asarray(levels_db, dtype=np.float64).reshape(-1)
    hop_s = number("hop_s", hop_s, low=1e-6, high=10.0)
    floor_db, margin_db = check_thresholds(floor_db, margin_db)
    if len(levels) == 0:
        return np.zeros(0, bool), np.zeros(0, np.float32)
    if noise_db is None:
        noise_db = float(np.percentile(levels, NOISE_START_PERCENTILE))
    noise_db = number("noise_db", noise_db, low=SILENCE_DB, high=0.0)
    active, noise = _decide(levels, noise_db, hop_s=hop_s, floor_db=floor_db, margin_db=margin_db)
    return active, noise.astype(np.float32)


def _decide(
    levels: np.ndarray, noise_db: float, *, hop_s: float, floor_db: float, margin_db: float
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`speech_frames` on float64 ``levels`` after the estimate ``noise_db``: the
    decisions and the float64 estimate (its last value carries to the next block)."""
    lowest = floor_db - margin_db
    noise_db = max(noise_db, lowest)
    rise = NOISE_RISE_DB * hop_s
    # noise[t] = min(max(levels[t], lowest), noise[t - 1] + rise), unrolled: a running minimum
    ramp = rise * np.arange(len(levels))
    floored = np.maximum(levels, lowest)
    noise = ramp + np.minimum(noise_db + rise, np.minimum.accumulate(floored - ramp))
    active = (levels >= floor_db) & (levels >= noise + margin_db)
    return active, noise


class LevelMeter:
    """:func:`frame_levels` of a mono signal given block by block (:meth:`add`), in float32:
    the same frames as one call over the whole signal (frame ``k`` starts at sample
    ``k * hop``; the last one zero-padded), with less than one frame of samples carried between
    blocks. :meth:`levels` returns them all (4 bytes per ``hop_ms``: 1.4 MB per audio hour).

    >>> meter = LevelMeter(16000)
    >>> for block in np.array_split(np.full(16000, 0.1, np.float32), 7):
    ...     meter.add(block)
    >>> np.array_equal(meter.levels(), frame_levels(np.full(16000, 0.1, np.float32), 16000)[0])
    True
    """

    def __init__(self, sampling_rate: int, *, frame_ms: float = 25.0, hop_ms: float = 10.0):
        self.sampling_rate = check_rate(sampling_rate)
        self.frame_ms, self.hop_ms = frame_ms, hop_ms
        _, self.frame, self.hop = frame_levels(np.zeros(1, np.float32), sampling_rate,
                                               frame_ms=frame_ms, hop_ms=hop_ms)  # fmt: skip
        self.samples = 0
        self._pending = np.zeros(0, np.float32)
        self._parts: list[np.ndarray] = []

    def add(self, block: np.ndarray) -> None:
        """The next mono float32 ``[samples]`` of the signal."""
        block = as_signal(block).reshape(-1)
        self.samples += len(block)
        buffer = np.concatenate([self._pending, block])
        if len(buffer) >= self.frame:
            count = (len(buffer) - self.frame) // self.hop + 1  # whole frames now complete
            end = (count - 1) * self.hop + self.frame
            self._parts.append(self._levels(buffer[:end]))
            buffer = buffer[count * self.hop :]
        self._pending = buffer.copy()

    def _levels(self, signal: np.ndarray) -> np.ndarray:
        options = {"frame_ms": self.frame_ms, "hop_ms": self.hop_ms}
        return frame_levels(signal, self.sampling_rate, **options)[0]

    def levels(self) -> np.ndarray:
        """float32 ``[frames]`` of everything added (empty before any sample)."""
        if self.samples == 0:
            return np.zeros(0, np.float32)
        total = 1 + max(0, math.ceil((self.samples - self.frame) / self.hop))
        parts = list(self._parts)
        if sum(len(part) for part in parts) < total:  # the last, zero-padded frame
            parts.append(self._levels(self._pending)[:1])
        return np.concatenate(parts) if len(parts) != 1 else parts[0]


def frame_regions(
    active: np.ndarray,
    *,
    frame: int,
    hop: int,
    sampling_rate: int,
    samples: int,
    merge_gap: float,
    min_duration: float,
) -> list[tuple[float, float]]:
    """``[(start_s, end_s), ...]`` of the runs of active frames: a run spans its first frame's
    start to its last frame's end (at most ``samples``); runs closer than ``merge_gap`` seconds
    merge, then those shorter than ``min_duration`` seconds are dropped."""
    edges = np.diff(np.concatenate([[0], np.asarray(active, dtype=np.int8), [0]]))
    duration = samples / sampling_rate
    regions: list[tuple[float, float]] = []
    for first, stop in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
        start_s = float(first * hop / sampling_rate)
        end_s = float(min(((stop - 1) * hop + frame) / sampling_rate, duration))
        if regions and start_s - regions[-1][1] < merge_gap:
            regions[-1] = (regions[-1][0], end_s)
        else:
            regions.append((start_s, end_s))
    return [(start, end) for start, end in regions if end - start >= min_duration]


def _deprecated_options(
    levels: np.ndarray, active: np.ndarray, threshold_db: float | None
) -> np.ndarray:
    """``threshold_db`` (relative to the loudest frame), kept for one release."""
    if threshold_db is None:
        return active
    threshold_db = number("threshold_db", threshold_db, low=-200.0, high=0.0)
    warnings.warn(
        "speech_regions(threshold_db=...) is deprecated and goes away in the next release: a "
        "threshold relative to the loudest frame drops quiet speakers; use floor_db (absolute "
        "dBFS) and margin_db (dB over the noise floor)",
        DeprecationWarning,
        stacklevel=3,
    )
    return active & (levels >= levels.max() + threshold_db)


def speech_regions(
    signal: np.ndarray,
    sampling_rate: int,
    *,
    floor_db: float = FLOOR_DB,
    margin_db: float = MARGIN_DB,
    frame_ms: float = 25.0,
    hop_ms: float = 10.0,
    min_duration: float = 0.1,
    merge_gap: float = 0.3,
    threshold_db: float | None = None,
    noise_margin_db: float | None = None,
) -> list[tuple[float, float]]:
    """Energy-based voice activity: ``[(start_s, end_s), ...]`` of the speech in ``signal``.

    Frames are speech by the rule of the module docstring (``floor_db`` dBFS absolute floor,
    ``margin_db`` dB over the running noise floor); regions closer than ``merge_gap`` seconds
    are merged, then those shorter than ``min_duration`` seconds dropped. It is an energy
    detector: a steady sound (a tone, a fan) counts as speech until the noise-floor estimate
    has risen to it (about ``margin_db`` dB below it after its level minus the background,
    divided by ``NOISE_RISE_DB``, seconds). ``noise_margin_db`` is the old name of
    ``margin_db`` and ``threshold_db`` (relative to the loudest frame) the old rule; both work,
    with a DeprecationWarning, for one release.
    """
    array = as_signal(signal)
    min_duration = number("min_duration", min_duration, low=0.0, high=1e6)
    merge_gap = number("merge_gap", merge_gap, low=0.0, high=1e6)
    if noise_margin_db is not None:
        warnings.warn(
            "speech_regions(noise_margin_db=...) is deprecated: it is called margin_db now",
            DeprecationWarning,
            stacklevel=2,
        )
        margin_db = noise_margin_db
    if array.shape[-1] == 0:
        return []
    levels, frame, hop = frame_levels(array, sampling_rate, frame_ms=frame_ms, hop_ms=hop_ms)
    return regions_of_levels(
        levels, frame=frame, hop=hop, sampling_rate=sampling_rate, samples=array.shape[-1],
        floor_db=floor_db, margin_db=margin_db, min_duration=min_duration, merge_gap=merge_gap,
        threshold_db=threshold_db,
    )  # fmt: skip


def regions_of_levels(
    levels: np.ndarray,
    *,
    frame: int,
    hop: int,
    sampling_rate: int,
    samples: int,
    floor_db: float = FLOOR_DB,
    margin_db: float = MARGIN_DB,
    min_duration: float = 0.1,
    merge_gap: float = 0.3,
    threshold_db: float | None = None,
) -> list[tuple[float, float]]:
    """:func:`speech_regions` from the frame ``levels`` float32 ``[frames]`` of a signal of
    ``samples`` samples (:func:`frame_levels` or a :class:`LevelMeter`; ``frame`` and ``hop``
    in samples). The decisions are made ``DECIDE_BLOCK`` frames at a time, the noise-floor
    estimate carried from block to block, after starting it from all the levels as one call
    over the whole signal does."""
    min_duration = number("min_duration", min_duration, low=0.0, high=1e6)
    merge_gap = number("merge_gap", merge_gap, low=0.0, high=1e6)
    floor_db, margin_db = check_thresholds(floor_db, margin_db)
    # samples far over full scale overflow float32 power: keep such levels finite
    levels = np.minimum(np.asarray(levels, dtype=np.float32).reshape(-1), np.float32(MAX_DB))
    if len(levels) == 0:
        return []
    hop_s = number("hop_s", hop / sampling_rate, low=1e-6, high=10.0)
    noise_db = float(np.percentile(levels.astype(np.float64), NOISE_START_PERCENTILE))
    active = np.zeros(len(levels), bool)
    for first in range(0, len(levels), DECIDE_BLOCK):
        chunk = levels[first : first + DECIDE_BLOCK].astype(np.float64)
        decided, noise = _decide(
            chunk, noise_db, hop_s=hop_s, floor_db=floor_db, margin_db=margin_db
        )
        active[first : first + len(chunk)] = decided
        noise_db = float(noise[-1])
    active = _deprecated_options(levels, active, threshold_db)
    return frame_regions(
        active, frame=frame, hop=hop, sampling_rate=sampling_rate, samples=samples,
        merge_gap=merge_gap, min_duration=min_duration,
    )  # fmt: skip
