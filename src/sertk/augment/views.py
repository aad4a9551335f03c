"""Views of an utterance for test-time augmentation (and classical models' training copies).

A :class:`View` turns a preprocessed signal into another version of the same utterance:

- ``View(speed=f)``: speed-perturbed by ``f`` (resampled: tempo and pitch; ``features.tta_speeds``);
- ``View(crop=(start, length))``: the part from ``start`` to ``start + length``, both fractions of
  the utterance's length (``features.tta_crops``; ``train.augment.crops`` adds the same crops of
  each training utterance as training rows, so the model learns from the parts it will see).

A bundle lists its views in its inference contract (``bundle.json`` ``views``); every scorer
scores the utterance and each view and combines them with :func:`combine_views` (for a softmax
over scores: the softmax of the mean scores). Numpy only; soxr for speed views.

>>> import numpy as np
>>> from sertk.audio import Preprocess
>>> View(crop=(0.15, 0.7))(np.arange(100.0), 16000, Preprocess(duration=None))[[0, -1]]
array([15., 84.])
>>> View.from_dict(View(speed=0.9).to_dict())
View(speed=0.9, crop=None)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sertk.audio import Preprocess, crop_or_pad
from sertk.augment.transforms import change_speed
from sertk.errors import ConfigError

__all__ = ["View", "combine_views", "fit_length"]


@dataclasses.dataclass(frozen=True)
class View:
    """One version of a preprocessed utterance: at ``speed``, or its ``crop`` (start, length).

    ConfigError for a speed outside [0.5, 2] or a crop that is not ``0 <= start``,
    ``0 < length``, ``start + length <= 1``.
    """

    speed: float = 1.0
    crop: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        if not (_number(self.speed) and 0.5 <= self.speed <= 2):
            raise ConfigError(f"a view's speed must be a number in [0.5, 2], got {self.speed!r}")
        object.__setattr__(self, "speed", float(self.speed))
        if self.crop is not None:
            if not _crop_ok(self.crop):
                raise ConfigError(
                    f"a view's crop is [start, length] with 0 <= start, 0 < length and "
                    f"start + length <= 1 (fractions of the utterance), got {self.crop!r}"
                )
            object.__setattr__(self, "crop", (float(self.crop[0]), float(self.crop[1])))

    def __call__(
        self, signal: np.ndarray, sampling_rate: int, preprocess: Preprocess
    ) -> np.ndarray:
        """This view of a preprocessed ``signal`` (``[samples]`` or ``[channels, samples]``),
        cropped/padded back to the preprocessing's fixed length if it has one."""
        if self.crop is not None:
            total = signal.shape[-1]
            start = min(int(round(self.crop[0] * total)), total - 1)
            stop = start + max(1, int(round(self.crop[1] * total)))
            return fit_length(signal[..., start:stop], preprocess)
        if self.speed == 1.0:
            return signal
        return fit_length(change_speed(signal, self.speed, sampling_rate=sampling_rate), preprocess)

    def __str__(self) -> str:
        if self.crop is not None:
            return f"crop {self.crop[0]:g}+{self.crop[1]:g}"
        return f"speed {self.speed:g}"

    def to_dict(self) -> dict[str, Any]:
        """``{"speed": f}`` or ``{"crop": [start, length]}`` (as ``bundle.json`` stores it)."""
        return {"crop": list(self.crop)} if self.crop is not None else {"speed": self.speed}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> View:
        """Rebuild from :meth:`to_dict`; ConfigError for anything else."""
        if not isinstance(data, Mapping) or len(data) != 1 or set(data) - {"speed", "crop"}:
            raise ConfigError(
                f"a view is {{'speed': f}} or {{'crop': [start, length]}}, got {data!r}"
            )
        if "crop" in data:
            crop = data["crop"]
            if not isinstance(crop, list | tuple) or len(crop) != 2:
                raise ConfigError(f"a view's crop is [start, length], got {crop!r}")
            return cls(crop=(crop[0], crop[1]))
        return cls(speed=data["speed"])

    @classmethod
    def from_lists(
        cls, speeds: Sequence[float] = (), crops: Sequence[Sequence[float]] = ()
    ) -> tuple[View, ...]:
        """The views of ``features.tta_speeds`` and ``features.tta_crops``: speeds, then crops."""
        return (
            *(cls(speed=s) for s in speeds),
            *(cls(crop=(c[0], c[1])) for c in crops),
        )


def fit_length(signal: np.ndarray, preprocess: Preprocess) -> np.ndarray:
    """``signal`` cropped/padded to the preprocessing's fixed length, if it has one (centre for
    a random crop): for waveforms changed after preprocessing (augmentation, views)."""
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


def _number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def _crop_ok(crop: Any) -> bool:
    if not (isinstance(crop, list | tuple) and len(crop) == 2 and all(map(_number, crop))):
        return False
    start, length = crop
    return 0 <= start and 0 < length and start + length <= 1 + 1e-9
