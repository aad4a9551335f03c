"""Input checks shared by fitting and inference; every problem raises a precise sertk error."""

from __future__ import annotations

from typing import Any

import numpy as np

from sertk.errors import ConfigError, FeatureError


def check_features(x: Any, *, dim: int | None = None, what: str = "x") -> np.ndarray:
    """``x`` as a new float64 ``[n, dim]`` array; FeatureError for a bad shape, dtype or NaN/inf."""
    try:
        array = np.array(x, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as error:
        raise FeatureError(
            f"{what}: cannot be read as a numeric [n, dim] array ({error})"
        ) from None
    if array.ndim != 2:
        raise FeatureError(
            f"{what}: expected shape [n, dim] (one row of utterance-level functionals per "
            f"utterance), got {array.shape}; stack the rows with np.stack"
        )
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise FeatureError(f"{what}: is empty (shape {array.shape})")
    if dim is not None and array.shape[1] != dim:
        raise FeatureError(
            f"{what}: has {array.shape[1]} features per row but the model was fit on {dim}; "
            "use the feature extractor the model was trained with"
        )
    bad = ~np.isfinite(array)
    if bad.any():
        rows = np.flatnonzero(bad.any(axis=1))
        raise FeatureError(
            f"{what}: {int(bad.sum())} values are NaN or inf (in {rows.size} rows, the first is "
            f"row {int(rows[0])}, column {int(np.flatnonzero(bad[rows[0]])[0])}); clean or "
            "drop those utterances before fitting or predicting"
        )
    return array


def check_labels(y: Any, n: int, num_classes: Any) -> np.ndarray:
    """``y`` as int64 ``[n]`` class indices in ``[0, num_classes)``, each class present."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int | np.integer):
        raise ConfigError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    if num_classes < 2:
        raise ConfigError(
            f"num_classes must be >= 2 (a classifier needs two classes), got {num_classes}"
        )
    array = np.asarray(y)
    if array.ndim != 1:
        raise ConfigError(f"y: expected shape [n] of class indices, got {array.shape}")
    if array.shape[0] != n:
        raise FeatureError(
            f"x has {n} rows but y has {array.shape[0]} labels; give one label per feature row"
        )
    if array.dtype.kind == "f" and np.all(np.isfinite(array)) and np.all(array == np.round(array)):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise ConfigError(
            f"y: expected integer class indices, got dtype {array.dtype}; map label names to "
            "indices with the LabelMap first"
        )
    array = array.astype(np.int64)
    outside = (array < 0) | (array >= num_classes)
    if outside.any():
        raise ConfigError(
            f"y: {int(outside.sum())} labels are outside [0, {num_classes}) (e.g. "
            f"{int(array[outside][0])}); check num_classes and the label mapping"
        )
    counts = np.bincount(array, minlength=num_classes)
    empty = np.flatnonzero(counts == 0)
    if empty.size:
        raise ConfigError(
            f"class(es) {empty.tolist()} have no training samples (class counts: "
            f"{counts.tolist()}); drop those classes from the LabelMap or add data"
        )
    return array


def check_groups(groups: Any, n: int) -> np.ndarray | None:
    """``groups`` (speaker ids) as a ``[n]`` array, or None."""
    if groups is None:
        return None
    array = np.asarray(groups)
    if array.ndim != 1 or array.shape[0] != n:
        raise FeatureError(
            f"groups: expected one speaker id per row ([{n}]), got shape {array.shape}"
        )
    if array.dtype.kind == "f" and not np.isfinite(array).all():
        raise ConfigError("groups: speaker ids must not be NaN or inf")
    if array.dtype.kind == "O":
        array = np.asarray([str(value) for value in array])
    return array


def json_value(value: Any, what: str) -> Any:
    """A parameter value as plain JSON (None, bool, int, float, str, or a list of those, e.g.
    ``block_weights``), else ConfigError."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, list | tuple):
        return [json_value(item, f"{what}[{i}]") for i, item in enumerate(value)]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not np.isfinite(value):
            raise ConfigError(f"{what} must be finite, got {value!r}")
        return value
    raise ConfigError(
        f"{what} must be a number, string, true/false, null or a list of those; "
        f"got {value!r} ({type(value).__name__})"
    )
