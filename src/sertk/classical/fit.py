"""Fitting classical classifiers with scikit-learn, then exporting them to plain arrays.

Pipeline: ``StandardScaler`` (fit on the training rows only) -> optional clip of the
standardised values to +-``clip`` (outliers of heavy-tailed functionals) -> optional ``PCA`` or
``LinearDiscriminantAnalysis`` -> the classifier. Hyper-parameters come from an inner
cross-validation over the *training speakers* (``groups``), scored by UA; the chosen values and
every candidate's per-fold UA are recorded in ``model.search``.

Probabilities. ``logreg`` and ``random_forest`` use scikit-learn's own. The SVMs (``LinearSVC``
and ``SVC(kernel="rbf")``) have none, so they are wrapped in
``CalibratedClassifierCV(method="sigmoid", ensemble=False)``: one Platt sigmoid per class fit on
out-of-fold decision values (the same speaker-grouped inner splits; without groups, stratified
folds), the pipeline itself refit on all training rows. Their ``predict`` is the argmax of those
probabilities, so labels and probabilities always agree (they may differ from the raw SVM's votes
on borderline rows). The inner search scores the uncalibrated SVM (its own ``predict``).
``ridge`` (:mod:`sertk.classical._ridge`) gets ``softmax(decision / T)`` with one temperature
fitted on out-of-fold decision values of the same splits: its labels stay the ridge argmax.
``SVC(probability=True)`` is not used: scikit-learn 1.9 deprecates it, its Platt folds ignore
speakers, and its ``predict`` (libsvm votes) can disagree with its ``predict_proba``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from sertk.classical._checks import check_features, check_groups, check_labels
from sertk.classical._params import (
    COMMON,
    check_kind,
    check_pipeline_options,
    column_weights,
    expand_search,
    resolve_params,
)
from sertk.classical.export import export_estimator
from sertk.classical.model import FORMAT, FORMAT_VERSION, ClassicalModel
from sertk.errors import ConfigError, FoldError

Split = tuple[np.ndarray, np.ndarray]


def fit_classifier(
    x: Any,
    y: Any,
    *,
    kind: str,
    num_classes: int,
    groups: Any = None,
    params: dict[str, Any] | None = None,
    search: dict[str, list[Any]] | None = None,
    seed: int = 0,
    inner_folds: int = 5,
    scored: Any = None,
    calibration_groups: Any = None,
) -> ClassicalModel:
    """Fit ``kind`` (one of ``KINDS``) on ``x`` ``[n, dim]``, ``y`` ``[n]``.

    ``groups`` ``[n]``: speaker ids for the inner CV (LeaveOneGroupOut with at most
    ``inner_folds`` speakers, else GroupKFold). ``params``: fixed hyper-parameters (classifier
    arguments plus ``projection`` none/pca/lda, ``n_components``, ``class_weight``, ``clip``);
    ``search``: ``{name: [values]}`` tried by the inner CV (needs >= 2 speakers, else FoldError).
    ``scored`` ``[n]`` bool: the rows the inner CV scores (default all); augmented copies train
    but are not scored, so model selection mirrors the test condition (original recordings).
    ``calibration_groups`` ``[n]``: other groups for the probability calibration's splits
    (default ``groups``), e.g. speakers when ``groups`` are corpora and a class lives in one.

    >>> model = fit_classifier(x, y, kind="svm", num_classes=4, groups=speakers,
    ...                        search={"C": [0.1, 1, 10]})  # doctest: +SKIP
    >>> model.predict_proba(x_test).shape  # doctest: +SKIP
    (120, 4)
    """
    kind = check_kind(kind)
    x = check_features(x)
    y = check_labels(y, x.shape[0], num_classes)
    groups = check_groups(groups, x.shape[0])
    if isinstance(inner_folds, bool) or not isinstance(inner_folds, int) or inner_folds < 2:
        raise ConfigError(f"inner_folds must be an integer >= 2, got {inner_folds!r}")
    params = resolve_params(kind, params)
    grid = expand_search(kind, search)
    record = None
    if grid:
        splits, split_record = grouped_splits(groups, inner_folds, required=True)
        if scored is not None:  # inner validation scores only these rows (e.g. not copies)
            scored = np.asarray(scored, dtype=bool).reshape(-1)
            if scored.shape != y.shape or not scored.any():
                raise ConfigError("scored must be a boolean mask over the rows, not all False")
            splits = [(train, valid[scored[valid]]) for train, valid in splits]
            if any(valid.size == 0 for _, valid in splits):
                raise FoldError("an inner split has no scored validation rows")
        best, record = _search(x, y, kind, params, grid, splits, seed)
        record["scored_rows"] = "all" if scored is None else int(scored.sum())
        record["splits"] = split_record
        params = {**params, **best}
    if calibration_groups is not None:
        groups = check_groups(calibration_groups, x.shape[0])
    estimator, calibration = _fit_final(x, y, groups, kind, params, seed, inner_folds)
    arrays, extra = export_estimator(estimator, kind)
    meta = {
        "format": FORMAT,
        "format_version": _format_version(kind, params),
        "kind": kind,
        "num_classes": int(num_classes),
        "input_dim": int(x.shape[1]),
        "clip": params["clip"],
        **extra,
        "params": params,
        "search": record,
        "calibration": calibration,
        "training": _training_summary(y, groups, num_classes),
        "sklearn_version": _sklearn_version(),
    }
    return ClassicalModel(arrays, meta, estimator=estimator)


def _format_version(kind: str, params: dict[str, Any]) -> int:
    """The oldest format whose readers compute the same thing (so older sertk still loads it)."""
    if params["blocks"] is not None:
        return FORMAT_VERSION  # 3: column weights
    return 2 if kind == "ridge" or params["clip"] is not None else 1


def _training_summary(y: np.ndarray, groups: np.ndarray | None, num_classes: int) -> dict:
    return {
        "n": int(y.shape[0]),
        "class_counts": np.bincount(y, minlength=num_classes).tolist(),
        "speakers": None if groups is None else int(np.unique(groups).size),
    }


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


def build_pipeline(kind: str, params: dict[str, Any], seed: int, dim: int) -> Any:
    """The unfitted scikit-learn ``Pipeline`` (scale -> clip -> weight blocks -> project ->
    classify) for ``params`` and ``dim`` input columns."""
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler
    from sklearn.svm import SVC, LinearSVC

    from sertk.classical._ridge import ScaledRidgeClassifier

    steps: list[tuple[str, Any]] = [("scale", StandardScaler())]
    if params["clip"] is not None:
        bounds = {"a_min": -params["clip"], "a_max": params["clip"]}
        steps.append(("clip", FunctionTransformer(np.clip, kw_args=bounds)))
    if params["blocks"] is not None:
        factors = column_weights(params["blocks"], params["block_weights"], dim)
        steps.append(("weight", FunctionTransformer(_weigh, kw_args={"factors": factors})))
    if params["projection"] == "pca":
        steps.append(("project", PCA(n_components=params["n_components"], random_state=seed)))
    elif params["projection"] == "lda":
        steps.append(("project", LinearDiscriminantAnalysis(n_components=params["n_components"])))
    own = {k: v for k, v in params.items() if k not in COMMON or k == "class_weight"}
    classifier = {
        "linear_svm": lambda: LinearSVC(**own, random_state=seed),
        "svm": lambda: SVC(kernel="rbf", **own, random_state=seed),
        "logreg": lambda: LogisticRegression(**own, random_state=seed),
        "random_forest": lambda: RandomForestClassifier(**own, n_jobs=1, random_state=seed),
        "ridge": lambda: ScaledRidgeClassifier(**own),
    }[kind]()
    steps.append(("classify", classifier))
    return Pipeline(steps)


def _weigh(x: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Column weights of feature blocks (``column_weights``) applied to ``x`` ``[n, dim]``."""
    return x * factors


