"""Padding feature arrays into torch batches: shared by the training loop and the torch scorer.

``collate`` turns ``[frames, dim]`` (or ``[layers, frames, dim]``) arrays of one extractor into
``features [batch, frames, dim]``, ``lengths [batch]`` and ``labels [batch]`` tensors, the input
contract of every ``sertk.models`` head.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from sertk.errors import FeatureError


def collate(batch: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a list of ``(features, label)`` (or bare features) to one batch.

    Returns ``features`` float32 ``[batch, frames, dim]`` (or ``[batch, layers, frames, dim]``),
    ``lengths`` int64 ``[batch]`` and ``labels`` int64 ``[batch]`` (-1 for bare features).
    """
    arrays, targets = [], []
    for item in batch:
        features, label = item if isinstance(item, (tuple, list)) else (item, -1)
        arrays.append(np.asarray(features, dtype=np.float32))
        targets.append(int(label))
    first = arrays[0]
    if first.ndim not in (2, 3):
        raise FeatureError(
            f"features must be [frames, dim] or [layers, frames, dim]; got shape {first.shape}"
        )
    for array in arrays:
        if (
            array.ndim != first.ndim
            or array.shape[:-2] + array.shape[-1:] != first.shape[:-2] + first.shape[-1:]
        ):
            raise FeatureError(
                f"features in one batch differ in shape beyond frames: {first.shape} vs "
                f"{array.shape}; extract all utterances with the same extractor"
            )
        if array.shape[-2] == 0:
            raise FeatureError("an utterance has 0 feature frames; drop it before training")
    lengths = [array.shape[-2] for array in arrays]
    padded = np.zeros((len(arrays), *first.shape[:-2], max(lengths), first.shape[-1]), np.float32)
    for i, array in enumerate(arrays):
        padded[i][..., : array.shape[-2], :] = array
    return (
        torch.from_numpy(padded),
        torch.tensor(lengths, dtype=torch.int64),
        torch.tensor(targets, dtype=torch.int64),
    )


def batches(dataset: Sequence[Any], batch_size: int):
    for start in range(0, len(dataset), batch_size):
        yield collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])
