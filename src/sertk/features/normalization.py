"""Feature normalisation statistics in numpy alone (training, the runner and every scorer).

:class:`FeatureStatistics` holds per-dimension running sums over frames (count, sum, sum of
squares, float64), so statistics can be built in one pass, updated with new features and merged
(a live session or a long recording accumulates them over time in constant memory); ``mean``
and ``std`` are float32 ``[dim]`` (``[layers, dim]`` for layered features), ``std`` floored at
1e-5. Sums rather than Welford's M2: merging is a plain addition and the statistics equal, bit
for bit, those every stored bundle and result was made with.

``seconds`` (optional) is how many seconds of speech the frames came from, added up by
:meth:`~FeatureStatistics.merge`: the unit in which test-time adaptation asks for a minimum
amount of a speaker's audio and weighs a prior (:class:`Adaptation`).

``fit_normalization`` is the ``{"mean", "std"}`` dict of one set (a torch bundle's global
statistics); ``speaker_statistics`` fits them per speaker, ``normalize_per_speaker`` applies
them (the speaker-adapted protocol). How a speaker's statistics become the normaliser at test
time is an :class:`Adaptation` (``zscore``: as they are, exactly as in training; ``shrinkage``:
pulled towards the training population's prior, :func:`population_prior`). Nothing here
imports torch.

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

from sertk.errors import ConfigError, SertkError

STD_FLOOR = 1e-5
ADAPTATION_METHODS = ("zscore", "shrinkage")


@dataclasses.dataclass(frozen=True, eq=False)  # arrays have no truth value for ==
class FeatureStatistics:
    """Per-dimension statistics of the frames of some feature arrays (see the module docstring).

    ``count``: frames seen; ``total`` and ``total_sq``: float64 sums of the values and of their
    squares, ``[dim]`` or ``[layers, dim]``; ``seconds``: of speech behind the frames (0:
    unknown). Immutable: :meth:`update` and :meth:`merge` return new statistics, so several
    threads may read one safely.
    """

    count: int
    total: np.ndarray
    total_sq: np.ndarray
    seconds: float = 0.0

    @classmethod
    def of(cls, items: Iterable[Any], *, seconds: float = 0.0) -> FeatureStatistics:
        """Statistics over all frames of ``items``: arrays ``[frames, dim]`` (or ``[layers,
        frames, dim]``) or ``(features, label)`` pairs, from ``seconds`` of speech (0:
        unknown). SertkError when there are no frames."""
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
        return cls(frames, total, total_sq, float(seconds))

    def update(self, features: np.ndarray, *, seconds: float = 0.0) -> FeatureStatistics:
        """These statistics plus the frames of one more array (from ``seconds`` of speech)."""
        return self.merge(FeatureStatistics.of([features], seconds=seconds))

    def merge(self, other: FeatureStatistics) -> FeatureStatistics:
        """Statistics of the frames of both (SertkError if their shapes differ)."""
        if other.total.shape != self.total.shape:
            raise SertkError(
                f"cannot merge feature statistics of shape {self.total.shape} and "
                f"{other.total.shape}; they come from different extractors"
            )
        return FeatureStatistics(
            self.count + other.count,
            other.total + self.total,
            other.total_sq + self.total_sq,
            self.seconds + other.seconds,
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

    @property
    def variance(self) -> np.ndarray:
        """float64 ``[dim]`` (or ``[layers, dim]``), the population variance (never < 0)."""
        mean = self.total / self.count
        return np.maximum(self.total_sq / self.count - mean**2, 0.0)

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


@dataclasses.dataclass(frozen=True)
class Adaptation:
    """How a speaker's statistics normalise that speaker's features at test time.

    ``method``: ``"zscore"`` (the speaker's own mean and std, exactly as the speaker-adapted
    protocol trains) or ``"shrinkage"`` (mean and variance pulled towards the training
    population's prior, :func:`population_prior`, with weights ``seconds`` of the speaker's
    speech against ``prior_seconds``: robust when a speaker's audio is short or one-sided);
    ``min_seconds``: speech needed before adapting at all (a bundle with a global model answers
    with it until then). ConfigError for anything else.

    >>> Adaptation.from_dict({"method": "shrinkage", "prior_seconds": 30}).to_dict()
    {'method': 'shrinkage', 'prior_seconds': 30.0, 'min_seconds': 0.0}
    """

    method: str = "zscore"
    prior_seconds: float = 0.0
    min_seconds: float = 0.0

    def __post_init__(self) -> None:
        if self.method not in ADAPTATION_METHODS:
            raise ConfigError(
                f"adaptation method must be one of {', '.join(ADAPTATION_METHODS)}, got "
                f"{self.method!r}"
            )
        for name in ("prior_seconds", "min_seconds"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (0 <= value < float("inf"))
            ):
                raise ConfigError(f"adaptation {name} must be seconds >= 0, got {value!r}")
            object.__setattr__(self, name, float(value))
        if (self.method == "shrinkage") != (self.prior_seconds > 0):
            raise ConfigError(
                "adaptation method 'shrinkage' needs prior_seconds > 0 (the weight of the "
                "population's statistics) and 'zscore' takes none; got "
                f"{self.method!r} with prior_seconds={self.prior_seconds:g}"
            )

    @property
    def needs_prior(self) -> bool:
        return self.method == "shrinkage"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> Adaptation:
        """From ``to_dict()``'s form (ConfigError for unknown keys or bad values)."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"adaptation must be a mapping like {cls().to_dict()}, got {data!r}")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown adaptation keys {unknown}; known: {list(cls().to_dict())}")
        return cls(**data)

    def normaliser(
        self, speaker: FeatureStatistics, prior: Mapping[str, np.ndarray] | None = None
    ) -> dict[str, np.ndarray]:
        """``{"mean", "std"}`` float32 that normalise features of the speaker of ``speaker``
        (``prior``: the population's ``{"mean", "std"}``, needed by ``shrinkage``)."""
        if self.method == "zscore":
            return speaker.to_dict()
        if prior is None:
            raise SertkError(
                "shrinkage adaptation needs the training population's prior statistics; the "
                "bundle has none (save it with population=population_prior(...))"
            )
        if not speaker.seconds > 0:
            raise SertkError(
                "shrinkage adaptation weighs the speaker's statistics by their seconds of "
                "speech, which these statistics lack; build them with seconds="
            )
        weight = speaker.seconds / (speaker.seconds + self.prior_seconds)
        mean = weight * (speaker.total / speaker.count) + (1 - weight) * prior["mean"]
        variance = weight * speaker.variance + (1 - weight) * np.square(
            prior["std"].astype(np.float64)
        )
        std = np.maximum(np.sqrt(variance), STD_FLOOR)
        return {"mean": mean.astype(np.float32), "std": std.astype(np.float32)}


def population_prior(speakers: Iterable[FeatureStatistics]) -> dict[str, np.ndarray]:
    """The prior of :class:`Adaptation` ``shrinkage`` from training speakers' statistics:
    ``mean`` the mean of the speakers' means, ``std`` the root of the mean of their variances
    (within-speaker spread, the scale a speaker's own std has), float32 ``[dim]``; every
    speaker weighs the same, however much audio it has."""
    stats = list(speakers)
    if not stats:
        raise SertkError("a population prior needs the statistics of at least one speaker")
    mean = np.mean([s.total / s.count for s in stats], axis=0)
    std = np.sqrt(np.mean([s.variance for s in stats], axis=0))
    return {"mean": mean.astype(np.float32), "std": np.maximum(std, STD_FLOOR).astype(np.float32)}
