"""Hyper-parameters of the classical classifiers: defaults, checks and search grids."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from sertk.classical._checks import json_value
from sertk.classical.model import KINDS, PROJECTIONS
from sertk.errors import ConfigError

# Pipeline options shared by every kind; ``clip``: clip standardised features to +-clip (None: no);
# ``blocks`` (widths of consecutive column blocks, e.g. the parts of a ``stack`` extractor) and
# ``block_weights``: see ``column_weights``.
COMMON = {
    "projection": "none", "n_components": None, "class_weight": None, "clip": None,
    "blocks": None, "block_weights": None,
}  # fmt: skip
# Classifier defaults; each key is the scikit-learn argument of the same name.
DEFAULTS: dict[str, dict[str, Any]] = {
    "linear_svm": {"C": 1.0, "max_iter": 10000, "tol": 1e-4},  # LinearSVC
    "svm": {"C": 1.0, "gamma": "scale", "tol": 1e-3},  # SVC(kernel="rbf")
    "logreg": {"C": 1.0, "max_iter": 1000, "tol": 1e-4},  # LogisticRegression (multinomial)
    # RidgeClassifier(alpha=dim / C): kernel ridge with K = Z Z^T / dim (sertk.classical._ridge)
    "ridge": {"C": 1.0, "fit_intercept": False},
    "random_forest": {
        "n_estimators": 300,
        "max_depth": None,
        "min_samples_split": 2,
        "min_samples_leaf": 1,
        "max_features": "sqrt",
        "criterion": "gini",
        "bootstrap": True,
    },
}


def check_kind(kind: Any) -> str:
    if kind not in KINDS:
        raise ConfigError(f"unknown classical kind {kind!r}; choose one of {', '.join(KINDS)}")
    return kind


def resolve_params(kind: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Defaults of ``kind`` updated with ``params``; ConfigError for unknown keys."""
    if params is not None and not isinstance(params, Mapping):
        raise ConfigError(f"params must be a mapping of name -> value, got {type(params).__name__}")
    resolved = {**COMMON, **DEFAULTS[kind]}
    for key, value in (params or {}).items():
        _check_key(kind, key, "params")
        resolved[key] = json_value(value, f"params[{key!r}]")
    check_pipeline_options(resolved)
    return resolved


def expand_search(kind: str, search: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The grid ``{name: [values]}`` as candidate dicts, in ``itertools.product`` order."""
    if search is None:
        return []
    if not isinstance(search, Mapping) or not search:
        raise ConfigError("search must be a non-empty mapping of name -> list of values")
    names, values = [], []
    for key, options in search.items():
        _check_key(kind, key, "search")
        if isinstance(options, str | bytes) or not hasattr(options, "__iter__"):
            raise ConfigError(f"search[{key!r}] must be a list of values, got {options!r}")
        options = [json_value(value, f"search[{key!r}]") for value in options]
        if not options:
            raise ConfigError(f"search[{key!r}] is empty; give at least one value")
        names.append(key)
        values.append(options)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]


def check_pipeline_options(params: Mapping[str, Any]) -> None:
    """ConfigError for a bad ``projection``, ``n_components``, ``class_weight`` or ``clip``."""
    projection, components = params["projection"], params["n_components"]
    if projection not in PROJECTIONS:
        raise ConfigError(
            f"params['projection'] must be one of {', '.join(PROJECTIONS)}, got {projection!r}"
        )
    if components is not None:
        if projection == "none":
            raise ConfigError("params['n_components'] needs projection 'pca' or 'lda'")
        whole = isinstance(components, int) and not isinstance(components, bool) and components >= 1
        fraction = isinstance(components, float) and 0 < components < 1 and projection == "pca"
        if not (whole or fraction):
            raise ConfigError(
                "params['n_components'] must be a positive integer (or, for pca, a fraction of "
                f"variance in (0, 1)); got {components!r}"
            )
    clip = params["clip"]
    if clip is not None and (
        isinstance(clip, bool) or not isinstance(clip, int | float) or not 0 < clip < float("inf")
    ):
        raise ConfigError(
            f"params['clip'] must be null or a number > 0 (e.g. 10: clip standardised features "
            f"to +-10), got {clip!r}"
        )
    _check_blocks(params["blocks"], params["block_weights"])
    if params["class_weight"] not in (None, "balanced"):
        raise ConfigError(
            f"params['class_weight'] must be null or 'balanced', got {params['class_weight']!r}"
        )


def _check_blocks(blocks: Any, weights: Any) -> None:
    def listed(value: Any, ok: Any) -> bool:
        return isinstance(value, list | tuple) and len(value) > 0 and all(map(ok, value))

    if blocks is None and weights is None:
        return
    if weights is not None and blocks is None:
        raise ConfigError(
            "params['block_weights'] needs params['blocks'] (the width of each column block; "
            "set automatically for a 'stack' extractor)"
        )
    if not listed(blocks, lambda b: isinstance(b, int) and not isinstance(b, bool) and b > 0):
        raise ConfigError(f"params['blocks'] must be a list of positive widths, got {blocks!r}")
    number = lambda w: isinstance(w, int | float) and not isinstance(w, bool) and 0 <= w < 1e6  # noqa: E731
    if weights is not None and (
        not listed(weights, number) or len(weights) != len(blocks) or not sum(weights) > 0
    ):
        raise ConfigError(
            f"params['block_weights'] must be {len(blocks)} numbers >= 0 (one per block, not all "
            f"0), got {weights!r}"
        )


def column_weights(blocks: list[int], weights: list[float] | None, dim: int) -> Any:
    """Per-column factors ``[dim]`` applied to standardised features: block ``b`` (width
    ``d_b``, weight ``w_b``) gets ``sqrt(w_b * dim / (d_b * sum(w)))``, so the linear kernel
    ``Z Z^T / dim`` becomes ``sum_b (w_b / sum(w)) Z_b Z_b^T / d_b``: each block's own
    size-normalised kernel, mixed by the weights. Equal weights when ``weights`` is None."""
    import numpy as np

    if sum(blocks) != dim:
        raise ConfigError(
            f"params['blocks'] {list(blocks)} add up to {sum(blocks)} columns but the features "
            f"have {dim}"
        )
    weights = [1.0] * len(blocks) if weights is None else weights
    total = float(sum(weights))
    return np.concatenate(
        [np.full(b, np.sqrt(w * dim / (b * total))) for b, w in zip(blocks, weights, strict=True)]
    )


def _check_key(kind: str, key: Any, where: str) -> None:
    allowed = [*COMMON, *DEFAULTS[kind]]
    if key not in allowed:
        raise ConfigError(
            f"{where}: unknown parameter {key!r} for {kind}; allowed: {', '.join(allowed)}"
        )
