"""A global model and a speaker-adapted one behind one scorer: :class:`AdaptiveScorer`.

It answers each item with the global model until that item's speaker statistics hold at least
``min_seconds`` of speech, then with the adapted model (normalised with those statistics by its
:class:`~sertk.features.normalization.Adaptation`). Features are extracted once per distinct
input and view of the two (the :class:`~sertk.inference.ensemble.EnsembleScorer` machinery);
the adapted model runs only for the items it answers. So the scorer answers a lone clip (the
global model) and gets better as a session or a speaker's files accumulate.

Statistics come as ``statistics=`` (kept by the caller, with the ``seconds`` of speech behind
them; the Recognizer, the live engine and the REST sessions pass them). ``speakers=`` ids carry
no seconds: then every item is adapted with its speaker's statistics in the call (what
``sertk evaluate`` and the cross-validation runner ask for).

>>> from sertk.bundle import load_bundle
>>> scorer = load_bundle("default").build_scorer()  # the default model is adaptive
>>> scorer.normalization, scorer.adaptation.min_seconds
('global', 20.0)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from sertk.errors import BundleError
from sertk.features.normalization import Adaptation
from sertk.inference.ensemble import EnsembleScorer
from sertk.inference.scorer import Scorer, Scores, check_features
from sertk.inference.speakers import per_item, statistics_seconds


class AdaptiveScorer(EnsembleScorer):
    """``members``: the global scorer, then the speaker-adapted one (its ``adaptation`` is
    used, with this scorer's ``min_seconds``); ``matrices`` map their labels to ``labels``."""

    def __init__(
        self,
        *,
        labels: Sequence[str],
        members: Sequence[Scorer],
        matrices: Sequence[np.ndarray],
        min_seconds: float,
        source: Path | None = None,
    ) -> None:
        if (
            len(members) != 2
            or members[0].normalization != "global"
            or (members[1].adaptation is None)
        ):
            raise BundleError(
                "an adaptive scorer needs a global member and then a speaker-adapted one"
            )
        super().__init__(
            labels=labels, members=members, matrices=matrices, weights=[1.0, 0.0], source=source
        )
        self._adaptation = dataclasses.replace(members[1].adaptation, min_seconds=min_seconds)

    @property
    def normalization(self) -> str:
        return "global"  # it answers without statistics

    @property
    def adaptation(self) -> Adaptation:
        return self._adaptation

    def adapted(self, features, *, speakers=None, statistics=None) -> list[bool]:
        """Per item whether the adapted model answers it."""
        if statistics is None and speakers is not None:
            return [True] * len(features)
        needed = self._adaptation.min_seconds
        return [
            entry is not None and statistics_seconds(entry) >= needed
            for entry in per_item(statistics, len(features))
        ]

    def score(self, features, *, speakers=None, statistics=None, attention=False) -> Scores:
        check_features(features, self.requests)
        chosen = self.adapted(features, speakers=speakers, statistics=statistics)
        (general, specific), (keys_global, keys_adapted) = self.members, self._keys
        own = [{mine: item[theirs] for mine, theirs in keys_global.items()} for item in features]
        out = general.score(own).probabilities.astype(np.float64) @ self.matrices[0]
        rows = [i for i, yes in enumerate(chosen) if yes]
        if rows:
            entries = per_item(statistics, len(features))
            mine = [{k: features[i][t] for k, t in keys_adapted.items()} for i in rows]
            stats = [
                None if entries[i] is None
                else {k: entries[i][t] for k, t in keys_adapted.items() if t in entries[i]}
                for i in rows
            ]  # fmt: skip
            subset = None if speakers is None else [speakers[i] for i in rows]
            scores = specific.score(mine, speakers=subset, statistics=stats)
            out[rows] = scores.probabilities.astype(np.float64) @ self.matrices[1]
        probabilities = out.astype(np.float32)
        return Scores(probabilities, [None] * len(probabilities))
