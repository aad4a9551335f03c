"""The run's final model (``final/bundle``), after the folds; it has no held-out score.

``final_model: true``: one model on every utterance, all speakers; a neural model trains for
the median of the folds' best validation epochs (no validation set is left), a classical one
repeats its inner-CV search over all speakers. ``final_model: ensemble``: the fold models
themselves, copied into one soft-voting ensemble bundle (each fold model was chosen on its own
validation speakers; the fold scores in the report are their held-out estimates).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sertk.bundle import save_ensemble_bundle
from sertk.experiment.artifacts import read_json, write_json
from sertk.experiment.context import FitContext
from sertk.experiment.fitting import final_epochs, fit_bundle
from sertk.metrics import plot_curves


def final_model(
    ctx: FitContext,
    folds: Sequence[Any],
    fold_metrics: dict[str, dict],
    folder: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    """Build ``folder/bundle`` as ``config.final_model`` asks; returns the record
    (``training.json``; ``bundle``, ``kind``, ``description`` and per-kind details)."""
    record_path = folder / "training.json"
    if record_path.is_file():
        return read_json(record_path)
    if ctx.config.final_model == "ensemble":
        record = _fold_ensemble(ctx, folds, folder, log)
    elif ctx.kind == "classical":
        record = _refit_classical(ctx, folder, log)
    else:
        record = _retrain_torch(ctx, fold_metrics, folder, log)
    write_json(record_path, record)
    shutil.rmtree(folder / "checkpoint", ignore_errors=True)
    return record


def _retrain_torch(ctx: FitContext, fold_metrics: dict, folder: Path, log) -> dict[str, Any]:
    epochs = final_epochs([m["training"]["best_epoch"] for m in fold_metrics.values()])
    log(f"final model: all {len(ctx.features)} utterances, {epochs} epochs")
    bundle_path, training = fit_bundle(
        ctx, list(ctx.features), None, folder, epochs=epochs, extra={"fold": "final"}
    )
    plot_curves(training["history"], folder / "curves.png")
    bundle = str(bundle_path.relative_to(folder.parent))
    return {
        "bundle": bundle,
        "kind": "torch",
        "epochs": epochs,
        "epochs_rule": "median of the folds' best validation epochs",
        "description": f"{bundle}: trained on all speakers for {epochs} epochs (the median "
        "of the folds' best validation epochs)",
        "training": training,
    }


def _refit_classical(ctx: FitContext, folder: Path, log) -> dict[str, Any]:
    log(f"final model: {ctx.config.model.name} on all {len(ctx.features)} utterances")
    bundle_path, training = fit_bundle(ctx, list(ctx.features), None, folder,
                                       extra={"fold": "final"})  # fmt: skip
    training = {k: v for k, v in training.items() if k != "history"}
    bundle = str(bundle_path.relative_to(folder.parent))
    best = (training.get("search") or {}).get("best") or {}
    chosen = ", ".join(f"{key}={value}" for key, value in best.items())
    return {
        "bundle": bundle,
        "kind": "classical",
        "epochs": None,
        "description": f"{bundle}: {ctx.config.model.name} fitted on all speakers"
        + (f", {chosen} chosen by inner grouped CV over all speakers" if chosen else ""),
        "training": training,
    }


def _fold_ensemble(ctx: FitContext, folds: Sequence[Any], folder: Path, log) -> dict[str, Any]:
    names = [fold.name for fold in folds]
    members = [folder.parent / "folds" / name / "bundle" for name in names]
    log(f"final model: soft-voting ensemble of the {len(members)} fold models")
    bundle_path = save_ensemble_bundle(
        folder / "bundle", members, rule="soft",
        training={"members": names, "rule": "soft", "source": "fold models of this run"},
        extra={"run": ctx.run_name, "fold": "final", "members": names},
    )  # fmt: skip
    bundle = str(bundle_path.relative_to(folder.parent))
    return {
        "bundle": bundle,
        "kind": "ensemble",
        "rule": "soft",
        "members": names,
        "epochs": None,
        "description": f"{bundle}: soft-voting ensemble (mean probability) of the "
        f"{len(names)} fold models",
    }
