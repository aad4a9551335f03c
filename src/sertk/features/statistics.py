"""Utterance statistics of frame-level features, shared by ``Functionals`` and ``EmotionFunctionals``.

:func:`masked_statistics` gives ``STATISTICS`` per column over the frames its mask keeps (F0 over
voiced frames only). Columns that keep every frame (all but F0 and its delta) are computed in one
vectorised pass with one sort for all their percentiles; only the masked ones are handled one by
one. The percentiles repeat numpy's default ("linear") method on sorted columns, so they equal
``np.percentile`` exactly; skewness and kurtosis use products of the centred values rather than
``**3`` / ``**4`` (numpy's ``pow`` is ~100x slower) and so may differ from the powers in the last bit.

>>> import numpy as np
>>> values = np.arange(12.0).reshape(6, 2)
>>> masked_statistics(values, np.ones_like(values, dtype=bool))[STATISTICS.index("p50")]
array([5., 6.])
"""

from __future__ import annotations

import numpy as np

_EPS = 1e-10
STATISTICS = ("mean", "std", "p1", "p25", "p50", "p75", "p99", "range", "slope", "skew", "kurtosis")
PERCENTILES = (1, 25, 50, 75, 99)


def sorted_percentiles(ordered: np.ndarray, q: tuple[float, ...] = PERCENTILES) -> np.ndarray:
    """Percentiles ``q`` ``[len(q), columns]`` of ``ordered`` ``[rows > 0, columns]``, each column
    already sorted ascending; equals ``np.percentile(values, q, axis=0)`` (same arithmetic)."""
    n = len(ordered)
    virtual = (n - 1) * np.true_divide(q, 100)
    below = np.floor(virtual)
    gamma = (virtual - below)[:, None]
    lower = np.minimum(below, n - 1).astype(np.intp)  # at or past the end: the last value
    upper = np.minimum(below + 1, n - 1).astype(np.intp)
    a, b = ordered[lower], ordered[upper]
    diff = b - a
    out = a + diff * gamma
    high = gamma[:, 0] >= 0.5  # numpy interpolates from the upper neighbour there
    out[high] = b[high] - diff[high] * (1 - gamma[high])
    return out


def column_statistics(values: np.ndarray, times: np.ndarray) -> np.ndarray:
    """``STATISTICS`` ``[11, columns]`` of every column of ``values`` ``[rows > 0, columns >= 2]``
    (C-contiguous, so numpy sums each column row by row, in the order of the masked formulas);
    ``times`` ``[rows]`` are the frame indices the slope is taken over."""
    n = len(values)
    mean = values.sum(axis=0) / n
    centred = values - mean
    square = centred * centred
    std = np.sqrt(square.sum(axis=0) / n)
    spread = std > 1e-8
    scale = np.where(spread, std, 1.0)
    skew = np.where(spread, (square * centred).sum(axis=0) / n / scale**3, 0.0)
    square *= square
    kurt = np.where(spread, square.sum(axis=0) / n / scale**4 - 3.0, 0.0)
    pct = sorted_percentiles(np.sort(values, axis=0))
    t = times - times.sum() / n
    t_var = np.cumsum(t * t)[-1]  # summed in order, as the per-column sums above
    centred *= t[:, None]
    slope = centred.sum(axis=0) / max(t_var, _EPS) if t_var > 0 else np.zeros_like(mean)
    return np.stack([mean, std, *pct, pct[4] - pct[0], slope, skew, kurt])


def masked_statistics(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """``STATISTICS`` ``[11, dim]`` of ``values`` ``[frames, dim]`` over the frames where ``mask``
    (same shape, bool) is True; a column with no such frame gets zeros. The slope is per frame
    index of the original ``values`` (masked frames leave gaps in time, not shifts).

    Columns sharing a mask (every frame; the voiced frames for F0 and its delta) are computed
    together as one C-contiguous block: a lone column is doubled, since numpy would sum a single
    column pairwise instead of row by row."""
    values = np.asarray(values, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    out = np.zeros((len(STATISTICS), values.shape[1]))
    whole = mask.all(axis=0)
    groups = {None: np.flatnonzero(whole)} if whole.any() else {}
    for column in np.flatnonzero(~whole):  # few: F0 and its delta
        groups.setdefault(mask[:, column].tobytes(), []).append(column)
    for key, columns in groups.items():
        rows = np.arange(len(values)) if key is None else np.flatnonzero(mask[:, columns[0]])
        if rows.size == 0:
            continue
        block = np.asarray(columns) if len(columns) > 1 else np.repeat(columns, 2)
        if key is None:
            block_values = values.take(block, axis=1)
        else:
            block_values = values[np.ix_(rows, block)]
        stats = column_statistics(block_values, rows.astype(np.float64))
        out[:, columns] = stats[:, : len(columns)]
    return out
