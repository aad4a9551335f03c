"""Build one ensemble bundle from several bundles, with weights given or fitted.

An ensemble bundle (kind ``ensemble``, :mod:`sertk.bundle.ensemble_bundle`) holds copies of its
member bundles and combines their class probabilities (:mod:`sertk.inference.ensemble`):
``soft`` voting (the mean) or ``weighted`` averaging, with weights given or fitted on labelled
held-out data by :func:`fit_weights_on`. The Recognizer and ``sertk evaluate`` load it like any
other bundle.

>>> build_ensemble(["runs/svm/final/bundle", "runs/cnn/final/bundle"], "models/mix")  # needs trained bundles  # doctest: +SKIP
>>> build_ensemble(bundles, "models/mix", rule="weighted", fit_on=read_manifest("dev.csv"))  # needs trained bundles  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sertk.bundle import load_bundle, save_ensemble_bundle
from sertk.ensemble.weights import fit_weights
from sertk.errors import ConfigError, CorpusError
from sertk.experiment.evaluate import map_labels, request_features


def build_ensemble(
    bundles: Sequence[str | Path],
    out: str | Path,
    *,
    rule: str = "soft",
    weights: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    mapping: Mapping[str, str] | Sequence[Mapping[str, str] | None] | None = None,
    fit_on: Sequence[Any] | None = None,
    cache: Any = None,
    progress: bool = False,
) -> Path:
    """Copy ``bundles`` into one ensemble bundle at ``out``; returns its path.

    ``rule`` ``soft`` (mean) or ``weighted`` (``weights`` given, or fitted with
    :func:`fit_weights` on ``fit_on``: labelled ``sertk.corpora.Utterance`` that none of the
    members trained on, e.g. a development set). ``labels`` and ``mapping`` (member label ->
    ensemble label) as in ``sertk.bundle.save_ensemble_bundle``.
    """
    options = {"labels": labels, "mapping": mapping}
    if fit_on is not None:
        if rule != "weighted" or weights is not None:
            raise ConfigError("fitting weights (fit_on) needs rule 'weighted' and no weights")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=Path(out).parent) as folder:
            soft = save_ensemble_bundle(Path(folder) / "soft", bundles, **options)
            weights, record = fit_weights_on(soft, fit_on, cache=cache, progress=progress)
        training = {"weights_fitted_on": record}
        return save_ensemble_bundle(
            out, bundles, rule=rule, weights=weights, training=training, **options
        )
    return save_ensemble_bundle(out, bundles, rule=rule, weights=weights, **options)


def fit_weights_on(
    ensemble: str | Path, utterances: Sequence[Any], *, cache: Any = None, progress: bool = False
) -> tuple[list[float], dict[str, Any]]:
    """Weights for the members of the ensemble bundle at ``ensemble``, fitted on labelled
    ``utterances`` (labels mapped as ``sertk evaluate`` maps them); also a JSON record."""
    bundle = load_bundle(ensemble)
    scorer = bundle.build_scorer()
    labels = list(scorer.labels)
    table = map_labels({u.label for u in utterances}, labels, bundle.label_map.get("mapping", {}))
    kept = [u for u in utterances if table[u.label] is not None]
    if not kept:
        raise CorpusError(
            f"none of the utterances to fit weights on has a label among {', '.join(labels)}"
        )
    features = request_features(scorer, kept, cache=cache, progress=progress)
    members = scorer.member_scores(features, speakers=[u.speaker for u in kept])
    truth = [labels.index(table[u.label]) for u in kept]
    weights = fit_weights(members, truth)
    record = {
        "utterances": len(kept),
        "speakers": len({u.speaker for u in kept}),
        "objective": "class-balanced log-likelihood of the weighted mean probability",
        "weights": weights.tolist(),
    }
    return weights.tolist(), record
