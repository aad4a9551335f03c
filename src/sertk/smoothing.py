"""Smoothing of emotion probabilities over time: one definition for timelines, live and the GUI.

``smooth`` is a span of time in seconds. The scored windows' probabilities form a track over
time, each window's probabilities holding over the stretch it stands for: in a timeline, from
the midpoint to its previous neighbour's centre to the midpoint to its next neighbour's (the
first and last reach the edges of the speech region); live, since the previous result. A
window's smoothed probabilities are the mean of that track over the ``smooth`` seconds
**centred on the window** in a timeline (the whole recording is known) or **ending at it**
live (only the past is known), cut to the stretch of speech the window belongs to: smoothing
never crosses a silence. ``smooth=0`` is no smoothing. With windows every ``hop`` seconds,
``smooth = k * hop`` averages ``k`` windows with equal weight (k odd in a timeline).

The same number therefore means the same thing in ``sertk predict --timeline --smooth``,
``Recognizer.timeline(smooth=)``, ``sertk listen --smooth``, ``StreamingEngine(smooth=)``,
``sertk gui --smooth`` and the REST API's ``/v1/timeline?smooth=``.

>>> rows = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
>>> average_over_span(rows, bounds=[0, 1, 2, 3], at=[0.5, 1.5, 2.5], span=3.0).round(3).tolist()
[[0.5, 0.5], [0.667, 0.333], [0.5, 0.5]]
"""

from __future__ import annotations

import collections
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from sertk.errors import ConfigError

LIVE_SMOOTH = 1.5  # seconds: live default (3 windows at a 0.5 s hop; the old weight 0.5)
_EPS = 1e-9


def check_smooth(value: Any, *, name: str = "smooth") -> float:
    """``value`` as seconds >= 0 (finite), else ConfigError."""
    number = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool
    )
    if number and math.isfinite(value) and value >= 0:
        return float(value)
    raise ConfigError(
        f"{name} must be a number of seconds >= 0 (the span over which probabilities are "
        f"averaged; 0: none), got {value!r}"
    )


def average_over_span(
    probabilities: np.ndarray,
    *,
    bounds: Sequence[float],
    at: Sequence[float],
    span: float,
    causal: bool = False,
) -> np.ndarray:
    """Smoothed ``[n, classes]``: row ``i`` is the time-weighted mean of the track (row ``j``
    holding over ``[bounds[j], bounds[j + 1]]``, ``bounds`` ``[n + 1]`` ascending) over
    ``[at[i] - span / 2, at[i] + span / 2]``, or ``[at[i] - span, at[i]]`` when ``causal``,
    cut to ``[bounds[0], bounds[-1]]``. A row whose span is empty keeps its own value."""
    rows = np.asarray(probabilities, dtype=np.float64)
    span = check_smooth(span)
    if span <= 0 or len(rows) <= 1:
        return rows.copy()
    edges = np.asarray(bounds, dtype=np.float64)
    times = np.asarray(at, dtype=np.float64)
    if edges.shape != (len(rows) + 1,) or times.shape != (len(rows),):
        raise ConfigError(
            f"average_over_span needs {len(rows) + 1} bounds and {len(rows)} times for "
            f"{len(rows)} rows, got {edges.shape} and {times.shape}"
        )
    # the track's integral at the bounds; between them it grows linearly
    widths = np.diff(edges)
    integral = np.vstack([np.zeros(rows.shape[1]), np.cumsum(rows * widths[:, None], axis=0)])
    low = times - (span if causal else span / 2)
    high = times if causal else times + span / 2
    low, high = np.clip(low, edges[0], edges[-1]), np.clip(high, edges[0], edges[-1])

    def integral_at(points: np.ndarray) -> np.ndarray:
        index = np.clip(np.searchsorted(edges, points, side="right") - 1, 0, len(rows) - 1)
        return integral[index] + rows[index] * (points - edges[index])[:, None]

    length = high - low
    out = rows.copy()
    usable = length > _EPS
    out[usable] = (integral_at(high[usable]) - integral_at(low[usable])) / length[usable, None]
    return out


