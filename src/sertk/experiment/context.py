"""What every fit of one cross-validation run shares: :class:`FitContext` and small helpers.

Features are extracted once per run. Under the speaker-adapted protocol each speaker's
statistics are fitted on all of that speaker's utterances (no labels), the training side uses
the normalised copies, and scoring passes the raw features plus the same statistics to the
bundle's scorer, which normalises exactly as inference does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from sertk.augment import View
from sertk.corpora.base import natural_key
from sertk.features.normalization import FeatureStatistics, group_by_speaker

PROTOCOLS = {
    "global": "speaker-independent",
    "speaker": "speaker-adapted (per-speaker feature normalisation)",
}


@dataclasses.dataclass
class FitContext:
    """The run's config, data, extractor and features (see the module docstring).

    ``raw``: utterance id -> features from the extractor; ``features``: the same under the
    run's protocol (per-speaker normalised when ``speaker_stats`` is set), what models train on.
    """

    config: Any  # ExperimentConfig
    label_map: Any
    extractor: Any
    preprocess: Any
    raw: dict[str, np.ndarray]
    utterances: dict[str, Any]  # utterance id -> Utterance
    kind: str
    resume: bool
    progress: bool
    run_name: str
    keys: dict[str, int] = dataclasses.field(default_factory=dict)  # id -> corpus position
    speaker_stats: dict[str, FeatureStatistics] | None = None  # speaker protocol only
    cache: Any = None  # FeatureCache for augmented copies and test-time views
    features: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    signals: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    copies: dict[tuple[str, Any], np.ndarray] = dataclasses.field(default_factory=dict)
    log: Any = None
    jobs: int | None = None  # worker processes for feature extraction (None: automatic)

    def __post_init__(self) -> None:
        if self.config.features.normalization == "speaker" and self.speaker_stats is None:
            ids = list(self.raw)
            groups = group_by_speaker([self.utterances[uid].speaker for uid in ids])
            self.speaker_stats = {
                speaker: FeatureStatistics.of([self.raw[ids[i]] for i in rows])
                for speaker, rows in groups.items()
            }
        self.features = {uid: self.normalize_speaker(x, uid) for uid, x in self.raw.items()}

    def normalize_speaker(self, features: np.ndarray, uid: str) -> np.ndarray:
        """``features`` of utterance ``uid`` under the run's protocol (per-speaker z-norm)."""
        if self.speaker_stats is None:
            return features
        return self.speaker_stats[self.utterances[uid].speaker].apply(features)

    def statistics(self, uid: str) -> dict | None:
        """The scorer statistics of utterance ``uid``'s own features (speaker protocol)."""
        if self.speaker_stats is None:
            return None
        return {(0, None): self.speaker_stats[self.utterances[uid].speaker]}


def bundle_options(ctx: FitContext, extra: dict[str, Any] | None) -> dict[str, Any]:
    """The inference contract and records of a run's bundles (``save_*`` keyword arguments)."""
    features = ctx.config.features
    return {
        "speaker_adapted": features.normalization == "speaker",
        "views": View.from_lists(features.tta_speeds, features.tta_crops),
        "extra": {"run": ctx.run_name, **(extra or {})},
    }


def encode(ctx: FitContext, ids: Sequence[str]) -> list[int]:
    """Class indices of ``ids`` in the run's label map."""
    return [ctx.label_map.encode(ctx.utterances[uid].label) for uid in ids]


def speakers(ctx: FitContext, ids: Sequence[str]) -> list[str]:
    """The sorted speakers of ``ids``."""
    return sorted({ctx.utterances[uid].speaker for uid in ids}, key=natural_key)


def no_log(_: str) -> None:
    """Default ``log`` of the runner: say nothing."""
