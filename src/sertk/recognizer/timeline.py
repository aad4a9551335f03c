"""The arithmetic of a timeline: where the windows go, smoothing, and merging into segments.

Pure functions over seconds and probability arrays (no audio, no model), so each rule can be
read and tested on its own. :func:`recording_timeline` (behind :meth:`Recognizer.timeline`)
strings them together with the recording and the recognizer:

1. speech regions come from :func:`sertk.audio.speech_regions` (energy VAD); everything outside
   them becomes a ``silence`` segment, never an emotion;
2. :func:`plan_windows` lays windows of ``window`` seconds every ``hop`` seconds inside each region
   (a region shorter than a window gets one window, padded by the bundle's preprocessing as short
   training utterances were; a tail the ``hop`` grid leaves uncovered gets one more window aligned
   to the region's end, a full window rather than a short stub, unless the tail is under a
   quarter of the hop, which the last window then owns);
3. :func:`smooth` averages probabilities over neighbouring windows of the same region;
4. :func:`build_segments`: each window owns the stretch between the midpoints to its neighbours'
   centres (the first and last reach the region's edges); adjacent windows with the same label
   merge into one segment whose probabilities are the duration-weighted mean of its windows'.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sertk.audio import check_signal, is_audio_source, load_audio, resample, speech_regions
from sertk.errors import AudioError, ConfigError, SertkError
from sertk.recognizer.prediction import SILENCE, Segment, Timeline

DEFAULT_WINDOW = 3.0  # timeline window for bundles that keep whole utterances (duration None)
SMOOTHING_METHODS = ("mean", "median")
# a region's end left uncovered by the hop grid gets an end-aligned window when it is longer
# than this fraction of the hop; a shorter tail is owned by the last window without one
TAIL = 0.25
_EPS = 1e-9


def check_seconds(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """``value`` as a finite float > 0 (>= 0 with ``allow_zero``), else ConfigError."""
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )
    if number and math.isfinite(value) and (value > 0 or (allow_zero and value == 0)):
        return float(value)
    bound = ">= 0" if allow_zero else "> 0"
    raise ConfigError(f"{name} must be a number of seconds {bound}, got {value!r}")


def parse_smoothing(smoothing: int | str) -> tuple[str, int]:
    """``(method, windows)`` from ``smoothing``.

    An int ``k`` is a centred moving average of the probabilities over ``k`` windows (0 or 1: no
    smoothing); ``"median"`` is a per-class running median over 3 windows, and ``"mean:k"`` or
    ``"median:k"`` name the method and the number of windows.
    """
    if isinstance(smoothing, int | np.integer) and not isinstance(smoothing, bool):
        if smoothing >= 0:
            return "mean", max(int(smoothing), 1)
    elif isinstance(smoothing, str):
        method, _, count = smoothing.partition(":")
        if method in SMOOTHING_METHODS and (count == "" or count.isdigit()):
            default = 3 if method == "median" else 1
            return method, max(int(count) if count else default, 1)
    raise ConfigError(
        f"smoothing must be a number of windows >= 0, 'median', 'mean:K' or 'median:K'; "
        f"got {smoothing!r}"
    )


def plan_windows(
    regions: Sequence[tuple[float, float]], *, window: float, hop: float
) -> list[tuple[float, float, int]]:
    """``(start, end, region index)`` of every window, in time order (see the module docstring)."""
    window, hop = check_seconds("window", window), check_seconds("hop", hop)
    if hop > window + _EPS:
        raise ConfigError(
            f"hop ({hop} s) must not exceed window ({window} s): audio between windows "
            "would never be analysed"
        )
    spans: list[tuple[float, float, int]] = []
    for index, (first, last) in enumerate(regions):
        if last - first <= window + _EPS:
            spans.append((first, last, index))
            continue
        count = int((last - first - window + _EPS) // hop) + 1  # full windows that fit
        spans += [(first + k * hop, first + k * hop + window, index) for k in range(count)]
        if last - spans[-1][1] > TAIL * hop:
            spans.append((last - window, last, index))
    return spans


def smooth(probabilities: np.ndarray, method: str, windows: int) -> np.ndarray:
    """Smooth ``[n, classes]`` probabilities over ``windows`` neighbouring rows (centred, the
    neighbourhood shrinking at the ends); median rows are renormalised to sum to 1."""
    array = np.asarray(probabilities, dtype=np.float64)
    if windows <= 1 or len(array) <= 1:
        return array.copy()
    before, after = (windows - 1) // 2, windows // 2
    reduce = np.mean if method == "mean" else np.median
    out = np.stack(
        [reduce(array[max(0, i - before) : i + after + 1], axis=0) for i in range(len(array))]
    )
    return out / np.maximum(out.sum(axis=1, keepdims=True), 1e-12)


def _seconds(value: float) -> float:
    return round(float(value), 6)


def _region_segments(
    region: tuple[float, float],
    spans: list[tuple[float, float]],
    probabilities: np.ndarray,
    labels: Sequence[str],
) -> list[Segment]:
    """Speech segments of one region from its windows' (smoothed) probabilities ``[n, classes]``."""
    centres = [(start + end) / 2 for start, end in spans]
    middles = [(a + b) / 2 for a, b in zip(centres[:-1], centres[1:], strict=True)]
    bounds = np.array([region[0], *middles, region[1]])
    best = probabilities.argmax(axis=1)
    segments, first = [], 0
    for index in range(1, len(spans) + 1):
        if index < len(spans) and best[index] == best[first]:
            continue
        weights = np.diff(bounds[first : index + 1])
        weights = weights if weights.sum() > 0 else np.ones_like(weights)
        mean = (probabilities[first:index] * weights[:, None]).sum(axis=0) / weights.sum()
        label = int(best[first])
        segments.append(
            Segment(
                start=_seconds(bounds[first]),
                end=_seconds(bounds[index]),
                label=labels[label],
                confidence=float(mean[label]),
                probabilities={name: float(p) for name, p in zip(labels, mean, strict=True)},
                speech=True,
            )
        )
        first = index
    return segments


