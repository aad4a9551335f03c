"""Pure-numpy evaluation of fitted classical models (no scikit-learn needed).

Each function repeats, operation for operation, what scikit-learn (and libsvm inside it) computes,
so predictions equal scikit-learn's and probabilities agree to floating-point rounding (the order
of summation inside a dot product may differ, nothing else).
"""

from __future__ import annotations

import numpy as np

_CHUNK_ELEMENTS = 1 << 22  # bound on temporary [rows, columns, dim] blocks (32 MiB of float64)


def expit(z: np.ndarray) -> np.ndarray:
    """The logistic function ``1 / (1 + exp(-z))``, as ``scipy.special.expit`` computes it."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-z))


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row softmax of ``[n, classes]``, in ``sklearn.utils.extmath.softmax``'s steps."""
    out = scores - scores.max(axis=1, keepdims=True)
    np.exp(out, out=out)
    out /= out.sum(axis=1).reshape(-1, 1)
    return out


def linear_decision(z: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """``z @ coef.T + intercept``: ``[n]`` for a one-row ``coef`` (binary), else ``[n, classes]``"""
    scores = z @ coef.T + intercept
    return scores.reshape(-1) if scores.shape[1] == 1 else scores


def linear_proba(decision: np.ndarray) -> np.ndarray:
    """LogisticRegression probabilities: sigmoid of binary ``[n]``, softmax of ``[n, classes]``."""
    if decision.ndim == 1:
        positive = expit(decision)
        return np.stack([1 - positive, positive], axis=1)
    return softmax(decision)


def temperature_proba(decision: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(decision / temperature)`` ``[n, classes]``; a binary ``[n]`` decision ``d`` is
    read as the two scores ``[-d, d]`` (so ``p1 = expit(2 d / T)``)."""
    scores = np.stack([-decision, decision], axis=1) if decision.ndim == 1 else decision
    return softmax(scores / temperature)


def rbf_kernel(z: np.ndarray, vectors: np.ndarray, gamma: float) -> np.ndarray:
    """``exp(-gamma * ||z_i - v_j||^2)`` ``[n, n_vectors]`` from differences (as libsvm does)."""
    kernel = np.empty((z.shape[0], vectors.shape[0]), dtype=np.float64)
    rows = max(1, _CHUNK_ELEMENTS // max(1, vectors.size))
    for start in range(0, z.shape[0], rows):
        block = z[start : start + rows, None, :] - vectors[None, :, :]
        kernel[start : start + rows] = np.einsum("nvd,nvd->nv", block, block)
    return np.exp(-gamma * kernel)


def svc_pairwise(
    z: np.ndarray,
    vectors: np.ndarray,
    dual_coef: np.ndarray,
    intercept: np.ndarray,
    n_support: np.ndarray,
    gamma: float,
) -> np.ndarray:
    """libsvm's one-vs-one decision values ``[n, pairs]`` (pairs ``(i, j)``, ``i < j``, in order).

    ``dual_coef`` ``[classes - 1, n_sv]`` and ``intercept`` ``[pairs]`` are libsvm's own layout
    (sklearn's ``_dual_coef_`` and ``_intercept_``); a positive value votes for class ``i``.
    """
    kernel = rbf_kernel(z, vectors, gamma)
    starts = np.concatenate([[0], np.cumsum(n_support)])
    classes = n_support.shape[0]
    out = np.empty((z.shape[0], classes * (classes - 1) // 2), dtype=np.float64)
    pair = 0
    for i in range(classes):
        rows_i = slice(starts[i], starts[i + 1])
        for j in range(i + 1, classes):
            rows_j = slice(starts[j], starts[j + 1])
            total = kernel[:, rows_i] @ dual_coef[j - 1, rows_i]
            total += kernel[:, rows_j] @ dual_coef[i, rows_j]
            out[:, pair] = total + intercept[pair]  # intercept is libsvm's -rho
            pair += 1
    return out


def svc_decision(pairwise: np.ndarray, classes: int) -> np.ndarray:
    """sklearn's public ``SVC.decision_function``: ``[n]`` for two classes, else the ``ovr`` shape
    ``[n, classes]`` (votes plus a confidence term bounded by 1/3)."""
    if classes == 2:
        return -pairwise.reshape(-1)
    predictions, confidences = pairwise < 0, -pairwise
    n = pairwise.shape[0]
    votes = np.zeros((n, classes))
    sum_of_confidences = np.zeros((n, classes))
    pair = 0
    for i in range(classes):
        for j in range(i + 1, classes):
            sum_of_confidences[:, i] -= confidences[:, pair]
            sum_of_confidences[:, j] += confidences[:, pair]
            votes[predictions[:, pair] == 0, i] += 1
            votes[predictions[:, pair] == 1, j] += 1
            pair += 1
    transformed = sum_of_confidences / (3 * (np.abs(sum_of_confidences) + 1))
    return votes + transformed


def sigmoid_calibrated(decision: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Probabilities ``[n, classes]`` of ``CalibratedClassifierCV(method="sigmoid")``.

    ``decision``: ``[n]`` (binary: calibrates the positive class) or ``[n, classes]`` (one Platt
    sigmoid ``expit(-(a * d + b))`` per class, then normalised to sum to one).
    """
    columns = decision.reshape(-1, 1) if decision.ndim == 1 else decision
    n = columns.shape[0]
    binary = columns.shape[1] == 1
    classes = 2 if binary else columns.shape[1]
    proba = np.zeros((n, classes))
    for column in range(columns.shape[1]):
        target = column + 1 if binary else column
        proba[:, target] = expit(-(a[column] * columns[:, column] + b[column]))
    if binary:
        proba[:, 0] = 1.0 - proba[:, 1]
    else:
        denominator = np.sum(proba, axis=1)[:, np.newaxis]
        uniform = np.full_like(proba, 1 / classes)
        proba = np.divide(proba, denominator, out=uniform, where=denominator != 0)
    proba[(1.0 < proba) & (proba <= 1.0 + 1e-5)] = 1.0
    return proba


def forest_proba(
    z: np.ndarray,
    offsets: np.ndarray,
    left: np.ndarray,
    right: np.ndarray,
    feature: np.ndarray,
    threshold: np.ndarray,
    value: np.ndarray,
) -> np.ndarray:
    """Mean leaf class fractions ``[n, classes]`` over the trees of a flattened forest.

    Trees are stored one after another (tree ``t`` owns nodes ``offsets[t]:offsets[t + 1]``);
    ``left``/``right`` hold global node indices (-1 at leaves). Like sklearn, features are cast
    to float32 and a sample goes left when ``feature value <= threshold``. All trees are walked
    together, one level per step.
    """
    features = z.astype(np.float32)
    n_trees = offsets.shape[0] - 1
    total = np.zeros((z.shape[0], value.shape[1]), dtype=np.float64)
    rows_per_chunk = max(1, _CHUNK_ELEMENTS // 8 // max(1, n_trees))
    for start in range(0, z.shape[0], rows_per_chunk):
        block = features[start : start + rows_per_chunk]
        node = np.broadcast_to(offsets[:-1], (block.shape[0], n_trees)).copy()
        rows = np.arange(block.shape[0])[:, None]
        while True:
            internal = left[node] >= 0
            if not internal.any():
                break
            column = np.where(internal, feature[node], 0)
            go_left = block[rows, column] <= threshold[node]
            step = np.where(go_left, left[node], right[node])
            node = np.where(internal, step, node)
        leaves = value[node]  # [rows, trees, classes]
        for tree in range(n_trees):  # summed tree by tree, in sklearn's order
            total[start : start + block.shape[0]] += leaves[:, tree]
    total /= n_trees
    return total
