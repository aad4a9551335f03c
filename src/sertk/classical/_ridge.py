"""The ``ridge`` kind on the scikit-learn side: the classifier and its temperature calibration.

``ScaledRidgeClassifier(C)`` is scikit-learn's ``RidgeClassifier`` (one-vs-rest targets +-1,
least squares with an L2 penalty) with ``alpha = n_features / C``. That makes it the kernel
ridge regression of the hand-crafted SER study: linear kernel ``K = Z Z^T / dim`` and
regulariser ``I / C``, whose dual solution ``(K + I / C)^-1 Y`` gives the same scores as the
primal ``(Z^T Z + (dim / C) I)^-1 Z^T Y``. Dividing by ``dim`` keeps ``C`` meaningful whatever
the feature size. No intercept by default: the features are standardised on the training rows,
so an intercept would only add ``2 p_k - 1`` (class priors) to every score and tilt the argmax
towards frequent classes.

Probabilities: ``softmax(decision / T)`` with one temperature ``T`` fitted by minimising the
log-loss of out-of-fold decision values (:func:`fit_temperature`). One scalar keeps the
ranking, so the predicted class is exactly the ridge argmax.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import RidgeClassifier

from sertk.classical import numeric

# search range of log(T); ridge scores of standardised features live around [-2, 2]
_LOG_T_RANGE = (np.log(1e-3), np.log(1e3))


def check_c(c: Any) -> float:
    """``c`` as a float; ValueError unless it is a number > 0."""
    if isinstance(c, bool) or not isinstance(c, numbers.Real) or not c > 0:
        raise ValueError(f"C must be a number > 0, got {c!r}")
    return float(c)


class ScaledRidgeClassifier(ClassifierMixin, BaseEstimator):
    """``RidgeClassifier(alpha=n_features / C)``; see the module docstring."""

    def __init__(
        self, C: float = 1.0, fit_intercept: bool = False, class_weight: Any = None
    ) -> None:
        self.C = C
        self.fit_intercept = fit_intercept
        self.class_weight = class_weight

    def fit(self, x: np.ndarray, y: np.ndarray, sample_weight: Any = None) -> ScaledRidgeClassifier:
        """Fit on ``x`` ``[n, dim]``, ``y`` ``[n]``; ValueError for a C that is not > 0."""
        check_c(self.C)
        ridge = RidgeClassifier(
            alpha=x.shape[1] / self.C,
            fit_intercept=self.fit_intercept,
            class_weight=self.class_weight,
        )
        self.ridge_ = ridge.fit(x, y, sample_weight=sample_weight)
        self.classes_ = ridge.classes_
        self.coef_ = np.atleast_2d(np.asarray(ridge.coef_, dtype=np.float64))
        self.intercept_ = np.broadcast_to(
            np.asarray(ridge.intercept_, dtype=np.float64), (self.coef_.shape[0],)
        ).copy()
        self.n_features_in_ = x.shape[1]
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """Scores ``[n]`` (binary) or ``[n, classes]``: ``x @ coef_.T + intercept_``."""
        return self.ridge_.decision_function(x)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The class with the highest score (binary: score > 0)."""
        return self.ridge_.predict(x)


class RidgePath:
    """Validation predictions of :class:`ScaledRidgeClassifier` (no intercept, no class
    weights) for any ``C`` from one eigendecomposition: the inner-CV search over ``C`` costs
    one fit instead of one per value.

    ``transform``: the unfitted pipeline steps before the classifier (scale, clip, weights);
    fitted here on ``x_train``. With ``Z`` the transformed training rows (``n x d``) and
    ``alpha = d / C``, the scores of ``Z_v`` are ``Z_v (Z^T Z + alpha I)^-1 Z^T Y`` =
    ``Z_v Z^T (Z Z^T + alpha I)^-1 Y``; the smaller of the two Gram matrices is decomposed.
    Targets are +-1 one-vs-rest over the classes present in ``y_train`` (as sklearn's).
    """

    def __init__(self, transform: Any, x_train: np.ndarray, y_train: np.ndarray,
                 x_valid: np.ndarray) -> None:  # fmt: skip
        z = np.asarray(transform.fit_transform(x_train), dtype=np.float64)
        z_valid = np.asarray(transform.transform(x_valid), dtype=np.float64)
        self.classes = np.unique(y_train)
        targets = np.where(y_train[:, None] == self.classes[None, :], 1.0, -1.0)
        self.dim = z.shape[1]
        if z.shape[0] >= z.shape[1]:
            self.eigenvalues, vectors = np.linalg.eigh(z.T @ z)
            self.left = z_valid @ vectors
            self.right = vectors.T @ (z.T @ targets)
        else:
            self.eigenvalues, vectors = np.linalg.eigh(z @ z.T)
            self.left = (z_valid @ z.T) @ vectors
            self.right = vectors.T @ targets

    def decide(self, c: float) -> tuple[np.ndarray, np.ndarray]:
        """The validation rows' ``decision_function`` for ``C = c`` (``[rows, classes]``, or
        ``[rows]``, the second class's score, with two classes, as scikit-learn's) and their
        predicted classes ``[rows]``. ValueError unless ``c`` > 0."""
        shrink = 1.0 / (np.maximum(self.eigenvalues, 0.0) + self.dim / check_c(c))
        scores = self.left @ (shrink[:, None] * self.right)
        predicted = self.classes[np.argmax(scores, axis=1)]
        return (scores[:, 1] if len(self.classes) == 2 else scores), predicted

    def predict(self, c: float) -> np.ndarray:
        """Predicted classes of the validation rows for ``C = c`` (ValueError unless > 0)."""
        return self.decide(c)[1]


class TemperatureCalibrated:
    """A fitted pipeline plus a softmax temperature: scikit-learn's side of a ``ridge`` model.

    ``predict_proba`` is what :class:`sertk.classical.ClassicalModel` computes from the arrays.
    """

    def __init__(self, pipeline: Any, temperature: float) -> None:
        self.pipeline = pipeline
        self.temperature = float(temperature)
        self.classes_ = pipeline.classes_

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        """The pipeline's decision values ``[n]`` or ``[n, classes]``."""
        return self.pipeline.decision_function(x)

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """``softmax(decision / T)`` ``[n, classes]``."""
        return numeric.temperature_proba(self.decision_function(x), self.temperature)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The pipeline's own prediction (equals the argmax of ``predict_proba``)."""
        return self.pipeline.predict(x)


def fit_temperature(decision: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """The temperature minimising the mean log-loss of ``softmax(decision / T)`` against ``y``.

    ``decision`` ``[n]`` (binary) or ``[n, classes]``; returns ``{"temperature", "log_loss",
    "log_loss_t1"}`` (the loss at the fitted T and at T = 1, for the record).
    """
    from scipy.optimize import minimize_scalar

    def loss(log_t: float) -> float:
        proba = numeric.temperature_proba(decision, float(np.exp(log_t)))
        return float(-np.mean(np.log(np.maximum(proba[np.arange(y.size), y], 1e-300))))

    result = minimize_scalar(loss, bounds=_LOG_T_RANGE, method="bounded")
    return {
        "temperature": float(np.exp(result.x)),
        "log_loss": float(result.fun),
        "log_loss_t1": loss(0.0),
    }
