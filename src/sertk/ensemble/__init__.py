"""Making and evaluating ensembles (running one is the ``ensemble`` bundle kind's scorer).

- :func:`build_ensemble` (``build.py``): copy several bundles into one ensemble bundle, soft or
  weighted; :func:`fit_weights_on` fits the weights on labelled held-out utterances;
- :func:`fit_weights` (``weights.py``): the class-balanced maximum-likelihood weights of
  members' probabilities (EM);
- :func:`evaluate_ensemble_cv` (``cv.py``): soft-vote (or weight) the per-fold test
  probabilities of finished runs with identical folds, scored like a run.

How members' probabilities combine (label matrices, rules, weights) lives in
:mod:`sertk.inference.ensemble`; the bundle format in :mod:`sertk.bundle.ensemble_bundle`.

>>> build_ensemble(["runs/svm/final/bundle", "runs/cnn/final/bundle"], "models/mix")  # needs trained bundles  # doctest: +SKIP
>>> build_ensemble(bundles, "models/mix", rule="weighted", fit_on=read_manifest("dev.csv"))  # needs trained bundles  # doctest: +SKIP
"""

from sertk.ensemble.build import build_ensemble, fit_weights_on
from sertk.ensemble.cv import evaluate_ensemble_cv, write_ensemble_report
from sertk.ensemble.weights import fit_weights

__all__ = [
    "build_ensemble",
    "evaluate_ensemble_cv",
    "fit_weights",
    "fit_weights_on",
    "write_ensemble_report",
]
