"""Classical models in the runner: ``sertk.classical`` on utterance-level features per fold.

Protocol (documented in every report): the fold's **validation speakers join the training
rows**. A classical model has no epochs to choose; its model selection is the inner
cross-validation of ``model.search``, grouped by speaker over all of the fold's training-side
speakers (train + validation, never test), scored by UA. Standardisation (and PCA/LDA) is
fitted inside the classifier's pipeline on its training rows only. ``train.class_weights``
becomes ``class_weight="balanced"``. Augmented waveform copies (``train.augment``) are made
of the fold's training utterances only and keep their speaker as inner-CV group, so a speaker
never sits on both sides of an inner split; they train the inner models but are not scored (the
inner validation scores the original recordings only, like the test).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.bundle import save_classical_bundle
from sertk.classical._params import expand_search, resolve_params
from sertk.errors import ConfigError, FeatureError
from sertk.experiment.augmentation import augmented_copies
from sertk.experiment.context import bundle_options, encode, speakers
from sertk.features import build_extractor


def classical_params(config: Any, extractor: Any = None) -> dict[str, Any]:
    """``model.hparams`` with ``class_weight="balanced"`` when ``train.class_weights`` is set
    and, for an extractor with ``blocks`` (``stack``), those widths as ``blocks``."""
    params = dict(config.model.hparams)
    blocks = getattr(extractor, "blocks", None)
    if blocks is not None and params.get("blocks") is None:
        params["blocks"] = list(blocks)
    if config.train.class_weights:
        if params.get("class_weight", "balanced") != "balanced":
            raise ConfigError(
                f"train.class_weights is true but model.hparams.class_weight is "
                f"{params['class_weight']!r}; drop one of them"
            )
        params["class_weight"] = "balanced"
    return params


def check_classical(config: Any) -> None:
    """ConfigError for hyper-parameters, search grids and options a classical kind cannot use."""
    kind = config.model.name
    if config.train.balanced_sampling:
        raise ConfigError(
            "train.balanced_sampling draws neural-network batches; for a classical model use "
            "train.class_weights (class_weight='balanced')"
        )
    params = classical_params(config)
    parts = config.features.params.get("parts")
    if config.features.name == "stack" and params.get("blocks") is None and isinstance(parts, list):
        params["blocks"] = [1] * len(parts)  # the widths are known once the parts are built
    try:
        resolve_params(kind, params)
        expand_search(kind, config.model.search)
    except ConfigError as error:
        raise ConfigError(f"model {kind!r}: {error}") from None
    _check_utterance_level(config)


def _check_utterance_level(config: Any) -> None:
    name = config.features.name
    frame_rate = None
    if name != "ssl":  # building an SSL encoder loads a checkpoint; it gives frames anyway
        frame_rate = build_extractor({"name": name, **config.features.params}).frame_rate
    if frame_rate != 0:
        raise ConfigError(
            f"classical model {config.model.name!r} needs utterance-level features ([1, dim] per "
            f"utterance), such as 'functionals'; features.name {name!r} gives frames"
        )


def fit_classical(
    ctx: Any,
    train_ids: Sequence[str],
    valid_ids: Sequence[str] | None,
    out_dir: Path,
    *,
    extra: dict[str, Any] | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Fit ``model.name`` on train + validation utterances (plus augmented copies of the
    training ones) and save ``out_dir/bundle`` (kind classical); returns it and a record."""
    from sertk.classical.fit import fit_classifier  # scikit-learn

    config = ctx.config
    ids = [*train_ids, *(valid_ids or ())]
    copies, sources = augmented_copies(ctx, train_ids)
    rows = _rows([ctx.features[uid] for uid in ids] + copies, [*ids, *sources])
    owners = [*ids, *sources]
    labels = encode(ctx, owners)
    groups = [ctx.utterances[uid].speaker for uid in owners]
    model = fit_classifier(
        rows, labels, kind=config.model.name, num_classes=len(ctx.label_map.labels),
        groups=groups, params=classical_params(config, ctx.extractor), search=config.model.search,
        seed=config.train.seed, scored=[True] * len(ids) + [False] * len(copies),
    )  # fmt: skip
    search = model.search
    record = {
        "best_epoch": None,
        "best_valid_ua": None,
        "epochs_run": None,
        "stopped_early": None,
        "class_weights": model.params.get("class_weight"),
        "augment": None if not copies else {
            "copies": config.train.augment.copies if config.train.augment.waveform_copies else 0,
            "crops": [list(crop) for crop in config.train.augment.crops],
        },
        "train_utterances": len(train_ids),
        "valid_utterances": 0 if valid_ids is None else len(valid_ids),
        "validation": "joined the training rows (model selection: inner grouped CV)",
        "augmented_rows": len(copies),
        "train_speakers": speakers(ctx, train_ids),
        "valid_speakers": speakers(ctx, valid_ids or ()),
        "model": config.model.name,
        "params": model.params,
        "search": None if search is None else {
            "best": search["best"], "best_ua": search["best_ua"], "grid": search["grid"],
            "candidates": len(search["candidates"]),
        },
    }  # fmt: skip
    bundle = save_classical_bundle(
        out_dir / "bundle", model=model, labels=ctx.label_map.labels, label_map=ctx.label_map,
        features=ctx.extractor, preprocess=ctx.preprocess, training=record,
        **bundle_options(ctx, extra),
    )  # fmt: skip
    return bundle, {**record, "history": None}


def _rows(items: Sequence[np.ndarray], ids: Sequence[str]) -> np.ndarray:
    """Stack ``[1, dim]`` items into ``[n, dim]``; FeatureError naming a frame-level item."""
    for uid, item in zip(ids, items, strict=True):
        if item.ndim != 2 or item.shape[0] != 1:
            raise FeatureError(
                f"utterance {uid} has features of shape {item.shape}; a classical model needs "
                "one row per utterance ([1, dim]), e.g. the 'functionals' extractor"
            )
    return np.concatenate(items).astype(np.float64)
