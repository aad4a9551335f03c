"""The scikit-learn pipeline of every classical kind and the one place it is fitted.

``StandardScaler`` (fit on the training rows only) -> optional clip of the standardised values to
+-``clip`` -> optional per-block column weights -> optional ``PCA`` or
``LinearDiscriminantAnalysis`` -> the classifier (see :mod:`sertk.classical.fit`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from sertk.classical._params import COMMON, column_weights
from sertk.errors import ConfigError


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


def fit_pipeline(estimator: Any, x: np.ndarray, y: np.ndarray, kind: str, params: dict) -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            return estimator.fit(x, y)
    except ValueError as error:  # includes sklearn's InvalidParameterError
        raise ConfigError(f"cannot fit {kind} with params {params}: {error}") from None
