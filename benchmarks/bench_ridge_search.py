"""The ridge inner-CV search: one Gram decomposition per split (``RidgePath``) vs a refit per C.

Times ``sertk.classical.search._search`` for ``kind="ridge"`` on the shape of the fusion recipes
(EmoDB: ~1400 training rows incl. speed copies, 9171 feature columns in two blocks, 7 classes,
4 speaker-grouped inner splits, 5 values of C x 3 block weights) against the same search with
the fast path switched off (scikit-learn refits every candidate), checks that both choose the
same candidate with the same fold scores, and prints the ratio. Synthetic Gaussian features.
Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_ridge_search.py [--rows 1400 --dim 9171]``.
Timings vary on shared machines; compare the ratio printed by one run.
"""

from __future__ import annotations

import argparse
import time
from unittest import mock

import numpy as np

from sertk.classical import search as fitting
from sertk.classical._params import expand_search, resolve_params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1400)
    parser.add_argument("--dim", type=int, default=9171)
    parser.add_argument("--classes", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    y = rng.integers(0, args.classes, args.rows)
    x = rng.standard_normal((args.rows, args.dim))
    x[:, : args.classes] += 1.5 * np.eye(args.classes)[y]
    groups = rng.integers(0, 8, args.rows)
    split = min(2798, args.dim // 3)
    params = resolve_params("ridge", {"clip": 10.0, "blocks": [split, args.dim - split]})
    grid = expand_search(
        "ridge",
        {"C": [0.1, 0.3, 1.0, 3.0, 10.0], "block_weights": [[1, 0.25], [1, 0.5], [1, 1]]},
    )
    splits, _ = fitting.grouped_splits(groups, 4, required=True)
    print(f"{args.rows} rows x {args.dim} columns, {len(grid)} candidates x {len(splits)} splits")

    start = time.perf_counter()
    fast_best, fast = fitting._search(x, y, "ridge", params, grid, splits, 0)
    fast_s = time.perf_counter() - start
    with mock.patch.object(fitting, "_ridge_path_applies", lambda kind, params: False):
        start = time.perf_counter()
        slow_best, slow = fitting._search(x, y, "ridge", params, grid, splits, 0)
        slow_s = time.perf_counter() - start
    same = fast_best == slow_best and all(
        np.allclose(a["fold_ua"], b["fold_ua"])
        for a, b in zip(fast["candidates"], slow["candidates"], strict=True)
    )
    print(f"refit per candidate (scikit-learn): {slow_s:7.1f} s")
    print(f"one decomposition per split:        {fast_s:7.1f} s")
    print(f"speed-up: {slow_s / fast_s:.1f}x; same choice and fold scores: {same}")


if __name__ == "__main__":
    main()
