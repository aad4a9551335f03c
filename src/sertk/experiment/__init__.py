"""Experiments: speaker-independent cross-validation runs and cross-corpus evaluation.

- :func:`run_experiment` (``runner.py``): corpus -> label map -> folds -> cached features ->
  one model per fold -> a run folder with config, environment, splits, per-fold bundles,
  metrics, plots, ``summary.json`` and ``report.md``; resumable.
- :func:`evaluate_bundle` (``evaluate.py``): a bundle on a labelled set it never saw, labels
  mapped explicitly and unmappable ones reported.
- :func:`check_config`, :func:`resolve_config`, :func:`prepare_data` (``prepare.py``): what a
  run does before training, usable on their own (e.g. to validate a recipe).
- ensembles of finished runs (``evaluate_ensemble_cv``) live in :mod:`sertk.ensemble`.

Model kinds: torch heads (``sertk.models``) and classical kinds (``sertk.classical``; see
``classical.py`` for their protocol). ``final_model: true`` refits on all speakers,
``final_model: ensemble`` bundles the fold models as one soft-voting ensemble (``final.py``).

>>> from sertk.config import load_config
>>> run_dir = run_experiment(load_config("recipes/emodb_logmel.yaml"), log=print)  # needs a corpus  # doctest: +SKIP
"""

from sertk.experiment.evaluate import evaluate_bundle, format_evaluation, map_labels
from sertk.experiment.prepare import (
    ExperimentData,
    check_config,
    model_kind,
    prepare_data,
    resolve_config,
)
from sertk.experiment.runner import load_summary, run_experiment

__all__ = [
    "ExperimentData",
    "check_config",
    "evaluate_bundle",
    "format_evaluation",
    "load_summary",
    "map_labels",
    "model_kind",
    "prepare_data",
    "resolve_config",
    "run_experiment",
]
