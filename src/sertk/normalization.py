"""Feature normalisation statistics in numpy alone (shared by training, the runner and inference).

``fit_normalization`` gives per-dimension ``mean``/``std`` over all frames of a set of feature
arrays; ``speaker_statistics`` fits them per speaker, and ``normalize_per_speaker`` applies them
(the speaker-adapted protocol). Nothing here imports torch, so a classical bundle predicts
without it.

>>> stats = fit_normalization([np.ones((3, 2)), np.zeros((1, 2))])
>>> stats["mean"].tolist()
[0.75, 0.75]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sertk.errors import SertkError


def fit_normalization(dataset: Sequence[Any]) -> dict[str, np.ndarray]:
    """Per-dimension ``mean``/``std`` over all frames of a training set, float32 ``[dim]``
    (``[layers, dim]`` for layered features); ``std`` is floored at 1e-5.

    Items are arrays ``[frames, dim]`` (or ``[layers, frames, dim]``) or ``(features, label)``.
    """
    total = total_sq = None
    frames = 0
    for item in dataset:
        features = item[0] if isinstance(item, (tuple, list)) else item
        array = np.asarray(features, dtype=np.float64)
        total = array.sum(axis=-2) + (0.0 if total is None else total)
        total_sq = (array**2).sum(axis=-2) + (0.0 if total_sq is None else total_sq)
        frames += array.shape[-2]
    if not frames:
        raise SertkError("cannot fit normalisation statistics on an empty dataset")
    mean = total / frames
    std = np.sqrt(np.maximum(total_sq / frames - mean**2, 0.0))
    return {"mean": mean.astype(np.float32), "std": np.maximum(std, 1e-5).astype(np.float32)}


def apply_statistics(features: np.ndarray, stats: Mapping[str, np.ndarray]) -> np.ndarray:
    """``(features - mean) / std`` as float32; ``features`` ``[frames, dim]`` or
    ``[layers, frames, dim]``, statistics ``[dim]`` or ``[layers, dim]``."""
    mean, std = stats["mean"][..., None, :], stats["std"][..., None, :]
    return ((np.asarray(features, np.float32) - mean) / std).astype(np.float32)


def speaker_statistics(
    features: Sequence[np.ndarray], speakers: Sequence[str]
) -> dict[str, dict[str, np.ndarray]]:
    """Speaker id -> ``fit_normalization`` of all of that speaker's items (labels unused)."""
    if len(features) != len(speakers):
        raise SertkError(
            f"got {len(features)} feature arrays but {len(speakers)} speakers; give one each"
        )
    by_speaker: dict[str, list[int]] = {}
    for index, speaker in enumerate(speakers):
        by_speaker.setdefault(speaker, []).append(index)
    return {
        speaker: fit_normalization([features[i] for i in indices])
        for speaker, indices in by_speaker.items()
    }


def normalize_per_speaker(
    features: Sequence[np.ndarray], speakers: Sequence[str]
) -> list[np.ndarray]:
    """Z-normalise each item with the mean/std of all frames of its speaker's items.

    ``features``: arrays ``[frames, dim]`` (or ``[layers, frames, dim]``, statistics per layer);
    ``speakers``: one speaker id per item. Returns new float32 arrays in the same order.
    """
    stats = speaker_statistics(features, speakers)
    return [apply_statistics(x, stats[s]) for x, s in zip(features, speakers, strict=True)]
