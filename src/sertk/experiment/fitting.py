"""Fit one model on a set of training utterances and save it as a bundle.

``fit_bundle`` is the one place a model kind is chosen: torch heads from ``sertk.models`` are
trained with ``sertk.training.train_model`` on frame features; a classical kind (SVM, random
forest on utterance-level ``[1, dim]`` features) will plug in through ``_fit_classical``.
Feature normalisation statistics are fitted on the training utterances only and stored in the
bundle; validation utterances (whole training speakers held out, never the test fold) choose
the epoch.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import ConfigError
from sertk.inference import NORMALIZATION_KEY

PROTOCOLS = {
    "global": "speaker-independent",
    "speaker": "speaker-adapted (per-speaker feature normalisation)",
}


class FeatureSet:
    """Training items ``(features, class index)`` normalised on the fly with ``stats``.

    ``features``: arrays ``[frames, dim]`` (or ``[layers, frames, dim]``); ``stats``: ``mean``
    and ``std`` ``[dim]`` (or ``[layers, dim]``). ``labels`` lets the trainer read the classes
    without touching the features.
    """

    def __init__(
        self, features: Sequence[np.ndarray], labels: Sequence[int], stats: dict[str, np.ndarray]
    ) -> None:
        self.features = features
        self.labels = list(labels)
        self.mean = stats["mean"][..., None, :]
        self.std = stats["std"][..., None, :]

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        array = (self.features[index] - self.mean) / self.std
        return array.astype(np.float32, copy=False), self.labels[index]


@dataclasses.dataclass
class FitContext:
    """What every fit of one run shares."""

    config: Any  # ExperimentConfig
    label_map: Any
    extractor: Any
    preprocess: Any
    features: dict[str, np.ndarray]  # utterance id -> features (speaker-normalised if asked)
    utterances: dict[str, Any]  # utterance id -> Utterance
    kind: str
    resume: bool
    progress: bool
    run_name: str


def build_torch_model(config: Any, extractor: Any, num_classes: int) -> Any:
    """``MODELS[model.name]`` with ``input_dim``/``num_classes`` (and ``num_layers_in``) from the data."""
    from sertk.models import build_model

    hparams = {**config.model.hparams, "input_dim": extractor.dim, "num_classes": num_classes}
    layers = getattr(extractor, "layers", None)
    if layers and "num_layers_in" not in hparams:
        hparams["num_layers_in"] = layers
    return build_model(config.model.name, **hparams)


def fit_bundle(
    ctx: FitContext,
    train_ids: Sequence[str],
    valid_ids: Sequence[str] | None,
    out_dir: Path,
    *,
    epochs: int | None = None,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Fit on ``train_ids`` (early stopping on ``valid_ids``; None: train ``epochs`` and keep
    the last) and save ``out_dir/bundle``. Returns the bundle path and a training record."""
    if ctx.kind == "classical":
        return _fit_classical(ctx, train_ids, valid_ids, out_dir)
    return _fit_torch(ctx, train_ids, valid_ids, out_dir, epochs=epochs, extra=extra)


def _fit_classical(ctx, train_ids, valid_ids, out_dir) -> tuple[Path, dict[str, Any]]:
    # To come: rows = np.concatenate of the [1, dim] features, sertk.classical.fit_classifier
    # with groups = training speakers (its inner CV picks hyper-parameters; valid_ids join the
    # training rows), saved as a classical bundle that BundleModel can run.
    raise ConfigError(
        f"model {ctx.config.model.name!r} is a classical model, which the runner cannot train yet"
    )


def _fit_torch(ctx, train_ids, valid_ids, out_dir, *, epochs, extra) -> tuple[Path, dict]:
    from sertk.training import fit_normalization, seed_everything, train_model

    config, label_map = ctx.config, ctx.label_map
    train_items = [ctx.features[uid] for uid in train_ids]
    stats = fit_normalization(train_items)
    train_set = FeatureSet(train_items, _encode(ctx, train_ids), stats)
    valid_set = None
    if valid_ids is not None:
        valid_items = [ctx.features[uid] for uid in valid_ids]
        valid_set = FeatureSet(valid_items, _encode(ctx, valid_ids), stats)
    seed_everything(config.train.seed)  # same initial weights whether or not the run resumed
    model = build_torch_model(config, ctx.extractor, len(label_map.labels))
    train_config = (
        config.train if epochs is None else dataclasses.replace(config.train, epochs=epochs)
    )
    result = train_model(
        model, train_set, valid_set, config=train_config, labels=label_map.labels,
        out_dir=out_dir, progress=ctx.progress, resume=ctx.resume,
    )  # fmt: skip
    record = {
        "best_epoch": result.best_epoch,
        "best_valid_ua": result.best_valid_ua,
        "epochs_run": result.epochs_run,
        "stopped_early": result.stopped_early,
        "class_weights": result.class_weights,
        "train_utterances": len(train_ids),
        "valid_utterances": 0 if valid_ids is None else len(valid_ids),
        "train_speakers": _speakers(ctx, train_ids),
        "valid_speakers": _speakers(ctx, valid_ids or ()),
    }
    training = {**record, "train": dataclasses.asdict(train_config)}
    bundle = _save(ctx, out_dir / "bundle", result.model, stats, training, extra)
    return bundle, {**record, "history": result.history}


def _save(ctx: FitContext, path: Path, model, stats, training: dict, extra) -> Path:
    """``save_bundle`` with everything inference needs, including the normalisation protocol."""
    from sertk.bundle import save_bundle

    normalization = ctx.config.features.normalization
    return save_bundle(
        path,
        model=model,
        model_name=ctx.config.model.name,
        labels=ctx.label_map.labels,
        label_map=ctx.label_map,
        features=ctx.extractor,
        preprocess=ctx.preprocess,
        normalization=stats,
        training=training,
        extra={
            NORMALIZATION_KEY: normalization,
            "protocol": PROTOCOLS[normalization],
            "run": ctx.run_name,
            **(extra or {}),
        },
    )


def _encode(ctx: FitContext, ids: Sequence[str]) -> list[int]:
    return [ctx.label_map.encode(ctx.utterances[uid].label) for uid in ids]


def _speakers(ctx: FitContext, ids: Sequence[str]) -> list[str]:
    from sertk.corpora.base import natural_key

    return sorted({ctx.utterances[uid].speaker for uid in ids}, key=natural_key)


def final_epochs(best_epochs: Sequence[int]) -> int:
    """Epochs for the final model: the median of the folds' best epochs (rounded, >= 1)."""
    if not best_epochs:
        raise ConfigError("no completed folds to take the final model's epoch count from")
    return max(1, int(np.floor(statistics.median(best_epochs) + 0.5)))


def no_log(_: str) -> None:
    """Default ``log`` of the runner: say nothing."""
