"""Turn a fitted scikit-learn estimator (built by ``sertk.classical.fit``) into plain arrays."""

from __future__ import annotations

from typing import Any

import numpy as np


def export_estimator(estimator: Any, kind: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Arrays (float64/int64) and the kind-specific meta entries of a fitted estimator.

    SVM kinds are ``CalibratedClassifierCV(Pipeline, ensemble=False)``, ridge a
    ``TemperatureCalibrated(Pipeline)``; the others a ``Pipeline`` of ``scale``
    (StandardScaler), optional ``clip`` (its bound is in the model's meta), optional ``project``
    (PCA or LDA) and ``classify``.
    """
    calibration = None
    pipeline = estimator
    temperature = None
    if kind == "ridge":
        pipeline, temperature = estimator.pipeline, estimator.temperature
    if kind in ("linear_svm", "svm"):
        calibrated = estimator.calibrated_classifiers_[0]
        pipeline = calibrated.estimator
        calibration = calibrated.calibrators
    steps = pipeline.named_steps
    arrays = {
        "scaler_mean": _float(steps["scale"].mean_),
        "scaler_scale": _float(steps["scale"].scale_),
    }
    meta: dict[str, Any] = {"projection": "none", "column_weight": "weight" in steps}
    if "weight" in steps:
        arrays["column_weight"] = _float(steps["weight"].kw_args["factors"])
    if "project" in steps:
        arrays_, meta_ = _projection(steps["project"])
        arrays.update(arrays_)
        meta.update(meta_)
    classifier = steps["classify"]
    if kind in ("linear_svm", "logreg", "ridge"):
        arrays["coef"] = _float(classifier.coef_)
        arrays["intercept"] = _float(classifier.intercept_)
    elif kind == "svm":
        arrays.update(
            support_vectors=_float(classifier.support_vectors_),
            dual_coef=_float(classifier._dual_coef_),  # libsvm's layout, before sklearn's flip
            intercept=_float(classifier._intercept_),
            n_support=np.asarray(classifier.n_support_, dtype=np.int64),
        )
        meta["gamma"] = float(classifier._gamma)
    else:
        arrays.update(_flatten_forest(classifier))
    if temperature is not None:
        arrays["calibration_temperature"] = np.array([temperature], dtype=np.float64)
    if calibration is not None:
        arrays["calibration_a"] = np.array([float(c.a_) for c in calibration], dtype=np.float64)
        arrays["calibration_b"] = np.array([float(c.b_) for c in calibration], dtype=np.float64)
    return arrays, meta


def _float(array: Any) -> np.ndarray:
    return np.array(array, dtype=np.float64)  # a C-ordered copy


def _projection(step: Any) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    if hasattr(step, "components_"):  # PCA (built without whitening)
        return {
            "pca_components": _float(step.components_),
            "pca_mean": _float(step.mean_),
        }, {"projection": "pca"}
    components = getattr(step, "_max_components", None)
    if components is None:
        components = step.n_components or min(len(step.classes_) - 1, step.scalings_.shape[0])
    return {
        "lda_scalings": _float(step.scalings_),
        "lda_xbar": _float(step.xbar_),
    }, {"projection": "lda", "lda_components": int(components)}


def _flatten_forest(forest: Any) -> dict[str, np.ndarray]:
    """All trees one after another; children become global node indices (-1 stays -1)."""
    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("left", "right", "feature", "threshold", "value")
    }
    offsets = [0]
    for tree in forest.estimators_:
        t = tree.tree_
        offset = offsets[-1]
        for name, children in (("left", t.children_left), ("right", t.children_right)):
            children = np.asarray(children, dtype=np.int64)
            parts[name].append(np.where(children >= 0, children + offset, -1))
        parts["feature"].append(np.asarray(t.feature, dtype=np.int64))
        parts["threshold"].append(_float(t.threshold))
        parts["value"].append(_leaf_fractions(np.asarray(t.value)[:, 0, :]))
        offsets.append(offset + t.node_count)
    return {
        "tree_offsets": np.asarray(offsets, dtype=np.int64),
        "children_left": np.concatenate(parts["left"]),
        "children_right": np.concatenate(parts["right"]),
        "feature": np.concatenate(parts["feature"]),
        "threshold": np.concatenate(parts["threshold"]),
        "value": np.concatenate(parts["value"]),
    }


def _leaf_fractions(value: np.ndarray) -> np.ndarray:
    """Per-node class fractions. sklearn >= 1.4 already stores fractions (kept bit for bit);
    older versions store weighted counts that their ``predict_proba`` normalises the same way."""
    value = _float(value)
    total = value.sum(axis=1)
    if np.allclose(total, 1.0, rtol=0, atol=1e-9):
        return value
    total[total == 0.0] = 1.0
    return value / total[:, None]
