"""Training and validation datasets of the runner, with on-the-fly augmentation for training.

- :class:`FeatureSet`: cached features, normalised on the fly; for training it may carry an
  ``Augmenter`` that masks features (SpecAugment-style) per ``(seed, epoch, utterance)``.
- :class:`WaveformSet`: keeps each training utterance's preprocessed waveform, augments it
  (noise, gain, speed, stretch, pitch) and re-extracts its features every epoch (cheap
  extractors only; the runner checks), then normalises and optionally masks as above.

The augmentation key of an item is the utterance's position in the run's corpus list, not its
position in this dataset, so an utterance draws the same augmentation in every fold. Validation
and test sets are built without an augmenter: nothing else ever augments them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sertk.audio import crop_or_pad
from sertk.features.normalization import apply_statistics


class FeatureSet:
    """Items ``(features, class index)``: ``features[i]`` normalised with ``stats``, then (with
    an ``augmenter`` whose masking is on) masked per ``(epoch, keys[i])``.

    ``features``: arrays ``[frames, dim]`` (or ``[layers, frames, dim]``); ``stats``: ``mean``
    and ``std`` ``[dim]`` (or ``[layers, dim]``). ``labels`` lets the trainer read the classes
    without touching the features.
    """

    def __init__(
        self,
        features: Sequence[np.ndarray],
        labels: Sequence[int],
        stats: Mapping[str, np.ndarray],
        *,
        augmenter: Any = None,
        keys: Sequence[int] | None = None,
    ) -> None:
        self.features = features
        self.labels = list(labels)
        self.stats = stats
        self.augmenter = augmenter if _masks(augmenter) else None
        self.keys = list(range(len(features))) if keys is None else list(keys)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Called by the training loop before each pass: augmentation draws for this epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.features)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        return self._finish(self.features[index], index), self.labels[index]

    def _finish(self, features: np.ndarray, index: int) -> np.ndarray:
        array = apply_statistics(features, self.stats)
        if self.augmenter is not None:
            array = self.augmenter.features(array, self.epoch, self.keys[index])
        return array


class WaveformSet(FeatureSet):
    """Training items whose features are re-extracted every epoch from an augmented waveform.

    ``signals``: preprocessed float32 ``[samples]`` at ``sampling_rate``; after augmentation a
    signal is cropped or padded back to ``num_samples`` (when set, with the crop policy
    ``crop``) as at inference, passed through ``extractor``, normalised per speaker with
    ``speaker_stats[i]`` (the speaker-adapted protocol, else None), then globally.
    """

    def __init__(
        self,
        signals: Sequence[np.ndarray],
        labels: Sequence[int],
        stats: Mapping[str, np.ndarray],
        *,
        augmenter: Any,
        keys: Sequence[int],
        extractor: Any,
        sampling_rate: int,
        num_samples: int | None,
        crop: str,
        speaker_stats: Sequence[Mapping[str, np.ndarray] | None],
    ) -> None:
        super().__init__(signals, labels, stats, augmenter=augmenter, keys=keys)
        self.waveform_augmenter = augmenter
        self.extractor = extractor
        self.sampling_rate = sampling_rate
        self.num_samples = num_samples
        self.crop = "center" if crop == "random" else crop
        self.speaker_stats = list(speaker_stats)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        key = self.keys[index]
        signal = self.waveform_augmenter.waveform(
            self.features[index], self.sampling_rate, self.epoch, key
        )
        if self.num_samples is not None:
            signal = crop_or_pad(signal, self.num_samples, policy=self.crop)
        features = self.extractor(signal, self.sampling_rate)
        if self.speaker_stats[index] is not None:
            features = apply_statistics(features, self.speaker_stats[index])
        return self._finish(features, index), self.labels[index]


def _masks(augmenter: Any) -> bool:
    return augmenter is not None and augmenter.config.features_enabled
