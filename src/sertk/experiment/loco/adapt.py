"""Per-unit feature statistics for the speaker-adapted protocol (numpy only).

A *unit* is whatever shares one set of statistics: a speaker, or (for URDU, whose speaker ids
are approximate) the whole corpus. Its statistics come from its own unlabelled utterance vectors
(``[n, dim]``, one row per utterance), optionally robust and optionally shrunk towards the
training population's statistics:

- ``mean_std``: mean and standard deviation (the toolkit's speaker protocol);
- ``median_mad``: median and ``1.4826 * MAD`` (a few extreme utterances move neither);
- ``mean``: the mean only; the scale is the population's (so nothing is divided by the spread of
  a unit whose audio is all one emotion).

``shrink = k`` blends a unit of ``n`` utterances with the population: centre
``(n * own + k * population) / (n + k)``, and the variance the same way. ``k = 0`` uses the
unit's own statistics alone; a large ``k`` approaches the global protocol.

>>> x = np.array([[0.0, 1.0], [2.0, 3.0]])
>>> stats = unit_statistics(x, ["a", "a"], statistic="mean_std")
>>> stats["a"]["mean"].tolist(), stats["a"]["std"].tolist()
([1.0, 2.0], [1.0, 1.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from sertk.errors import SertkError

STD_FLOOR = 1e-5  # as sertk.normalization.fit_normalization
MAD_SCALE = 1.4826  # MAD of a normal distribution -> its standard deviation

Stats = dict[str, np.ndarray]


def centre_and_scale(x: np.ndarray, statistic: str) -> tuple[np.ndarray, np.ndarray]:
    """``(centre [dim], scale [dim])`` of the rows of ``x`` ``[n, dim]`` (scale unfloored;
    ``mean``: scale NaN, meaning "the population's")."""
    if statistic == "median_mad":
        centre = np.median(x, axis=0)
        return centre, MAD_SCALE * np.median(np.abs(x - centre), axis=0)
    centre = x.mean(axis=0)
    if statistic == "mean":
        return centre, np.full(x.shape[1], np.nan)
    if statistic != "mean_std":
        raise SertkError(f"unknown statistic {statistic!r}; use mean_std, median_mad or mean")
    return centre, x.std(axis=0)


def population_statistics(x: np.ndarray) -> Stats:
    """Mean and std ``[dim]`` over the rows of ``x`` ``[n, dim]`` (std floored)."""
    return {"mean": x.mean(axis=0), "std": np.maximum(x.std(axis=0), STD_FLOOR)}


def unit_statistics(
    x: np.ndarray,
    units: Sequence[str],
    *,
    statistic: str = "mean_std",
    shrink: float = 0.0,
    population: Mapping[str, np.ndarray] | None = None,
) -> dict[str, Stats]:
    """Unit -> ``{"mean", "std"}`` ``[dim]`` from the rows of ``x`` ``[n, dim]`` of that unit.

    ``population`` (mean and std ``[dim]``) is needed for ``shrink > 0`` and for ``mean``
    (whose scale it gives); without it ``mean`` uses scale 1.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] != len(units):
        raise SertkError(f"need one unit per row of x {x.shape}, got {len(units)} units")
    if shrink > 0 and population is None:
        raise SertkError("shrink > 0 needs the population statistics")
    rows: dict[str, list[int]] = {}
    for index, unit in enumerate(units):
        rows.setdefault(unit, []).append(index)
    return {unit: _blend(x[index], statistic, shrink, population) for unit, index in rows.items()}


def _blend(x: np.ndarray, statistic: str, shrink: float, population) -> Stats:
    centre, scale = centre_and_scale(x, statistic)
    if statistic == "mean":  # the population's scale
        scale = np.ones_like(centre) if population is None else np.asarray(population["std"])
    variance = scale**2
    if shrink > 0:
        n = x.shape[0]
        pop_var = np.asarray(population["std"], dtype=np.float64) ** 2
        centre = (n * centre + shrink * np.asarray(population["mean"])) / (n + shrink)
        variance = (n * variance + shrink * pop_var) / (n + shrink)
    return {"mean": centre, "std": np.maximum(np.sqrt(variance), STD_FLOOR)}


def normalize_units(
    x: np.ndarray, units: Sequence[str], stats: Mapping[str, Mapping[str, np.ndarray]]
) -> np.ndarray:
    """Each row of ``x`` ``[n, dim]`` z-normalised with its unit's statistics."""
    x = np.asarray(x, dtype=np.float64)
    mean = np.stack([stats[unit]["mean"] for unit in units])
    std = np.stack([stats[unit]["std"] for unit in units])
    return (x - mean) / std


def one_sided_subsets(
    labels: Sequence[str], units: Sequence[str], *, share: float, seed: int = 0
) -> list[tuple[str, str, np.ndarray]]:
    """Subsets of each unit's utterances dominated by one emotion: ``(unit, emotion, rows)``.

    For every unit and every emotion ``e`` it has: all its ``e`` utterances plus, when
    ``share < 1``, as many of its other utterances (drawn with ``seed``) as make ``e`` a
    ``share`` of the subset (fewer ``e`` utterances when the others run out; none for a unit
    with no other emotion). Rows index
    ``labels``; labels only choose the subsets, the statistics never see them.
    """
    rng = np.random.default_rng(seed)
    labels, units = np.asarray(labels), np.asarray(units)
    subsets = []
    for unit in dict.fromkeys(units.tolist()):
        mine = np.flatnonzero(units == unit)
        for emotion in dict.fromkeys(labels[mine].tolist()):
            main = mine[labels[mine] == emotion]
            rest = mine[labels[mine] != emotion]
            if share >= 1.0:
                subsets.append((unit, emotion, main))
                continue
            if rest.size == 0:  # nothing to mix in: the unit has this emotion only
                continue
            wanted = int(round(main.size * (1 - share) / share))
            if wanted > rest.size:  # too few others: fewer of the main emotion instead
                keep = max(1, int(round(rest.size * share / (1 - share))))
                main = rng.choice(main, size=min(keep, main.size), replace=False)
                wanted = rest.size
            others = rng.choice(rest, size=wanted, replace=False) if wanted else rest[:0]
            subsets.append((unit, emotion, np.sort(np.concatenate([main, others]))))
    return subsets
