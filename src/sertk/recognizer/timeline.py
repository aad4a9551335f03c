"""The arithmetic of a timeline: where the windows go, smoothing, and merging into segments.

Pure functions over seconds and probability arrays (no audio, no model), so each rule can be
read and tested on its own. :mod:`sertk.recognizer.long_audio` (behind
:meth:`Recognizer.timeline`) strings them together with the recording, read block by block,
and the recognizer:

1. speech regions come from :func:`sertk.audio.speech_regions` (energy VAD: an absolute floor in
   dBFS plus a margin over the running noise floor, the rule the live gate uses); everything
   outside them becomes a ``silence`` segment, never an emotion;
2. :func:`plan_windows` lays windows of ``window`` seconds every ``hop`` seconds inside each region
   (a region shorter than a window gets one window, padded by the bundle's preprocessing as short
   training utterances were; a tail the ``hop`` grid leaves uncovered gets one more window aligned
   to the region's end, a full window rather than a short stub, unless the tail is under a
   quarter of the hop, which the last window then owns);
3. probabilities are averaged over ``smooth`` seconds centred on each window, within its region
   (:func:`sertk.smoothing.average_over_span`, the definition the live engine shares);
4. :func:`build_segments`: each window owns the stretch between the midpoints to its neighbours'
   centres (the first and last reach the region's edges); adjacent windows with the same label
   merge into one segment whose probabilities are the duration-weighted mean of its windows'.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sertk.errors import ConfigError
from sertk.recognizer.prediction import NO_SPEECH, SILENCE, Segment, Timeline
from sertk.smoothing import average_over_span, check_smooth, seconds_from_windows

DEFAULT_WINDOW = 3.0  # timeline window for bundles that keep whole utterances (duration None)
VAD_OPTIONS = ("floor_db", "margin_db", "frame_ms", "hop_ms", "merge_gap")
DEPRECATED_VAD = ("threshold_db", "noise_margin_db")  # speech_regions warns about them
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


def timeline_smooth(smooth: Any, smoothing: Any, *, hop: float) -> float:
    """The ``smooth`` span in seconds, from ``smooth`` or, deprecated, the old ``smoothing``
    (a number of windows or "median[:K]"; a DeprecationWarning says how it was read)."""
    if smoothing is None:
        return check_smooth(smooth)
    if smooth:
        raise ConfigError("give smooth (seconds) or the deprecated smoothing, not both")
    span, note = seconds_from_windows(smoothing, hop=hop)
    warnings.warn(
        f"Recognizer.timeline(smoothing={smoothing!r}) (a number of windows) is deprecated and "
        f"goes away in the next release; use smooth=SECONDS (probabilities averaged over that "
        f"span): {note}",
        DeprecationWarning,
        stacklevel=4,  # the caller of Recognizer.timeline
    )
    return span


def check_vad(vad: Mapping[str, Any] | None) -> dict[str, Any]:
    """The :func:`sertk.audio.speech_regions` options in ``vad`` (ConfigError for others)."""
    options = dict(vad or {})
    if "min_duration" in options:
        raise ConfigError("set the shortest speech region with min_speech=, not vad=")
    unknown = sorted(set(options) - {*VAD_OPTIONS, *DEPRECATED_VAD})
    if unknown:
        raise ConfigError(f"vad= takes {', '.join(VAD_OPTIONS)}; got {unknown}")
    return options


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


def _seconds(value: float) -> float:
    return round(float(value), 6)


def _stretches(
    region: tuple[float, float], spans: Sequence[tuple[float, float]]
) -> tuple[np.ndarray, np.ndarray]:
    """Centres ``[n]`` of a region's windows and the ``[n + 1]`` bounds of the stretches they
    stand for: the midpoints between neighbouring centres, then the region's edges."""
    centres = np.array([(start + end) / 2 for start, end in spans])
    return centres, np.array([region[0], *(centres[:-1] + centres[1:]) / 2, region[1]])


def _region_segments(
    region: tuple[float, float],
    spans: list[tuple[float, float]],
    probabilities: np.ndarray,
    labels: Sequence[str],
) -> list[Segment]:
    """Speech segments of one region from its windows' (smoothed) probabilities ``[n, classes]``."""
    _, bounds = _stretches(region, spans)
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