def _fit(estimator: Any, x: np.ndarray, y: np.ndarray, kind: str, params: dict) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return estimator.fit(x, y)
    except ValueError as error:  # includes sklearn's InvalidParameterError
        raise ConfigError(f"cannot fit {kind} with params {params}: {error}") from None


def _search(
    x: np.ndarray, y: np.ndarray, kind: str, params: dict, grid: list[dict], splits: list[Split],
    seed: int,
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Mean inner-CV UA of every candidate; the first best one wins."""
    merged_grid = [{**params, **candidate} for candidate in grid]
    for merged in merged_grid:
        check_pipeline_options(merged)
    fold_ua: list[list[float]] = [[] for _ in grid]
    for train, valid in splits:
        if np.unique(y[train]).size < 2:
            raise FoldError(
                "an inner training split holds a single class; give more speakers or "
                "fewer inner_folds"
            )
        paths: dict[str, Any] = {}  # ridge: one decomposition per split for every C
        for scores, merged in zip(fold_ua, merged_grid, strict=True):
            if _ridge_path_applies(kind, merged):
                predicted = _ridge_path(paths, x, y, train, valid, merged, seed)
            else:
                pipeline = build_pipeline(kind, merged, seed, x.shape[1])
                predicted = _fit(pipeline, x[train], y[train], kind, merged).predict(x[valid])
            scores.append(unweighted_accuracy(y[valid], predicted))
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
    return dict(grid[best]), record


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


def _ridge_path(paths: dict, x, y, train, valid, params: dict, seed: int) -> Any:
    """Ridge predictions of one inner split for ``params["C"]``, sharing the decomposition
    (``RidgePath``, kept in ``paths``) with every other C of the same pipeline options."""
    import json

    from sertk.classical._ridge import RidgePath, check_c

    try:
        c = check_c(params["C"])
    except ValueError as error:  # the message refitting would give (_fit)
        raise ConfigError(f"cannot fit ridge with params {params}: {error}") from None
    key = json.dumps({k: v for k, v in params.items() if k != "C"}, sort_keys=True)
    if key not in paths:
        steps = build_pipeline("ridge", params, seed, x.shape[1])[:-1]
        paths[key] = RidgePath(steps, x[train], y[train], x[valid])
    return paths[key].predict(c)


def unweighted_accuracy(true: np.ndarray, pred: np.ndarray) -> float:
    """Mean recall over the classes present in ``true`` (sertk.metrics' UA)."""
    recalls = [float(np.mean(pred[true == c] == c)) for c in np.unique(true)]
    return float(np.mean(recalls))


def _fit_final(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, kind: str, params: dict,
    seed: int, inner_folds: int,
) -> tuple[Any, dict[str, Any] | None]:  # fmt: skip
    if kind == "ridge":
        return _fit_ridge(x, y, groups, params, seed, inner_folds)
    pipeline = build_pipeline(kind, params, seed, x.shape[1])
    if kind not in ("linear_svm", "svm"):
        return _fit(pipeline, x, y, kind, params), None
    from sklearn.calibration import CalibratedClassifierCV

    splits, calibration = _calibration_splits(y, groups, inner_folds, seed, "sigmoid")
    estimator = CalibratedClassifierCV(pipeline, method="sigmoid", cv=splits, ensemble=False)
    return _fit(estimator, x, y, kind, params), calibration


def _fit_ridge(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, params: dict, seed: int,
    inner_folds: int,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The ridge pipeline on all rows plus a softmax temperature fitted on its out-of-fold
    decision values (speaker-grouped splits, else stratified)."""
    from sertk.classical._ridge import TemperatureCalibrated, fit_temperature

    splits, calibration = _calibration_splits(y, groups, inner_folds, seed, "temperature")
    out_of_fold = None
    for train, valid in splits:
        fitted = _fit(
            build_pipeline("ridge", params, seed, x.shape[1]), x[train], y[train], "ridge", params
        )
        decision = fitted.decision_function(x[valid])
        if out_of_fold is None:
            out_of_fold = np.zeros((y.shape[0], *decision.shape[1:]))
        out_of_fold[valid] = decision
    pipeline = _fit(build_pipeline("ridge", params, seed, x.shape[1]), x, y, "ridge", params)
    temperature = fit_temperature(out_of_fold, y)
    return TemperatureCalibrated(pipeline, temperature["temperature"]), {
        **calibration,
        **temperature,
    }


def _calibration_splits(
    y: np.ndarray, groups: np.ndarray | None, inner_folds: int, seed: int, method: str
) -> tuple[list[Split], dict[str, Any]]:
    """Speaker-grouped splits when there are >= 2 speakers, else stratified folds."""
    splits, record = grouped_splits(groups, inner_folds, required=False)
    classes = np.unique(y).size
    if splits:
        for (train, _), entry in zip(splits, record, strict=True):
            if np.unique(y[train]).size < classes:
                missing = sorted(set(np.unique(y).tolist()) - set(np.unique(y[train]).tolist()))
                raise FoldError(
                    f"probability calibration: leaving out speakers {entry['valid_groups']} "
                    f"removes every sample of class(es) {missing} from the training rows; each "
                    "class needs samples from at least two speakers (or pass groups=None)"
                )
        return splits, {"method": method, "cv": "speakers", "splits": record}
    from sklearn.model_selection import StratifiedKFold

    smallest = int(np.bincount(y).min())
    if smallest < 2:
        raise ConfigError(
            "probability calibration needs at least 2 samples of every class; "
            f"class counts are {np.bincount(y).tolist()}"
        )
    folds = min(inner_folds, smallest)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(np.zeros((y.shape[0], 1)), y))
    return splits, {"method": method, "cv": "stratified", "folds": folds}


def _sklearn_version() -> str:
    import sklearn

    return str(sklearn.__version__)
