"""Training data plumbing: class weights, loaders, prediction (padding: ``sertk.models.batching``).

A dataset is any sequence of ``(features, label)``; one that has ``set_epoch(epoch)`` is told
the epoch before each pass over it (on-the-fly augmentation seeds itself from it).
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from sertk.config import TrainConfig
from sertk.errors import CorpusError, SertkError
from sertk.models.batching import batches, collate


def class_weights(labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Balanced weights ``n / (num_classes * count_c)``, float32 ``[num_classes]``.

    A class with no training example gets weight 0 (no sample carries it anyway).
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    weights = np.zeros(num_classes, dtype=np.float64)
    present = counts > 0
    weights[present] = counts.sum() / (num_classes * counts[present])
    return weights.astype(np.float32)


def predict(
    model: nn.Module, dataset: Sequence[Any], *, batch_size: int = 32, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Class indices int64 ``[n]`` and softmax probabilities float32 ``[n, classes]``.

    Items are ``(features, label)`` or bare features; the model runs in eval mode and its
    previous mode is restored afterwards. Uses no random numbers.
    """
    was_training = model.training
    model.eval()
    probabilities = []
    try:
        with torch.no_grad():
            for features, lengths, _ in batches(dataset, batch_size):
                logits = model(features.to(device), lengths.to(device))
                probabilities.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    finally:
        model.train(was_training)
    if not probabilities:
        raise SertkError("predict got an empty dataset")
    probs = np.concatenate(probabilities).astype(np.float32)
    return probs.argmax(axis=1).astype(np.int64), probs


def dataset_labels(dataset: Sequence[Any], num_classes: int, name: str) -> list[int]:
    if len(dataset) == 0:
        raise CorpusError(f"{name} is empty; every fold needs utterances in train and valid")
    labels = getattr(dataset, "labels", None)
    if labels is None or len(labels) != len(dataset):
        labels = [dataset[i][1] for i in range(len(dataset))]
    try:
        labels = [operator.index(label) for label in labels]
    except TypeError:
        raise CorpusError(
            f"{name} labels must be class indices (int); got e.g. {labels[0]!r}; "
            "encode them with LabelMap.encode"
        ) from None
    bad = [label for label in labels if not 0 <= label < num_classes]
    if bad:
        raise CorpusError(
            f"{name} has class index {bad[0]}, outside 0..{num_classes - 1} for {num_classes} "
            "labels; encode labels with the experiment's LabelMap"
        )
    return labels


def train_loader(
    dataset,
    labels: list[int],
    config: TrainConfig,
    generator: torch.Generator,
    *,
    shard: tuple[int, int] | None = None,
):
    """Shuffled (or class-balanced) batches of ``config.batch_size``.

    ``shard=(rank, world_size)`` (data-parallel training): every rank draws the same global
    batches from ``generator`` (seeded alike) and loads its share of each, items ``rank``,
    ``rank + world_size``, ...; a rank left without an item in a short last batch gets one with
    label :data:`PAD` (ignored by the loss), so every rank takes the same number of steps.
    """
    sampler = None
    if config.balanced_sampling:
        counts = np.bincount(labels)
        weights = torch.tensor([1.0 / counts[label] for label in labels], dtype=torch.double)
        sampler = torch.utils.data.WeightedRandomSampler(
            weights, num_samples=len(labels), replacement=True, generator=generator
        )
    if shard is not None:  # the batches DataLoader(shuffle=True, sampler=...) would draw, shared
        order = sampler or torch.utils.data.RandomSampler(dataset, generator=generator)
        batches = torch.utils.data.BatchSampler(order, config.batch_size, drop_last=False)
        return torch.utils.data.DataLoader(
            _Padded(dataset),
            batch_sampler=_Shards(batches, *shard),
            collate_fn=collate,
            num_workers=config.num_workers,
            generator=generator,
        )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        collate_fn=collate,
        num_workers=config.num_workers,
        generator=generator,
    )


PAD = -100  # label of a padding item: nn.functional.cross_entropy's default ignore_index


class _Shards:
    """Rank ``rank``'s share of each global batch (see :func:`train_loader`)."""

    def __init__(self, batches, rank: int, world_size: int) -> None:
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self):
        for batch in self.batches:
            share = batch[self.rank :: self.world_size]
            yield share if share else [-1 - batch[0]]  # negative: a padding copy of item 0


class _Padded:
    """A dataset view where index ``-1 - i`` is item ``i`` with label :data:`PAD`."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int):
        if index >= 0:
            return self.dataset[index]
        features, _ = self.dataset[-1 - index]
        return features, PAD

    def __getattr__(self, name: str):  # set_epoch, labels, ... of the wrapped dataset
        if name.startswith("__") or name == "dataset":  # unpickling: no recursion
            raise AttributeError(name)
        return getattr(self.dataset, name)