def seconds_from_windows(smoothing: Any, *, hop: float) -> tuple[float, str]:
    """The ``smooth`` span for an old timeline ``smoothing`` (a number of windows, "mean:K",
    "median" or "median:K"), and a note on how it was read. ConfigError if it is none of them."""
    method, count = "mean", None
    if isinstance(smoothing, int | np.integer) and not isinstance(smoothing, bool):
        count = int(smoothing) if smoothing >= 0 else None
    elif isinstance(smoothing, str):
        method, _, text = smoothing.partition(":")
        if method.isdigit() and not text:
            method, text = "mean", method
        if method in ("mean", "median") and (text == "" or text.isdigit()):
            count = int(text) if text else (3 if method == "median" else 1)
    if count is None:
        raise ConfigError(
            f"smoothing must be a number of windows >= 0, 'median', 'mean:K' or 'median:K' "
            f"(deprecated; use smooth=SECONDS), got {smoothing!r}"
        )
    span = count * hop if count > 1 else 0.0
    note = f"read as {span:g} s ({count} windows every {hop:g} s)"
    if method == "median":
        note += "; the median is replaced by the mean over that span"
    return span, note


def seconds_from_weight(weight: Any, *, hop: float) -> tuple[float, str]:
    """The causal ``smooth`` span for an old live ``smoothing`` weight in (0, 1] (of the newest
    window in an exponential average): ``(2 / weight - 1) * hop``, the span of the moving
    average with the same centre of mass; and a note on how it was read."""
    if isinstance(weight, bool) or not isinstance(weight, int | float) or not 0 < weight <= 1:
        raise ConfigError(
            f"smoothing must be a weight in (0, 1] (1 = no smoothing; deprecated, use "
            f"smooth=SECONDS), got {weight!r}"
        )
    windows = 2.0 / weight - 1.0
    span = windows * hop if windows > 1 + _EPS else 0.0
    return (
        span,
        f"read as {span:g} s (weight {weight:g} is about {windows:g} windows every {hop:g} s)",
    )


class TrailingAverage:
    """The live form of :func:`average_over_span` with ``causal=True``: rows arrive in time
    order (``add``), each holding since the one before it (the first of a stretch of speech for
    the ``hop`` before it); ``restart`` at a silence. Keeps only the rows of the last ``span``
    seconds.

    >>> average = TrailingAverage(span=1.0, hop=0.5)
    >>> [average.add(t, np.array(row)).tolist() for t, row in [(3.0, [1.0, 0.0]), (3.5, [0.0, 1.0])]]
    [[1.0, 0.0], [0.5, 0.5]]
    """

    def __init__(self, *, span: float, hop: float) -> None:
        self.span, self.hop = check_smooth(span), float(hop)
        self._rows: collections.deque[tuple[float, np.ndarray]] = collections.deque()
        self._start = 0.0  # where the oldest kept row's stretch begins

    @staticmethod
    def span_of(smooth: Any, smoothing: Any, *, hop: float) -> float:
        """``smooth`` in seconds, or the deprecated live ``smoothing`` weight converted to it
        (with a DeprecationWarning)."""
        if smoothing is None:
            return check_smooth(smooth)
        span, note = seconds_from_weight(smoothing, hop=hop)
        warnings.warn(
            f"StreamingEngine(smoothing={smoothing!r}) (a weight) is deprecated and goes away in "
            f"the next release; use smooth=SECONDS (probabilities averaged over that span): {note}",
            DeprecationWarning,
            stacklevel=3,
        )
        return span

    def restart(self, at: float) -> None:
        """A silence at ``at`` seconds: the next row starts a new stretch."""
        self._rows.clear()
        self._start = at

    def add(self, at: float, row: np.ndarray) -> np.ndarray:
        """``row`` (``[classes]``, at ``at`` seconds) averaged with the rows of the last
        ``span`` seconds."""
        if not self._rows:
            self._start = max(self._start, at - self.hop)
        self._rows.append((at, np.asarray(row, dtype=np.float64)))
        while len(self._rows) > 1 and self._rows[0][0] <= at - self.span:  # out of the span
            self._start = self._rows.popleft()[0]
        times = [time for time, _ in self._rows]
        rows = np.stack([value for _, value in self._rows])
        return average_over_span(
            rows, bounds=[self._start, *times], at=times, span=self.span, causal=True
        )[-1]
