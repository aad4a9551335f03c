"""Feature normalisation statistics in numpy alone (training, the runner and every scorer).

:class:`FeatureStatistics` holds per-dimension running sums over frames (count, sum, sum of
squares, float64), so statistics can be built in one pass, updated with new features and merged
(a live session or a long recording accumulates them over time in constant memory); ``mean``
and ``std`` are float32 ``[dim]`` (``[layers, dim]`` for layered features), ``std`` floored at
1e-5. Sums rather than Welford's M2: merging is a plain addition and the statistics equal, bit
for bit, those every stored bundle and result was made with.

``fit_normalization`` is the ``{"mean", "std"}`` dict of one set (a torch bundle's global
statistics); ``speaker_statistics`` fits them per speaker, ``normalize_per_speaker`` applies
them (the speaker-adapted protocol). Nothing here imports torch.

>>> stats = FeatureStatistics.of([np.ones((3, 2)), np.zeros((1, 2))])
>>> stats.count, stats.mean.tolist()
(4, [0.75, 0.75])
>>> stats.merge(FeatureStatistics.of([np.ones((4, 2))])).mean.tolist()
[0.875, 0.875]
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from sertk.errors import SertkError

STD_FLOOR = 1e-5


@dataclasses.dataclass(frozen=True, eq=False)  # arrays have no truth value for ==
class FeatureStatistics:
    """Per-dimension statistics of the frames of some feature arrays (see the module docstring).

    ``count``: frames seen; ``total`` and ``total_sq``: float64 sums of the values and of their
    squares, ``[dim]`` or ``[layers, dim]``. Immutable: :meth:`update` and :meth:`merge` return
    new statistics, so several threads may read one safely.
    """

    count: int
    total: np.ndarray
    total_sq: np.ndarray

    @classmethod
    def of(cls, items: Iterable[Any]) -> FeatureStatistics:
        """Statistics over all frames of ``items``: arrays ``[frames, dim]`` (or ``[layers,
        frames, dim]``) or ``(features, label)`` pairs. SertkError when there are no frames."""
        total = total_sq = None
        frames = 0
        for item in items:
            features = item[0] if isinstance(item, tuple | list) else item
            array = np.asarray(features, dtype=np.float64)
            total = array.sum(axis=-2) + (0.0 if total is None else total)
            total_sq = (array**2).sum(axis=-2) + (0.0 if total_sq is None else total_sq)
            frames += array.shape[-2]
        if not frames:
            raise SertkError("cannot fit normalisation statistics on an empty dataset")
        return cls(frames, total, total_sq)

    def update(self, features: np.ndarray) -> FeatureStatistics:
        """These statistics plus the frames of one more array."""
        return self.merge(FeatureStatistics.of([features]))

    def merge(self, other: FeatureStatistics) -> FeatureStatistics:
        """Statistics of the frames of both (SertkError if their shapes differ)."""
        if other.total.shape != self.total.shape:
            raise SertkError(
                f"cannot merge feature statistics of shape {self.total.shape} and "
                f"{other.total.shape}; they come from different extractors"
            )
        return FeatureStatistics(
            self.count + other.count, other.total + self.total, other.total_sq + self.total_sq
        )

    @property
    def mean(self) -> np.ndarray:
        """float32 ``[dim]`` (or ``[layers, dim]``)."""
        return (self.total / self.count).astype(np.float32)

    @property
    def std(self) -> np.ndarray:
        """float32 ``[dim]`` (or ``[layers, dim]``), floored at ``STD_FLOOR``."""
        mean = self.total / self.count
        std = np.sqrt(np.maximum(self.total_sq / self.count - mean**2, 0.0))
        return np.maximum(std, STD_FLOOR).astype(np.float32)

    def to_dict(self) -> dict[str, np.ndarray]:
        """``{"mean", "std"}`` float32, as a torch bundle stores its global statistics."""
        return {"mean": self.mean, "std": self.std}

    def apply(self, features: np.ndarray) -> np.ndarray:
        """``(features - mean) / std`` as float32."""
        return apply_statistics(features, self.to_dict())


def fit_normalization(dataset: Sequence[Any]) -> dict[str, np.ndarray]:
    """Per-dimension ``mean``/``std`` over all frames of a training set, float32 ``[dim]``
    (``[layers, dim]`` for layered features); ``std`` is floored at 1e-5.

    Items are arrays ``[frames, dim]`` (or ``[layers, frames, dim]``) or ``(features, label)``.

    >>> fit_normalization([np.ones((3, 2)), np.zeros((1, 2))])["mean"].tolist()
    [0.75, 0.75]
    """
    return FeatureStatistics.of(dataset).to_dict()


def apply_statistics(features: np.ndarray, stats: Mapping[str, np.ndarray]) -> np.ndarray:
    """``(features - mean) / std`` as float32; ``features`` ``[frames, dim]`` or
    ``[layers, frames, dim]``, statistics ``[dim]`` or ``[layers, dim]``."""
    mean, std = stats["mean"][..., None, :], stats["std"][..., None, :]
    return ((np.asarray(features, np.float32) - mean) / std).astype(np.float32)


def group_by_speaker(speakers: Sequence[str]) -> dict[str, list[int]]:
    """Speaker id -> the positions of its items, in order of first appearance."""
    groups: dict[str, list[int]] = {}
    for index, speaker in enumerate(speakers):
        groups.setdefault(speaker, []).append(index)
    return groups


def speaker_statistics(
    features: Sequence[np.ndarray], speakers: Sequence[str]
) -> dict[str, dict[str, np.ndarray]]:
    """Speaker id -> ``fit_normalization`` of all of that speaker's items (labels unused)."""
    if len(features) != len(speakers):
        raise SertkError(
            f"got {len(features)} feature arrays but {len(speakers)} speakers; give one each"
        )
    return {
        speaker: fit_normalization([features[i] for i in indices])
        for speaker, indices in group_by_speaker(speakers).items()
    }


def normalize_per_speaker(
    features: Sequence[np.ndarray], speakers: Sequence[str]
) -> list[np.ndarray]:
    """Z-normalise each item with the mean/std of all frames of its speaker's items.

    ``features``: arrays ``[frames, dim]`` (or ``[layers, frames, dim]``, statistics per layer);
    ``speakers``: one speaker id per item. Returns new float32 arrays in the same order.
    """
    stats = speaker_statistics(features, speakers)
    return [apply_statistics(x, stats[s]) for x, s in zip(features, speakers, strict=True)]