def _silence(start: float, end: float) -> Segment:
    return Segment(_seconds(start), _seconds(end), SILENCE, None, None, False)


def build_segments(
    *,
    duration: float,
    regions: Sequence[tuple[float, float]],
    spans: Sequence[tuple[float, float, int]],
    probabilities: np.ndarray,
    labels: Sequence[str],
) -> list[Segment]:
    """Segments tiling ``[0, duration]``: silence between regions, merged speech inside them.

    ``spans`` and ``probabilities`` (``[windows, classes]``, already smoothed) are row-aligned.
    """
    segments: list[Segment] = []
    cursor = 0.0
    for index, region in enumerate(regions):
        rows = [i for i, span in enumerate(spans) if span[2] == index]
        if not rows:
            continue
        if region[0] - cursor > 1e-6:
            segments.append(_silence(cursor, region[0]))
        own = [(spans[i][0], spans[i][1]) for i in rows]
        segments += _region_segments(region, own, probabilities[rows], labels)
        cursor = region[1]
    if duration - cursor > 1e-6 or not segments:
        segments.append(_silence(cursor, duration))
    return segments


def build_timeline(
    *,
    duration: float,
    regions: Sequence[tuple[float, float]],
    spans: Sequence[tuple[float, float, int]],
    probabilities: np.ndarray,
    labels: Sequence[str],
    window: float,
    hop: float,
    smoothing: int | str,
) -> Timeline:
    """The :class:`Timeline` from raw window ``probabilities`` ``[windows, classes]``."""
    labels = tuple(labels)
    raw = np.asarray(probabilities, dtype=np.float64).reshape(len(spans), len(labels))
    method, count = parse_smoothing(smoothing)
    smoothed = raw.copy()
    for index in {span[2] for span in spans}:  # smoothing never crosses a silence
        rows = [i for i, span in enumerate(spans) if span[2] == index]
        smoothed[rows] = smooth(raw[rows], method, count)
    windows = tuple(
        Segment(
            start=_seconds(start),
            end=_seconds(end),
            label=labels[int(row.argmax())],
            confidence=float(row.max()),
            probabilities={name: float(p) for name, p in zip(labels, row, strict=True)},
            speech=True,
        )
        for (start, end, _), row in zip(spans, raw, strict=True)
    )
    segments = build_segments(
        duration=duration, regions=regions, spans=spans, probabilities=smoothed, labels=labels
    )
    return Timeline(
        segments=tuple(segments),
        windows=windows,
        duration=_seconds(duration),
        labels=labels,
        window=float(window),
        hop=float(hop),
        smoothing=smoothing if isinstance(smoothing, str) else int(smoothing),
    )


def recording_timeline(
    recognizer: Any,
    source: Any,
    *,
    sampling_rate: int | None,
    window: float | None,
    hop: float,
    smoothing: int | str,
    min_speech: float,
    speaker: str | None,
    vad: Mapping[str, Any] | None,
    batch_size: int,
) -> Timeline:
    """:meth:`Recognizer.timeline` of ``recognizer`` (see there for the options): speech
    regions, windows in them, their predictions (``predict_batch``), then :func:`build_timeline`."""
    if window is None:
        crops = [p.duration for p, _ in recognizer.inputs if p.duration is not None]
        window = max(crops) if crops else DEFAULT_WINDOW
    window = check_seconds("window", window)
    hop = check_seconds("hop", hop)
    min_speech = check_seconds("min_speech", min_speech, allow_zero=True)
    parse_smoothing(smoothing)
    options = dict(vad or {})
    if "min_duration" in options:
        raise ConfigError("set the shortest speech region with min_speech=, not vad=")
    if recognizer.speaker_adapted and speaker is None:
        raise SertkError(
            f"{recognizer.bundle.path} is speaker-adapted: pass speaker= (one id for the whole "
            "recording; its windows supply the speaker statistics)"
        )
    rate = recognizer.sampling_rate
    signal = _mono(source, sampling_rate, rate)
    regions = speech_regions(signal, rate, min_duration=min_speech, **options)
    spans = plan_windows(regions, window=window, hop=hop)
    probabilities = np.zeros((0, len(recognizer.labels)))
    if spans:
        pieces = [signal[round(start * rate) : round(end * rate)] for start, end, _ in spans]
        speakers = None if speaker is None else [speaker] * len(pieces)
        predictions = recognizer.predict_batch(
            pieces, sampling_rate=rate, batch_size=batch_size, speakers=speakers
        )
        probabilities = np.array([list(p.probabilities.values()) for p in predictions])
    return build_timeline(
        duration=len(signal) / rate,
        regions=regions,
        spans=spans,
        probabilities=probabilities,
        labels=recognizer.labels,
        window=window,
        hop=hop,
        smoothing=smoothing,
    )


def _mono(source: Any, sampling_rate: int | None, rate: int) -> np.ndarray:
    """A whole recording as mono float32 ``[samples]`` at ``rate`` (the recognizer's)."""
    if is_audio_source(source):
        return load_audio(source, sampling_rate=rate)[0]
    if sampling_rate is None:
        raise AudioError("an in-memory signal needs its sampling_rate; pass sampling_rate=")
    signal = check_signal(source, sampling_rate)
    signal = signal.mean(axis=0) if signal.ndim == 2 else signal
    return resample(signal, int(sampling_rate), rate)
