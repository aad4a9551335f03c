"""Fitting classical classifiers with scikit-learn, then exporting them to plain arrays.

Pipeline: ``StandardScaler`` (fit on the training rows only) -> optional clip of the
standardised values to +-``clip`` (outliers of heavy-tailed functionals) -> optional ``PCA`` or
``LinearDiscriminantAnalysis`` -> the classifier. Hyper-parameters come from an inner
cross-validation over the *training speakers* (``groups``), scored by UA; the chosen values and
every candidate's per-fold UA are recorded in ``model.search``. The pipeline is built in
:mod:`sertk.classical.pipeline`, the inner CV in :mod:`sertk.classical.search`.

Probabilities. ``logreg`` and ``random_forest`` use scikit-learn's own. The SVMs (``LinearSVC``
and ``SVC(kernel="rbf")``) have none, so they are wrapped in
``CalibratedClassifierCV(method="sigmoid", ensemble=False)``: one Platt sigmoid per class fit on
out-of-fold decision values (the same speaker-grouped inner splits; without groups, stratified
folds), the pipeline itself refit on all training rows. Their ``predict`` is the argmax of those
probabilities, so labels and probabilities always agree (they may differ from the raw SVM's votes
on borderline rows). The inner search scores the uncalibrated SVM (its own ``predict``).
``ridge`` (:mod:`sertk.classical._ridge`) gets ``softmax(decision / T)`` with one temperature
fitted on out-of-fold decision values of the same splits (after a search, the chosen C's scores
from the search itself, no refits): its labels stay the ridge argmax.
``SVC(probability=True)`` is not used: scikit-learn 1.9 deprecates it, its Platt folds ignore
speakers, and its ``predict`` (libsvm votes) can disagree with its ``predict_proba``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sertk.classical._checks import check_features, check_groups, check_labels
from sertk.classical._params import check_kind, expand_search, resolve_params
from sertk.classical.export import export_estimator
from sertk.classical.model import FORMAT, FORMAT_VERSION, ClassicalModel
from sertk.classical.pipeline import build_pipeline, fit_pipeline
from sertk.classical.search import (
    Split,
    _search,  # noqa: F401 (re-exported: the older two-value search)
    grouped_splits,
    search_candidates,
    unweighted_accuracy,  # noqa: F401 (re-exported)
)
from sertk.errors import ConfigError, FoldError

_fit = fit_pipeline  # its older name here, as tests import it


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

    >>> import numpy as np
    >>> y = np.repeat(np.arange(4), 20)
    >>> x = np.random.default_rng(0).normal(size=(80, 8)) + 2.0 * np.eye(4, 8)[y]
    >>> model = fit_classifier(x, y, kind="svm", num_classes=4, groups=np.tile(np.arange(5), 16),
    ...                        search={"C": [0.1, 1, 10]})
    >>> model.predict_proba(x[:10]).shape
    (10, 4)
    """
    kind = check_kind(kind)
    x = check_features(x)
    y = check_labels(y, x.shape[0], num_classes)
    groups = check_groups(groups, x.shape[0])
    if isinstance(inner_folds, bool) or not isinstance(inner_folds, int) or inner_folds < 2:
        raise ConfigError(f"inner_folds must be an integer >= 2, got {inner_folds!r}")
    params = resolve_params(kind, params)
    grid = expand_search(kind, search)
    record = out_of_fold = None
    if grid:
        splits, split_record = grouped_splits(groups, inner_folds, required=True)
        if scored is not None:  # inner validation scores only these rows (e.g. not copies)
            scored = np.asarray(scored, dtype=bool).reshape(-1)
            if scored.shape != y.shape or not scored.any():
                raise ConfigError("scored must be a boolean mask over the rows, not all False")
            if any(not scored[valid].any() for _, valid in splits):
                raise FoldError("an inner split has no scored validation rows")
        best, record, out_of_fold = search_candidates(
            x, y, kind, params, grid, splits, seed, scored=scored
        )
        record["scored_rows"] = "all" if scored is None else int(scored.sum())
        record["splits"] = split_record
        params = {**params, **best}
    if calibration_groups is not None:
        groups = check_groups(calibration_groups, x.shape[0])
        out_of_fold = None  # the search's out-of-fold scores came from its own groups
    estimator, calibration = _fit_final(
        x, y, groups, kind, params, seed, inner_folds, out_of_fold=out_of_fold
    )
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


def _fit_final(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, kind: str, params: dict,
    seed: int, inner_folds: int, *, out_of_fold: np.ndarray | None = None,
) -> tuple[Any, dict[str, Any] | None]:  # fmt: skip
    if kind == "ridge":
        return _fit_ridge(x, y, groups, params, seed, inner_folds, out_of_fold)
    pipeline = build_pipeline(kind, params, seed, x.shape[1])
    if kind not in ("linear_svm", "svm"):
        return fit_pipeline(pipeline, x, y, kind, params), None
    from sklearn.calibration import CalibratedClassifierCV

    splits, calibration = _calibration_splits(y, groups, inner_folds, seed, "sigmoid")
    estimator = CalibratedClassifierCV(pipeline, method="sigmoid", cv=splits, ensemble=False)
    return fit_pipeline(estimator, x, y, kind, params), calibration


def _fit_ridge(
    x: np.ndarray, y: np.ndarray, groups: np.ndarray | None, params: dict, seed: int,
    inner_folds: int, out_of_fold: np.ndarray | None,
) -> tuple[Any, dict[str, Any]]:  # fmt: skip
    """The ridge pipeline on all rows plus a softmax temperature fitted on its out-of-fold
    decision values (speaker-grouped splits, else stratified). After a search, those are the
    chosen candidate's scores from the search, whose splits are these same speaker splits;
    without one, the pipeline is fitted once per split for them."""
    from sertk.classical._ridge import TemperatureCalibrated, fit_temperature

    splits, calibration = _calibration_splits(y, groups, inner_folds, seed, "temperature")
    if out_of_fold is None:
        for train, valid in splits:
            pipeline = build_pipeline("ridge", params, seed, x.shape[1])
            fitted = fit_pipeline(pipeline, x[train], y[train], "ridge", params)
            decision = fitted.decision_function(x[valid])
            if out_of_fold is None:
                out_of_fold = np.zeros((y.shape[0], *decision.shape[1:]))
            out_of_fold[valid] = decision
    pipeline = fit_pipeline(
        build_pipeline("ridge", params, seed, x.shape[1]), x, y, "ridge", params
    )
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
