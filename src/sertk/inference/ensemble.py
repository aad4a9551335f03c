"""How an ensemble combines its members: label matrices, weights and :class:`EnsembleScorer`.

Rules: ``soft`` (the mean of the members' probabilities, weights ``1 / members``) or
``weighted`` (the weighted mean, weights normalised to sum to 1, e.g. fitted on validation data
with ``sertk.ensemble.fit_weights``). Members may order or name their labels differently: a 0/1
:func:`label_matrix` sends each member column to an ensemble column (merged labels add their
probabilities). The ensemble bundle kind (``sertk.bundle.ensemble_bundle``), the cross-validated
ensembles of runs (``sertk.ensemble.cv``) and weight fitting all use these; nothing else
combines probabilities.

>>> label_matrix(["b", "a"], ["a", "b"], None).tolist()
[[0.0, 1.0], [1.0, 0.0]]
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import BundleError
from sertk.features.normalization import Adaptation
from sertk.inference.scorer import FeatureKey, Scorer, Scores, check_features
from sertk.inference.speakers import per_item

RULES = ("soft", "weighted")


def label_matrix(
    member_labels: Sequence[str], labels: Sequence[str], mapping: Mapping[str, str] | None,
    where: str = "member",
) -> np.ndarray:  # fmt: skip
    """0/1 matrix ``[member classes, ensemble classes]`` sending member columns to ensemble ones.

    Without ``mapping`` the label sets must be equal; with it, each member label goes to
    ``mapping.get(label, label)``, which must be an ensemble label, and every ensemble label
    must receive at least one member label.
    """
    member_labels, labels = list(member_labels), list(labels)
    if mapping is None and sorted(member_labels) != sorted(labels):
        raise BundleError(
            f"{where} has labels {member_labels} but the ensemble has {labels}; members must "
            "share the label list, or map each member label to an ensemble label explicitly "
            "(mapping={'calm': 'neutral'}, sertk ensemble --map calm=neutral)"
        )
    mapping = dict(mapping or {})
    stray = sorted(set(mapping) - set(member_labels))
    if stray:
        raise BundleError(f"{where}: the label mapping names labels it does not have: {stray}")
    matrix = np.zeros((len(member_labels), len(labels)))
    for row, label in enumerate(member_labels):
        target = mapping.get(label, label)
        if target not in labels:
            raise BundleError(
                f"{where}: its label {label!r} maps to {target!r}, which is not an ensemble "
                f"label ({', '.join(labels)}); map it to one of them"
            )
        matrix[row, labels.index(target)] = 1.0
    empty = [label for label, column in zip(labels, matrix.T, strict=True) if not column.any()]
    if empty:
        raise BundleError(
            f"{where} gives no probability to the ensemble label(s) {empty}; every member must "
            "cover every ensemble label"
        )
    return matrix


def check_weights(rule: Any, weights: Any, count: int) -> list[float]:
    """Normalised member weights for ``rule``; BundleError for a bad rule or weights."""
    if rule not in RULES:
        raise BundleError(f"ensemble rule must be one of {', '.join(RULES)}, got {rule!r}")
    if rule == "soft":
        if weights is not None and len(set(map(float, weights))) > 1:
            raise BundleError(
                "rule 'soft' averages the members equally; unequal weights need rule 'weighted'"
            )
        return [1.0 / count] * count
    if weights is None:
        raise BundleError(
            "rule 'weighted' needs one weight per member (given, or fitted on validation data "
            "with sertk.ensemble.fit_weights)"
        )
    values = np.asarray(list(weights), dtype=np.float64)
    if values.shape != (count,) or not np.isfinite(values).all() or (values < 0).any():
        raise BundleError(
            f"ensemble weights must be {count} finite numbers >= 0 (one per member), got "
            f"{list(weights)}"
        )
    if values.sum() <= 0:
        raise BundleError("ensemble weights must not all be 0")
    return (values / values.sum()).tolist()


def combine(probabilities: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """The weighted sum of members' probabilities ``[n, classes]`` (ensemble columns)."""
    return np.asarray(sum(w * p for w, p in zip(weights, probabilities, strict=True)))


class EnsembleScorer(Scorer):
    """Member scorers combined by their weights, each member's probabilities mapped onto the
    ensemble's labels by its ``matrix``. Features are extracted once per distinct feature input
    and view of the members; each member applies its own normalisation and views.

    ``combine(members, speakers=, statistics=)`` replaces the weighted sum for bundle kinds
    with another rule (e.g. per item, the speaker-adapted member once enough of the speaker's
    audio is in its statistics, else the global one); ``members`` are the members'
    probabilities float64 ``[n, classes]`` in the ensemble's label order.
    """

    def __init__(
        self,
        *,
        labels: Sequence[str],
        members: Sequence[Scorer],
        matrices: Sequence[np.ndarray],
        weights: Sequence[float],
        source: Path | None = None,
        combine: Callable[..., np.ndarray] | None = None,
    ) -> None:
        self.labels = tuple(labels)
        self.members = tuple(members)
        self.matrices = list(matrices)
        self.weights = np.asarray(weights, dtype=np.float64)
        self.source = source
        self.combine = combine
        self.has_attention = False
        inputs: dict[str, Any] = {}
        self._keys: list[dict[FeatureKey, FeatureKey]] = []  # per member: own key -> ensemble key
        for member in self.members:
            positions = []
            for item in member.inputs:
                inputs.setdefault(item.key(), item)
                positions.append(list(inputs).index(item.key()))
            self._keys.append({key: (positions[key[0]], key[1]) for key in member.requests})
        self.inputs = tuple(inputs.values())

    @property
    def normalization(self) -> str:
        return "speaker" if any(m.normalization == "speaker" for m in self.members) else "global"

    @property
    def adaptation(self) -> Adaptation | None:
        """The adaptation of the members that use speaker statistics (the one that needs the
        most speech when they differ)."""
        found = [m.adaptation for m in self.members if m.adaptation is not None]
        return max(found, key=lambda a: a.min_seconds) if found else None

    @property
    def requests(self) -> tuple[FeatureKey, ...]:
        return tuple(dict.fromkeys(k for keys in self._keys for k in keys.values()))

    def member_scores(self, features, *, speakers=None, statistics=None) -> list[np.ndarray]:
        """Each member's probabilities float64 ``[n, classes]`` in the ensemble's label order."""
        check_features(features, self.requests)
        entries = per_item(statistics, len(features))
        out = []
        for member, keys, matrix in zip(self.members, self._keys, self.matrices, strict=True):
            own = [{mine: item[theirs] for mine, theirs in keys.items()} for item in features]
            stats = [
                None if entry is None
                else {mine: entry[theirs] for mine, theirs in keys.items() if theirs in entry}
                for entry in entries
            ]  # fmt: skip
            scores = member.score(own, speakers=speakers, statistics=stats)
            out.append(scores.probabilities.astype(np.float64) @ matrix)
        return out

    def score(self, features, *, speakers=None, statistics=None, attention=False) -> Scores:
        members = self.member_scores(features, speakers=speakers, statistics=statistics)
        if self.combine is None:
            combined = combine(members, self.weights)
        else:
            combined = self.combine(members, speakers=speakers, statistics=statistics)
        probabilities = np.asarray(combined, dtype=np.float32)
        return Scores(probabilities, [None] * len(probabilities))
