"""Per-speaker normalisation, the stage a speaker-adapted scorer runs before its model.

A speaker-adapted bundle (``normalization: speaker``) was trained on features z-normalised with
each speaker's own statistics. At inference those statistics come from one of two places:

- ``speakers``: one id per item; the statistics of each speaker's items in the same call (a
  batch of files, the windows of one recording);
- ``statistics``: :data:`SpeakerStatistics` a caller keeps, e.g. accumulated over a live
  session with :func:`merge_statistics` (bounded memory: sums per dimension, whatever the
  duration); one for every item, or one per item (None: fall back to ``speakers``).

Statistics are per feature key (input and view), since every view of an utterance is a
different signal. How statistics become the normaliser is the bundle's
:class:`~sertk.features.normalization.Adaptation` (``zscore``: the speaker's own mean and std,
as in training; ``shrinkage``: pulled towards the training population's prior, weighted by the
``seconds`` of speech the statistics hold).

>>> stats = {(0, None): FeatureStatistics.of([np.ones((2, 3))])}
>>> merge_statistics(stats, stats)[(0, None)].count
4
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.augment import View
from sertk.errors import SertkError
from sertk.features.normalization import (
    Adaptation,
    FeatureStatistics,
    apply_statistics,
    group_by_speaker,
)

# feature key (input index, view) -> statistics of one speaker's features under that key
SpeakerStatistics = Mapping[Any, FeatureStatistics]


def statistics_to_json(statistics: SpeakerStatistics | None) -> list[dict[str, Any]] | None:
    """``statistics`` as plain JSON (lists of floats, exact: JSON keeps every float64 digit),
    for messages between processes that must not carry pickles; None stays None."""
    if statistics is None:
        return None
    return [
        {"input": key[0], "view": None if key[1] is None else dataclasses.asdict(key[1]),
         "count": value.count, "total": np.asarray(value.total).tolist(),
         "total_sq": np.asarray(value.total_sq).tolist(), "seconds": value.seconds}
        for key, value in statistics.items()
    ]  # fmt: skip


def statistics_from_json(document: Any) -> SpeakerStatistics | None:
    """The statistics :func:`statistics_to_json` wrote; SertkError for anything else."""
    if document is None:
        return None
    try:
        return {
            (int(entry["input"]), None if entry["view"] is None else View(**entry["view"])): (
                FeatureStatistics(
                    int(entry["count"]), np.asarray(entry["total"], dtype=np.float64),
                    np.asarray(entry["total_sq"], dtype=np.float64), float(entry["seconds"]),
                )
            )
            for entry in document
        }  # fmt: skip
    except (KeyError, TypeError, ValueError) as error:
        raise SertkError(f"statistics in a message are malformed: {error}") from None


def merge_statistics(first: SpeakerStatistics, second: SpeakerStatistics) -> SpeakerStatistics:
    """Key-wise merge of two speakers' (or one speaker's two stretches of) statistics."""
    keys = list(dict.fromkeys([*first, *second]))
    return {
        key: first[key].merge(second[key]) if key in first and key in second
        else first.get(key) or second[key]
        for key in keys
    }  # fmt: skip


def statistics_seconds(statistics: SpeakerStatistics | None) -> float:
    """Seconds of speech behind one speaker's statistics (0 for None or unknown)."""
    return 0.0 if not statistics else float(next(iter(statistics.values())).seconds)


def per_item(
    statistics: SpeakerStatistics | Sequence[SpeakerStatistics | None] | None, count: int
) -> list[SpeakerStatistics | None]:
    """``statistics`` as one entry (or None) per item."""
    if statistics is None:
        return [None] * count
    if isinstance(statistics, Mapping):
        return [statistics] * count
    entries = list(statistics)
    if len(entries) != count:
        raise SertkError(f"got {count} items but {len(entries)} statistics; give one each")
    return entries


def normalize_speakers(
    key: Any,
    items: list[np.ndarray],
    speakers: Sequence[str] | None,
    statistics: SpeakerStatistics | Sequence[SpeakerStatistics | None] | None,
    source: Path | None,
    *,
    adaptation: Adaptation | None = None,
    prior: Mapping[str, np.ndarray] | None = None,
) -> list[np.ndarray]:
    """``items`` (one array per item, feature key ``key``) normalised per speaker by
    ``adaptation`` (default: z-score) with ``prior`` (the population's ``{"mean", "std"}``)."""
    given = [
        None if entry is None else entry.get(key) for entry in per_item(statistics, len(items))
    ]
    missing = [i for i, stats in enumerate(given) if stats is None]
    if missing and speakers is None:
        raise SertkError(
            f"{source} was trained on per-speaker normalised features; pass speakers= (one id "
            "per utterance, several utterances per speaker) or the speaker's statistics"
        )
    if speakers is not None and len(speakers) != len(items):
        raise SertkError(f"got {len(items)} items but {len(speakers)} speakers; give one each")
    for indices in group_by_speaker([speakers[i] for i in missing] if missing else []).values():
        rows = [missing[i] for i in indices]
        stats = FeatureStatistics.of([items[row] for row in rows])
        for row in rows:
            given[row] = stats
    adaptation = adaptation or Adaptation()
    normalisers: dict[int, dict[str, np.ndarray]] = {}  # one per distinct statistics object
    out = []
    for stats, x in zip(given, items, strict=True):
        if id(stats) not in normalisers:
            normalisers[id(stats)] = adaptation.normaliser(stats, prior)
        out.append(apply_statistics(x, normalisers[id(stats)]))
    return out
