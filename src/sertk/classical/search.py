"""Inner cross-validation over the training speakers: splits, the hyper-parameter search, UA.

Every candidate is scored by unweighted accuracy (UA) on the held-out speakers of each split
(``scored`` rows only: augmented copies train but are not scored). For ``ridge`` the search also
keeps each candidate's decision values on every held-out row, so the chosen one's out-of-fold
scores calibrate its temperature without refitting (:func:`sertk.classical.fit.fit_classifier`).
Plain ridge pipelines (no intercept, class weights or projection) share one eigendecomposition
per split for every C (:class:`sertk.classical._ridge.RidgePath`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sertk.classical._params import check_pipeline_options
from sertk.classical.pipeline import build_pipeline, fit_pipeline
from sertk.errors import ConfigError, FoldError

Split = tuple[np.ndarray, np.ndarray]


def grouped_splits(
    groups: np.ndarray | None, inner_folds: int, *, required: bool
) -> tuple[list[Split], list[dict[str, list]]]:
    """Speaker-grouped inner splits of the training rows and their record (group names)."""
    from sklearn.model_selection import GroupKFold, LeaveOneGroupOut

    names = None if groups is None else np.unique(groups)
    if names is None or names.size < 2:
        if not required:
            return [], []
        found = "no groups were given" if names is None else f"only speaker {names[0]!r} was given"
        raise FoldError(
            "a hyper-parameter search needs an inner cross-validation over training speakers, "
            f"but {found}; pass groups= with at least 2 distinct speaker ids, or drop search="
        )
    splitter = LeaveOneGroupOut() if names.size <= inner_folds else GroupKFold(inner_folds)
    index = np.arange(groups.shape[0])
    splits = [(train, valid) for train, valid in splitter.split(index, groups=groups)]
    record = [
        {"train_groups": _names(groups[train]), "valid_groups": _names(groups[valid])}
        for train, valid in splits
    ]
    return splits, record


def _names(groups: np.ndarray) -> list[Any]:
    values = np.unique(groups).tolist()
    return [v if isinstance(v, str | int) and not isinstance(v, bool) else str(v) for v in values]


def _search(
    x: np.ndarray, y: np.ndarray, kind: str, params: dict, grid: list[dict], splits: list[Split],
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """The chosen candidate and record of :func:`search_candidates`, every validation row scored."""
    best, record, _ = search_candidates(x, y, kind, params, grid, splits, seed)
    return best, record


def search_candidates(
    x: np.ndarray, y: np.ndarray, kind: str, params: dict, grid: list[dict], splits: list[Split],
    seed: int, *, scored: np.ndarray | None = None,
) -> tuple[dict[str, Any], dict[str, Any], np.ndarray | None]:  # fmt: skip
    """Mean inner-CV UA of every candidate (over the ``scored`` validation rows, default all);
    the first best one wins. Returns it, the record and, for ``ridge``, the winner's decision
    values on every row from the split that held it out (``[n]`` or ``[n, classes]``; None if a
    split lacks a class): the out-of-fold scores its temperature is fitted on."""
    merged_grid = [{**params, **candidate} for candidate in grid]
    for merged in merged_grid:
        check_pipeline_options(merged)
    fold_ua: list[list[float]] = [[] for _ in grid]
    classes = np.unique(y).size
    columns = () if classes == 2 else (classes,)  # decision_function's shape per row
    out_of_fold = [np.zeros((y.shape[0], *columns)) for _ in grid] if kind == "ridge" else None
    for train, valid in splits:
        if np.unique(y[train]).size < 2:
            raise FoldError(
                "an inner training split holds a single class; give more speakers or "
                "fewer inner_folds"
            )
        kept = np.ones(valid.size, bool) if scored is None else scored[valid]
        paths: dict[str, Any] = {}  # ridge: one decomposition per split for every C
        for index, merged in enumerate(merged_grid):
            if kind == "ridge":
                decision, predicted = ridge_scores(paths, x, y, train, valid, merged, seed)
                if out_of_fold is not None and decision.shape[1:] == columns:
                    out_of_fold[index][valid] = decision
                else:  # a class missing from the training rows; calibration refuses these
                    out_of_fold = None
                predicted = predicted[kept]
            else:
                pipeline = build_pipeline(kind, merged, seed, x.shape[1])
                fitted = fit_pipeline(pipeline, x[train], y[train], kind, merged)
                predicted = fitted.predict(x[valid[kept]])
            fold_ua[index].append(unweighted_accuracy(y[valid[kept]], predicted))
    candidates = [
        {"params": candidate, "fold_ua": scores, "mean_ua": float(np.mean(scores))}
        for candidate, scores in zip(grid, fold_ua, strict=True)
    ]
    best = int(np.argmax([c["mean_ua"] for c in candidates]))
    grid_record = {key: [c[key] for c in grid] for key in grid[0]}
    grid_record = {key: _unique(values) for key, values in grid_record.items()}
    record = {
        "scoring": "ua",
        "grid": grid_record,
        "candidates": candidates,
        "best": dict(grid[best]),
        "best_ua": candidates[best]["mean_ua"],
    }
    return dict(grid[best]), record, None if out_of_fold is None else out_of_fold[best]


def _unique(values: list[Any]) -> list[Any]:
    """``values`` without repeats, in order (values may be lists)."""
    out: list[Any] = []
    for value in values:
        if value not in out:
            out.append(value)
    return out


def _ridge_path_applies(kind: str, params: dict[str, Any]) -> bool:
    if kind != "ridge":
        return False
    plain = params["class_weight"] is None and not params["fit_intercept"]
    return plain and params["projection"] == "none"


def ridge_scores(
    paths: dict, x: np.ndarray, y: np.ndarray, train: np.ndarray, valid: np.ndarray,
    params: dict, seed: int,
) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Ridge decision values (as ``decision_function``) and predicted classes of the ``valid``
    rows of one inner split for ``params``. Plain pipelines share one decomposition
    (``RidgePath``, kept in ``paths``) among every C; others are refitted."""
    if not _ridge_path_applies("ridge", params):
        pipeline = build_pipeline("ridge", params, seed, x.shape[1])
        fitted = fit_pipeline(pipeline, x[train], y[train], "ridge", params)
        return fitted.decision_function(x[valid]), fitted.predict(x[valid])
    import json

    from sertk.classical._ridge import RidgePath, check_c

    try:
        c = check_c(params["C"])
    except ValueError as error:  # the message refitting would give
        raise ConfigError(f"cannot fit ridge with params {params}: {error}") from None
    key = json.dumps({k: v for k, v in params.items() if k != "C"}, sort_keys=True)
    if key not in paths:
        steps = build_pipeline("ridge", params, seed, x.shape[1])[:-1]
        paths[key] = RidgePath(steps, x[train], y[train], x[valid])
    return paths[key].decide(c)


def unweighted_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``true`` (sertk.metrics' UA)."""
    recalls = [float(np.mean(pred[true == c] == c)) for c in np.unique(true)]
    return float(np.mean(recalls))