def window_segment(
    span: tuple[float, float, int], row: np.ndarray, labels: Sequence[str]
) -> Segment:
    """The :class:`Segment` of one scored window: its raw probabilities ``[classes]`` (all NaN:
    a window without speech, a ``no speech`` segment)."""
    if np.isnan(row).all():
        return Segment(_seconds(span[0]), _seconds(span[1]), NO_SPEECH, None, None, False)
    return Segment(
        start=_seconds(span[0]),
        end=_seconds(span[1]),
        label=labels[int(np.argmax(row))],
        confidence=float(np.max(row)),
        probabilities={name: float(p) for name, p in zip(labels, row, strict=True)},
        speech=True,
    )


def rows_by_region(spans: Sequence[tuple[float, float, int]]) -> dict[int, list[int]]:
    """Row indices of ``spans`` per region index, in order."""
    rows: dict[int, list[int]] = {}
    for row, span in enumerate(spans):
        rows.setdefault(span[2], []).append(row)
    return rows


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
    by_region = rows_by_region(spans)
    for index, region in enumerate(regions):
        rows = by_region.get(index)
        if not rows:
            continue
        if region[0] - cursor > 1e-6:
            segments.append(_silence(cursor, region[0]))
        own = [(spans[i][0], spans[i][1]) for i in rows]
        if np.isnan(probabilities[rows]).all():  # no speech (issue 13): sound, no emotion
            segments.append(Segment(_seconds(region[0]), _seconds(region[1]), NO_SPEECH, None,
                                    None, False))  # fmt: skip
        else:
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
    smooth: float,
    model_sha256: str | None = None,
    speech: Sequence[bool] | None = None,
    adaptation: Any = None,
) -> Timeline:
    """The :class:`Timeline` from raw window ``probabilities`` ``[windows, classes]``, averaged
    over ``smooth`` seconds centred on each window within its region (``model_sha256``: the
    content hash of the bundle that scored them). Windows with ``speech`` False become
    ``no speech`` segments, their regions cut from the speech beside."""
    labels = tuple(labels)
    raw = np.asarray(probabilities, dtype=np.float64).reshape(len(spans), len(labels))
    if speech is not None and not all(speech):
        regions, spans = split_no_speech(regions, spans, speech)
        raw[[not flag for flag in speech]] = np.nan
    smooth = check_smooth(smooth)
    smoothed = raw.copy()
    for index, rows in rows_by_region(spans).items():  # smoothing never crosses a silence
        if np.isnan(raw[rows]).all():
            continue  # a no-speech run
        centres, bounds = _stretches(regions[index], [spans[i][:2] for i in rows])
        smoothed[rows] = average_over_span(raw[rows], bounds=bounds, at=centres, span=smooth)
    windows = tuple(window_segment(span, row, labels) for span, row in zip(spans, raw, strict=True))
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
        smooth=smooth,
        model_sha256=model_sha256,
        adaptation=adaptation,
    )


def split_no_speech(
    regions: Sequence[tuple[float, float]],
    spans: Sequence[tuple[float, float, int]],
    speech: Sequence[bool],
) -> tuple[list[tuple[float, float]], list[tuple[float, float, int]]]:
    """Regions cut where a run of speech windows meets a run of no-speech windows (at the
    midpoint between their centres), and the windows re-pointed at the new regions; the
    windows of each new region are then all speech or all no-speech."""
    new_regions: list[tuple[float, float]] = []
    new_spans: list[tuple[float, float, int]] = list(spans)
    for index, (first, last) in enumerate(regions):
        rows = [i for i, span in enumerate(spans) if span[2] == index]
        if not rows:
            new_regions.append((first, last))  # keeps the indices of later regions in step
            continue
        centres = [(spans[i][0] + spans[i][1]) / 2 for i in rows]
        start = first
        for k, row in enumerate(rows):
            ends_run = k + 1 == len(rows) or speech[rows[k + 1]] != speech[row]
            if k == 0 or speech[rows[k - 1]] != speech[row]:
                run_index = len(new_regions)
            new_spans[row] = (spans[row][0], spans[row][1], run_index)
            if ends_run:
                end = last if k + 1 == len(rows) else (centres[k] + centres[k + 1]) / 2
                new_regions.append((start, end))
                start = end
    return new_regions, new_spans
