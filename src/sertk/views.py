"""Views of an utterance for test-time augmentation (and classical models' training copies).

A :class:`View` turns a preprocessed signal into another version of the same utterance:

- ``View(speed=f)``: speed-perturbed by ``f`` (resampled: tempo and pitch; ``features.tta_speeds``);
- ``View(crop=(start, length))``: the part from ``start`` to ``start + length``, both fractions of
  the utterance's length (``features.tta_crops``; ``train.augment.crops`` adds the same crops of
  each training utterance as training rows, so the model learns from the parts it will see).

A bundle lists its views in ``extra`` (``tta_speeds``, ``tta_crops``); every prediction path
scores the utterance and each view and combines them with :func:`combine_views` (for a softmax
over scores: the softmax of the mean scores). Numpy only; soxr for speed views.

>>> import numpy as np
>>> from sertk.audio import Preprocess
>>> View(crop=(0.15, 0.7))(np.arange(100.0), 16000, Preprocess(duration=None))[[0, -1]]
array([15., 84.])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np

from sertk.errors import BundleError

__all__ = ["CROPS_KEY", "TTA_KEY", "View", "bundle_views", "combine_views", "fit_length"]

# bundle.extra keys: test-time speed factors (features.tta_speeds) and crops (features.tta_crops)
TTA_KEY = "tta_speeds"
CROPS_KEY = "tta_crops"


@dataclasses.dataclass(frozen=True)
class View:
    """One version of a preprocessed utterance: at ``speed``, or its ``crop`` (start, length)."""

    speed: float = 1.0
    crop: tuple[float, float] | None = None

    def __call__(self, signal: np.ndarray, sampling_rate: int, preprocess: Any) -> np.ndarray:
        """This view of a preprocessed ``signal`` (``[samples]`` or ``[channels, samples]``),
        cropped/padded back to the preprocessing's fixed length if it has one."""
        if self.crop is not None:
            total = signal.shape[-1]
            start = min(int(round(self.crop[0] * total)), total - 1)
            stop = start + max(1, int(round(self.crop[1] * total)))
            return fit_length(signal[..., start:stop], preprocess)
        if self.speed == 1.0:
            return signal
        from sertk.augment import change_speed

        return fit_length(change_speed(signal, self.speed, sampling_rate=sampling_rate), preprocess)

    def __str__(self) -> str:
        if self.crop is not None:
            return f"crop {self.crop[0]:g}+{self.crop[1]:g}"
        return f"speed {self.speed:g}"


def fit_length(signal: np.ndarray, preprocess: Any) -> np.ndarray:
    """``signal`` cropped/padded to the preprocessing's fixed length, if it has one (centre for
    a random crop): for waveforms changed after preprocessing (augmentation, TTA)."""
    from sertk.audio import crop_or_pad

    if preprocess.num_samples is None:
        return signal
    policy = "center" if preprocess.crop == "random" else preprocess.crop
    return crop_or_pad(signal, preprocess.num_samples, policy=policy)


def combine_views(probabilities: Sequence[np.ndarray]) -> np.ndarray:
    """Test-time augmentation: the normalised geometric mean float32 ``[n, classes]`` of the
    probabilities of several versions of the same utterances. For a softmax over scores (ridge,
    logistic regression, a network's logits) it is the softmax of the mean scores."""
    logs = np.mean([np.log(np.maximum(p.astype(np.float64), 1e-30)) for p in probabilities], 0)
    logs -= logs.max(axis=1, keepdims=True)
    out = np.exp(logs)
    return (out / out.sum(axis=1, keepdims=True)).astype(np.float32)


def bundle_views(bundle: Any) -> tuple[View, ...]:
    """The bundle's test-time views (speeds, then crops; ``()`` for none); BundleError for bad
    values."""
    extra = bundle.extra or {}
    speeds = extra.get(TTA_KEY) or []
    if not (isinstance(speeds, list) and all(_number(v) and 0.5 <= v <= 2 for v in speeds)):
        raise BundleError(
            f"{bundle.path}: {TTA_KEY} must be a list of speed factors in [0.5, 2], got {speeds!r}"
        )
    crops = extra.get(CROPS_KEY) or []
    if not (isinstance(crops, list) and all(_crop_ok(c) for c in crops)):
        raise BundleError(
            f"{bundle.path}: {CROPS_KEY} must be a list of [start, length] fractions with "
            f"0 <= start, 0 < length and start + length <= 1, got {crops!r}"
        )
    return (
        *(View(speed=float(v)) for v in speeds),
        *(View(crop=(float(c[0]), float(c[1]))) for c in crops),
    )


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _crop_ok(crop: Any) -> bool:
    if not (isinstance(crop, list | tuple) and len(crop) == 2 and all(map(_number, crop))):
        return False
    start, length = crop
    return 0 <= start and 0 < length and start + length <= 1 + 1e-9
