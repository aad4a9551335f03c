"""Scoring the windows of a long recording: "no speech" windows and session adaptation.

:func:`score_windows` is what :func:`sertk.recognizer.timeline.recording_timeline` calls on the
windows it laid out in the speech regions:

1. every window is heard (audio checked for speech, preprocessed, features) in batches
   (:meth:`Recognizer.hear`); a window with sound but no speech (a tone, a hum, noise the
   energy detector let through) is marked, never given an emotion;
2. with session adaptation (``adapt=True``, or ``speaker=`` for a speaker-adapted bundle), the
   statistics of the recording's speech windows are accumulated (constant memory: sums per
   feature) with the seconds of speech they cover (the union of their spans, each second once),
   then every window is scored with them: two passes over the windows' features, the first
   adding block by block, so the statistics do not depend on how the windows are batched;
3. the model scores the windows (:meth:`Recognizer.answer`).

:func:`split_no_speech` cuts the speech regions where speech and no-speech windows meet, so
that smoothing never mixes them and each no-speech run becomes one ``no speech`` segment.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from sertk.recognizer.adaptation import Plan, plan_adaptation
from sertk.recognizer.prediction import AdaptationState


def covered_seconds(spans: Sequence[tuple[float, float]]) -> float:
    """Seconds covered by the union of ``(start, end)`` spans (overlaps counted once)."""
    total, reach = 0.0, -np.inf
    for start, end in sorted(spans):
        if end > reach:
            total += end - max(start, reach)
            reach = end
    return float(total)


def score_windows(
    recognizer: Any,
    pieces: list[np.ndarray],
    spans: Sequence[tuple[float, float, int]],
    *,
    rate: int,
    batch_size: int,
    adapt: bool,
    speaker: str | None,
) -> tuple[np.ndarray, list[bool], AdaptationState | None]:
    """Probabilities ``[windows, classes]`` (rows of no-speech windows that could not be
    scored are NaN), per window whether it holds speech, and the session's adaptation."""
    heard = recognizer.hear(pieces, sampling_rate=rate, batch_size=batch_size)
    speech = [heard.speech(i) for i in range(len(pieces))]
    plan = None
    if adapt:
        spoken = [i for i, yes in enumerate(speech) if yes]
        seconds = covered_seconds([spans[i][:2] for i in spoken])
        share = {i: seconds / len(spoken) for i in spoken}  # each second of speech once
        plan = plan_adaptation(recognizer.scorer, heard, speakers=[speaker] * len(pieces),
                               seconds=share)  # fmt: skip
        if plan.errors:
            raise next(iter(plan.errors.values()))
    predictions = recognizer.answer(heard, plan or Plan({}, {}, {}, {}))
    probabilities = np.full((len(pieces), len(recognizer.labels)), np.nan)
    for row, prediction in enumerate(predictions):
        if prediction.probabilities is not None:
            probabilities[row] = list(prediction.probabilities.values())
    state = None if plan is None else next(iter(plan.states.values()), None)
    return probabilities, speech, state


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
