"""``ClassicalModel``: a fitted classical classifier held as plain arrays, evaluated with numpy.

>>> import numpy as np
>>> from sertk.classical import fit_classifier
>>> y = np.repeat(np.arange(3), 10)
>>> x = np.random.default_rng(0).normal(size=(30, 4)) + 3.0 * np.eye(3, 4)[y]
>>> model = fit_classifier(x, y, kind="ridge", num_classes=3)
>>> arrays, meta = model.to_arrays()
>>> restored = ClassicalModel.from_arrays(arrays, meta)
>>> restored.predict_proba(x).shape  # [n, classes]
(30, 3)
>>> bool(np.allclose(restored.predict_proba(x), model.predict_proba(x)))
True
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any

import numpy as np

from sertk.classical import numeric
from sertk.classical._checks import check_features
from sertk.errors import BundleError, ConfigError

FORMAT = "sertk.classical"
# 2: the ridge kind and the clip of standardised features (a reader of 1 would ignore clip);
# 3: per-column weights after the clip (``column_weight``; a reader of 2 would ignore them)
FORMAT_VERSION = 3
KINDS = ("linear_svm", "svm", "logreg", "random_forest", "ridge")
PROJECTIONS = ("none", "pca", "lda")

_INT_ARRAYS = {"n_support", "tree_offsets", "children_left", "children_right", "feature"}
_ARRAYS = {
    "linear_svm": ("coef", "intercept", "calibration_a", "calibration_b"),
    "logreg": ("coef", "intercept"),
    "ridge": ("coef", "intercept", "calibration_temperature"),
    "svm": (
        "support_vectors", "dual_coef", "intercept", "n_support", "calibration_a", "calibration_b"
    ),
    "random_forest": (
        "tree_offsets", "children_left", "children_right", "feature", "threshold", "value"
    ),
}  # fmt: skip
_PROJECTION_ARRAYS = {
    "none": (),
    "pca": ("pca_components", "pca_mean"),
    "lda": ("lda_scalings", "lda_xbar"),
}


class ClassicalModel:
    """Standardise -> optional clip to +-``clip`` -> optional per-column weights (feature
    blocks) -> optional PCA/LDA projection -> classifier, all in numpy (float64).

    ``arrays`` maps names to float64/int64 arrays, ``meta`` is plain JSON (kind, num_classes,
    input_dim, projection, chosen params, inner-CV search record, calibration, ...).
    ``estimator`` is the fitted scikit-learn object when the model came from ``fit_classifier``
    (never stored; None after ``from_arrays``). Predictions never use it.
    """

    def __init__(
        self, arrays: Mapping[str, Any], meta: Mapping[str, Any], *, estimator: Any = None
    ) -> None:
        self.meta = _check_meta(meta)
        self.arrays = _check_arrays(arrays, self.meta)
        self.estimator = estimator

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, Any], meta: Mapping[str, Any]) -> ClassicalModel:
        """Rebuild from :meth:`to_arrays` output; BundleError when the parts do not fit."""
        return cls(arrays, meta)

    def to_arrays(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """Copies of the arrays (float64/int64 numpy) and of the JSON-serialisable meta."""
        return {k: v.copy() for k, v in self.arrays.items()}, copy.deepcopy(self.meta)

    kind = property(lambda self: self.meta["kind"], doc="one of KINDS")
    num_classes = property(lambda self: self.meta["num_classes"], doc="number of classes")
    input_dim = property(lambda self: self.meta["input_dim"], doc="features per row")
    params = property(lambda self: dict(self.meta["params"]), doc="hyper-parameters used")
    search = property(lambda self: self.meta.get("search"), doc="inner-CV record or None")

    def __repr__(self) -> str:
        return (
            f"ClassicalModel(kind={self.kind!r}, num_classes={self.num_classes}, "
            f"input_dim={self.input_dim}, projection={self.meta['projection']!r})"
        )

    def transform(self, x: Any) -> np.ndarray:
        """Standardised (and projected) features ``[n, k]`` of ``x`` ``[n, input_dim]``."""
        z = check_features(x, dim=self.input_dim)
        a = self.arrays
        z -= a["scaler_mean"]
        z /= a["scaler_scale"]
        if self.meta.get("clip") is not None:
            np.clip(z, -self.meta["clip"], self.meta["clip"], out=z)
        if self.meta.get("column_weight"):
            z *= a["column_weight"]
        projection = self.meta["projection"]
        if projection == "pca":
            components = a["pca_components"]
            projected = z @ components.T
            projected -= a["pca_mean"].reshape(1, -1) @ components.T
            return projected
        if projection == "lda":
            return ((z - a["lda_xbar"]) @ a["lda_scalings"])[:, : self.meta["lda_components"]]
        return z

    def decision_function(self, x: Any) -> np.ndarray:
        """sklearn's decision values ``[n]`` (binary) or ``[n, classes]``; not for random_forest."""
        return self._decision(self.transform(x))

    def _decision(self, z: np.ndarray) -> np.ndarray:
        a = self.arrays
        if self.kind in ("linear_svm", "logreg", "ridge"):
            return numeric.linear_decision(z, a["coef"], a["intercept"])
        if self.kind == "svm":
            pairwise = numeric.svc_pairwise(
                z, a["support_vectors"], a["dual_coef"], a["intercept"], a["n_support"],
                self.meta["gamma"],
            )  # fmt: skip
            return numeric.svc_decision(pairwise, self.num_classes)
        raise ConfigError("a random_forest has no decision function; use predict_proba")

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities ``[n, classes]`` (rows sum to 1) of ``x`` ``[n, input_dim]``."""
        z = self.transform(x)
        a = self.arrays
        if self.kind == "random_forest":
            return numeric.forest_proba(
                z, a["tree_offsets"], a["children_left"], a["children_right"], a["feature"],
                a["threshold"], a["value"],
            )  # fmt: skip
        decision = self._decision(z)
        if self.kind == "logreg":
            return numeric.linear_proba(decision)
        if self.kind == "ridge":
            return numeric.temperature_proba(decision, float(a["calibration_temperature"][0]))
        return numeric.sigmoid_calibrated(decision, a["calibration_a"], a["calibration_b"])

    def predict(self, x: Any) -> np.ndarray:
        """Class indices ``[n]`` (int64): sklearn's ``predict`` of the same model.

        logreg and ridge: the sign/argmax of the decision values (for ridge also the argmax of
        its temperature softmax); the others: the argmax of ``predict_proba`` (for SVMs that is
        the calibrated probability, not libsvm's votes).
        """
        if self.kind in ("logreg", "ridge"):
            decision = self.decision_function(x)
            if decision.ndim == 1:
                return (decision > 0).astype(np.int64)
            return np.argmax(decision, axis=1).astype(np.int64)
        return np.argmax(self.predict_proba(x), axis=1).astype(np.int64)


# --- checking ------------------------------------------------------------------------------


def _fail(message: str) -> BundleError:
    return BundleError(f"classical model: {message}; the stored model is corrupt or incompatible")


def _check_meta(meta: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(meta, Mapping):
        raise _fail(f"meta must be a mapping, got {type(meta).__name__}")
    try:
        meta = json.loads(json.dumps(dict(meta), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise _fail(f"meta must be plain JSON ({error})") from None
    if meta.get("format") != FORMAT:
        raise _fail(f"meta format is {meta.get('format')!r}, expected {FORMAT!r}")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise BundleError(
            f"classical model format_version {version!r}; this sertk reads 1..{FORMAT_VERSION}: "
            "upgrade sertk"
        )
    if meta.get("kind") not in KINDS:
        raise _fail(f"kind {meta.get('kind')!r} is not one of {', '.join(KINDS)}")
    if meta.get("projection") not in PROJECTIONS:
        raise _fail(f"projection {meta.get('projection')!r} is not one of {', '.join(PROJECTIONS)}")
    for key in ("num_classes", "input_dim"):
        value = meta.get(key)
        if (
            not isinstance(value, int)
            or isinstance(value, bool)
            or value < (2 if key == "num_classes" else 1)
        ):
            raise _fail(f"meta {key} must be a positive integer, got {value!r}")
    if not isinstance(meta.get("params"), dict):
        raise _fail("meta params must be a mapping")
    if meta["kind"] == "svm" and not _positive(meta.get("gamma")):
        raise _fail(f"meta gamma must be a positive number, got {meta.get('gamma')!r}")
    if not isinstance(meta.get("column_weight", False), bool):
        raise _fail(f"meta column_weight must be true or false, got {meta['column_weight']!r}")
    if meta.get("clip") is not None and not _positive(meta["clip"]):
        raise _fail(f"meta clip must be a positive number or null, got {meta['clip']!r}")
    if meta["projection"] == "lda" and not _positive(meta.get("lda_components")):
        raise _fail(
            f"meta lda_components must be a positive integer, got {meta.get('lda_components')!r}"
        )
    return meta


def _positive(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and 0 < value < np.inf


def _check_arrays(arrays: Mapping[str, Any], meta: dict[str, Any]) -> dict[str, np.ndarray]:
    if not isinstance(arrays, Mapping):
        raise _fail(f"arrays must be a mapping, got {type(arrays).__name__}")
    names = (
        "scaler_mean",
        "scaler_scale",
        *(("column_weight",) if meta.get("column_weight") else ()),
        *_PROJECTION_ARRAYS[meta["projection"]],
        *_ARRAYS[meta["kind"]],
    )
    missing = [name for name in names if name not in arrays]
    unexpected = sorted(set(arrays) - set(names))
    if missing or unexpected:
        raise _fail(
            f"arrays missing {missing} / unexpected {unexpected} for a {meta['kind']} model"
        )
    out = {}
    for name in names:
        try:
            array = np.array(arrays[name])  # a copy; also accepts CPU torch tensors
        except (TypeError, ValueError, RuntimeError) as error:
            raise _fail(f"array {name!r} is not numeric ({error})") from None
        if name in _INT_ARRAYS:
            if array.dtype.kind not in "iu":
                raise _fail(f"array {name!r} must hold integers, got {array.dtype}")
            out[name] = array.astype(np.int64)
        else:
            if array.dtype.kind != "f" or not np.isfinite(array).all():
                raise _fail(f"array {name!r} must hold finite floats, got {array.dtype}")
            out[name] = array.astype(np.float64)
    _check_shapes(out, meta)
    return out


def _check_shapes(a: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
    dim, classes = meta["input_dim"], meta["num_classes"]
    expect = {"scaler_mean": (dim,), "scaler_scale": (dim,), "column_weight": (dim,)}
    width = dim
    if meta["projection"] == "pca":
        width = a["pca_components"].shape[0] if a["pca_components"].ndim == 2 else -1
        expect.update(pca_components=(width, dim), pca_mean=(dim,))
    elif meta["projection"] == "lda":
        columns = a["lda_scalings"].shape[1] if a["lda_scalings"].ndim == 2 else -1
        width = meta["lda_components"]
        expect.update(lda_scalings=(dim, max(columns, width)), lda_xbar=(dim,))
    if not (a["scaler_scale"] > 0).all():
        raise _fail("scaler_scale must be positive")
    rows = 1 if classes == 2 else classes
    kind = meta["kind"]
    if kind in ("linear_svm", "logreg", "ridge"):
        expect.update(coef=(rows, width), intercept=(rows,))
    if kind == "ridge":
        expect.update(calibration_temperature=(1,))
        if not (a["calibration_temperature"] > 0).all():
            raise _fail("calibration_temperature must be positive")
    if kind in ("linear_svm", "svm"):
        expect.update(calibration_a=(rows,), calibration_b=(rows,))
    if kind == "svm":
        n_sv = a["support_vectors"].shape[0] if a["support_vectors"].ndim == 2 else -1
        pairs = classes * (classes - 1) // 2
        expect.update(
            support_vectors=(n_sv, width), dual_coef=(classes - 1, n_sv), intercept=(pairs,),
            n_support=(classes,),
        )  # fmt: skip
        if a["n_support"].shape == (classes,) and (
            (a["n_support"] < 0).any() or a["n_support"].sum() != n_sv
        ):
            raise _fail(
                f"n_support {a['n_support'].tolist()} does not add up to {n_sv} support vectors"
            )
    for name, shape in expect.items():
        if name in a and a[name].shape != shape:
            raise _fail(f"array {name!r} has shape {a[name].shape}, expected {shape}")
    if kind == "random_forest":
        _check_forest(a, width, classes)


def _check_forest(a: dict[str, np.ndarray], width: int, classes: int) -> None:
    offsets = a["tree_offsets"]
    nodes = a["children_left"].shape[0]
    if offsets.ndim != 1 or offsets.shape[0] < 2 or offsets[0] != 0 or offsets[-1] != nodes:
        raise _fail("tree_offsets must run from 0 to the number of nodes")
    if (np.diff(offsets) < 1).any():
        raise _fail("tree_offsets must be strictly increasing (every tree has a node)")
    for name in ("children_left", "children_right", "feature", "threshold"):
        if a[name].shape != (nodes,):
            raise _fail(f"array {name!r} has shape {a[name].shape}, expected ({nodes},)")
    if a["value"].shape != (nodes, classes):
        raise _fail(f"array 'value' has shape {a['value'].shape}, expected ({nodes}, {classes})")
    left, right, feature = a["children_left"], a["children_right"], a["feature"]
    tree_end = np.repeat(offsets[1:], np.diff(offsets))
    index = np.arange(nodes)
    internal = left >= 0
    if (
        not np.array_equal(internal, right >= 0)
        or ((~internal) & ((left != -1) | (right != -1))).any()
    ):
        raise _fail("a node must have two children or none (-1 for both)")
    ok = (left > index) & (right > index) & (left < tree_end) & (right < tree_end)
    ok &= (feature >= 0) & (feature < width)
    if not ok[internal].all():
        raise _fail("tree nodes point outside their tree or at an unknown feature")
