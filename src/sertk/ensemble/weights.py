"""Member weights of an ensemble fitted on labelled validation data (numpy only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from sertk.errors import ConfigError


def fit_weights(
    probabilities: Sequence[np.ndarray],
    truth: Sequence[int],
    *,
    balanced: bool = True,
    iterations: int = 1000,
    tolerance: float = 1e-10,
) -> np.ndarray:
    """Member weights ``[members]`` (>= 0, sum 1) maximising the likelihood of ``truth`` under
    the weighted mean of the members' probabilities ``[n, classes]`` (same rows and columns).

    The mixture log-likelihood is concave in the weights; it is maximised by EM (each step
    never lowers it). ``balanced``: each class counts equally (as UA does), so a frequent class
    does not decide the weights alone.
    """
    members = [np.asarray(p, dtype=np.float64) for p in probabilities]
    y = np.asarray(truth, dtype=np.int64)
    shapes = {p.shape for p in members}
    if len(shapes) != 1 or len(members[0].shape) != 2 or members[0].shape[0] != y.shape[0]:
        raise ConfigError(
            f"fit_weights needs member probabilities [n, classes] for the same n={y.shape[0]} "
            f"labelled rows, got shapes {[p.shape for p in members]}"
        )
    if len(members) < 2 or y.shape[0] == 0:
        raise ConfigError("fit_weights needs at least two members and one labelled row")
    stacked = np.stack(members)
    if y.min() < 0 or y.max() >= stacked.shape[2]:
        raise ConfigError(f"truth holds class indices outside 0..{stacked.shape[2] - 1}")
    likelihood = np.maximum(stacked[:, np.arange(y.shape[0]), y], 1e-12)  # [members, n]
    counts = np.bincount(y)
    rows = 1.0 / counts[y] if balanced else np.ones(y.shape[0])
    rows /= rows.sum()
    weights = np.full(stacked.shape[0], 1.0 / stacked.shape[0])
    for _ in range(iterations):
        share = weights[:, None] * likelihood
        share /= share.sum(axis=0, keepdims=True)
        updated = share @ rows
        if np.abs(updated - weights).max() < tolerance:
            weights = updated
            break
        weights = updated
    return weights / weights.sum()
