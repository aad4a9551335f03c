"""Fit one model on a set of training utterances and save it as a bundle.

``fit_bundle`` is the one place a model kind is chosen: torch heads from ``sertk.models`` are
trained with ``sertk.training.train_model`` on frame features (torch is imported then);
classical kinds (SVM, logistic regression, random forest on utterance-level ``[1, dim]``
features) are fitted by :func:`sertk.experiment.classical.fit_classical`. Feature normalisation statistics are fitted on
the training utterances only and stored in the bundle; validation utterances (whole training
speakers held out, never the test fold) choose the epoch. Training-time augmentation touches
training utterances only (:mod:`sertk.experiment.augmentation`).
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.bundle import save_bundle
from sertk.errors import ConfigError, require
from sertk.experiment.augmentation import build_augmenter, training_signals
from sertk.experiment.classical import fit_classical
from sertk.experiment.context import FitContext, bundle_options, encode, speakers
from sertk.experiment.datasets import FeatureSet, WaveformSet
from sertk.features.normalization import fit_normalization


def build_torch_model(config: Any, extractor: Any, num_classes: int) -> Any:
    """``MODELS[model.name]`` with ``input_dim``/``num_classes`` (and ``num_layers_in``) from the data."""
    require("torch", extra="neural", what=f"model {config.model.name!r}")
    from sertk.models import build_model  # torch

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
        return fit_classical(ctx, train_ids, valid_ids, out_dir, extra=extra)
    return _fit_torch(ctx, train_ids, valid_ids, out_dir, epochs=epochs, extra=extra)


def _fit_torch(ctx, train_ids, valid_ids, out_dir, *, epochs, extra) -> tuple[Path, dict]:
    from sertk.training import seed_everything, train_model  # torch

    config, label_map = ctx.config, ctx.label_map
    train_items = [ctx.features[uid] for uid in train_ids]
    stats = fit_normalization(train_items)
    train_set = _train_set(ctx, train_ids, train_items, stats)
    valid_set = None
    if valid_ids is not None:  # never augmented
        valid_items = [ctx.features[uid] for uid in valid_ids]
        valid_set = FeatureSet(valid_items, encode(ctx, valid_ids), stats)
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
        "balanced_sampling": train_config.balanced_sampling,
        "augment": _augment_record(config),
        "train_utterances": len(train_ids),
        "valid_utterances": 0 if valid_ids is None else len(valid_ids),
        "train_speakers": speakers(ctx, train_ids),
        "valid_speakers": speakers(ctx, valid_ids or ()),
    }
    training = {**record, "train": dataclasses.asdict(train_config)}
    bundle = _save(ctx, out_dir / "bundle", result.model, stats, training, extra)
    return bundle, {**record, "history": result.history}


def _train_set(ctx: FitContext, ids, items, stats) -> Any:
    """The training dataset: augmented on the fly when ``train.augment`` asks for it."""
    augmenter = build_augmenter(ctx.config)
    labels, keys = encode(ctx, ids), [ctx.keys[uid] for uid in ids]
    if augmenter is None or not augmenter.config.waveform_enabled:
        return FeatureSet(items, labels, stats, augmenter=augmenter, keys=keys)
    stats_of = [
        None if ctx.speaker_stats is None
        else ctx.speaker_stats[ctx.utterances[uid].speaker].to_dict()
        for uid in ids
    ]  # fmt: skip
    return WaveformSet(
        training_signals(ctx, ids), labels, stats, augmenter=augmenter, keys=keys,
        extractor=ctx.extractor, sampling_rate=ctx.preprocess.sampling_rate,
        num_samples=ctx.preprocess.num_samples, crop=ctx.preprocess.crop, speaker_stats=stats_of,
    )  # fmt: skip


def _augment_record(config: Any) -> dict[str, Any] | None:
    augment = config.train.augment
    if not (augment.waveform_copies or augment.features_enabled):
        return None
    return dataclasses.asdict(augment)


def _save(ctx: FitContext, path: Path, model, stats, training: dict, extra) -> Path:
    """``save_bundle`` with everything inference needs, including the normalisation protocol."""
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
        **bundle_options(ctx, extra),
    )


def final_epochs(best_epochs: Sequence[int]) -> int:
    """Epochs for the final model: the median of the folds' best epochs (rounded, >= 1)."""
    if not best_epochs:
        raise ConfigError("no completed folds to take the final model's epoch count from")
    return max(1, int(np.floor(statistics.median(best_epochs) + 0.5)))
