"""Ensembles of model bundles: build one bundle from several, fit member weights.

An ensemble bundle (kind ``ensemble``, see :mod:`sertk.bundle`) holds copies of its member
bundles and combines their class probabilities: ``soft`` voting (the mean) or ``weighted``
averaging, with weights given or fitted on labelled validation data by :func:`fit_weights`.
The Recognizer and ``sertk evaluate`` load it like any other bundle; inference runs through
``sertk.inference.BundleModel.predict_signals``, which extracts each member's own features.
Cross-validated evaluation of an ensemble of two runs' fold models is
``sertk.experiment.evaluate_ensemble_cv``.

>>> build_ensemble(["runs/svm/final/bundle", "runs/cnn/final/bundle"], "models/mix")  # doctest: +SKIP
>>> build_ensemble(bundles, "models/mix", rule="weighted", fit_on=read_manifest("dev.csv"))  # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import ConfigError, CorpusError


def fit_weights(
    probabilities: Sequence[np.ndarray],
    truth: Sequence[int],
    *,
    balanced: bool = True,
    iterations: int = 1000,
    tolerance: float = 1e-10,
) -> np.ndarray:
    """Member weights ``[members]`` (>= 0, sum 1) maximising the likelihood of ``truth`` under
    the weighted mean of the members' probabilities ``[n, classes]`` (same rows and columns).

    The mixture log-likelihood is concave in the weights; it is maximised by EM (each step
    never lowers it). ``balanced``: each class counts equally (as UA does), so a frequent class
    does not decide the weights alone.
    """
    members = [np.asarray(p, dtype=np.float64) for p in probabilities]
    y = np.asarray(truth, dtype=np.int64)
    shapes = {p.shape for p in members}
    if len(shapes) != 1 or len(members[0].shape) != 2 or members[0].shape[0] != y.shape[0]:
        raise ConfigError(
            f"fit_weights needs member probabilities [n, classes] for the same n={y.shape[0]} "
            f"labelled rows, got shapes {[p.shape for p in members]}"
        )
    if len(members) < 2 or y.shape[0] == 0:
        raise ConfigError("fit_weights needs at least two members and one labelled row")
    stacked = np.stack(members)
    if y.min() < 0 or y.max() >= stacked.shape[2]:
        raise ConfigError(f"truth holds class indices outside 0..{stacked.shape[2] - 1}")
    likelihood = np.maximum(stacked[:, np.arange(y.shape[0]), y], 1e-12)  # [members, n]
    counts = np.bincount(y)
    rows = 1.0 / counts[y] if balanced else np.ones(y.shape[0])
    rows /= rows.sum()
    weights = np.full(stacked.shape[0], 1.0 / stacked.shape[0])
    for _ in range(iterations):
        share = weights[:, None] * likelihood
        share /= share.sum(axis=0, keepdims=True)
        updated = share @ rows
        if np.abs(updated - weights).max() < tolerance:
            weights = updated
            break
        weights = updated
    return weights / weights.sum()


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
    from sertk.bundle import save_ensemble_bundle

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
    from sertk.experiment.evaluate import extract_inputs, map_labels
    from sertk.inference import BundleModel

    scorer = BundleModel.load(ensemble)
    labels = list(scorer.labels)
    table = map_labels(
        {u.label for u in utterances}, labels, scorer.bundle.label_map.get("mapping", {})
    )
    kept = [u for u in utterances if table[u.label] is not None]
    if not kept:
        raise CorpusError(
            f"none of the utterances to fit weights on has a label among {', '.join(labels)}"
        )
    features = extract_inputs(scorer, kept, cache=cache, progress=progress)
    members = scorer.member_probabilities(features, speakers=[u.speaker for u in kept])
    truth = [labels.index(table[u.label]) for u in kept]
    weights = fit_weights(members, truth)
    record = {
        "utterances": len(kept),
        "speakers": len({u.speaker for u in kept}),
        "objective": "class-balanced log-likelihood of the weighted mean probability",
        "weights": weights.tolist(),
    }
    return weights.tolist(), record
