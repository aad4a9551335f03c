"""``Preprocess``: the serialisable preprocessing chain stored in every model bundle."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from sertk.audio import dsp
from sertk.audio.loading import check_rate, check_signal, resample
from sertk.errors import AudioError, ConfigError

NORMALIZATIONS = ("none", "peak", "loudness")


@dataclass(frozen=True)
class Preprocess:
    """Turn any ``(signal, sampling_rate)`` into the fixed input a model was trained on.

    Steps, in order: resample to ``sampling_rate`` (soxr), downmix to mono, ``denoise`` (spectral
    subtraction), ``trim_silence``, ``normalize`` ("none", "peak" to 0.99, "loudness" to -23 dBFS
    RMS), then crop or zero-pad to ``duration`` seconds with policy ``crop`` ("start", "center",
    "random"; see :func:`sertk.audio.crop_or_pad`). ``duration=None`` keeps the whole signal.
    A "random" crop is used only when called with ``train=True``; at inference it falls back to
    "center", so a prediction is deterministic and looks at the middle of the utterance.

    >>> chain = Preprocess(duration=1.0, normalize="peak")
    >>> chain(np.ones((2, 48000), dtype=np.float32), 48000).shape
    (16000,)
    >>> Preprocess.from_dict(chain.to_dict()) == chain
    True
    """

    sampling_rate: int = 16000
    duration: float | None = 3.0
    crop: Literal["start", "center", "random"] = "start"
    normalize: Literal["none", "peak", "loudness"] = "none"
    trim_silence: bool = False
    denoise: bool = False

    def __post_init__(self) -> None:
        try:
            rate = check_rate(self.sampling_rate, what="Preprocess.sampling_rate")
        except AudioError as exc:
            raise ConfigError(str(exc)) from None
        object.__setattr__(self, "sampling_rate", rate)
        duration = self.duration
        if duration is not None:
            number = isinstance(duration, int | float | np.integer | np.floating)
            if isinstance(duration, bool) or not number or not math.isfinite(duration):
                raise ConfigError(
                    f"Preprocess.duration must be a number of seconds or None, got {duration!r}"
                )
            if round(duration * rate) < 1:
                raise ConfigError(
                    f"Preprocess.duration must be positive (at least one sample), got {duration!r}"
                )
            object.__setattr__(self, "duration", float(duration))
        for name, allowed in (("crop", dsp.CROP_POLICIES), ("normalize", NORMALIZATIONS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(
                    f"Preprocess.{name} must be one of {', '.join(allowed)}; "
                    f"got {getattr(self, name)!r}"
                )
        for name in ("trim_silence", "denoise"):
            if not isinstance(getattr(self, name), bool | np.bool_):
                raise ConfigError(
                    f"Preprocess.{name} must be true or false, got {getattr(self, name)!r}"
                )
            object.__setattr__(self, name, bool(getattr(self, name)))

    @property
    def num_samples(self) -> int | None:
        """Output length in samples, or None when ``duration`` is None."""
        return None if self.duration is None else round(self.duration * self.sampling_rate)

    def __call__(
        self,
        signal: np.ndarray,
        sampling_rate: int,
        *,
        rng: np.random.Generator | None = None,
        train: bool = False,
    ) -> np.ndarray:
        """Apply the chain: ``[samples]`` or ``[channels, samples]`` in, float32 ``[samples]`` out.

        ``rng`` is needed only for a "random" crop with ``train=True``. Raises AudioError for a
        bad signal (see :func:`sertk.audio.check_signal`).
        """
        array = check_signal(signal, sampling_rate)
        if array.ndim == 2:
            array = array.mean(axis=0)
        rate = self.sampling_rate
        if sampling_rate != rate:
            array = resample(array, sampling_rate, rate)
        if self.denoise:
            array = dsp.denoise(array, rate)
        if self.trim_silence:
            array = dsp.trim_silence(array, rate)
        if self.normalize == "peak":
            array = dsp.normalize_peak(array)
        elif self.normalize == "loudness":
            array = dsp.normalize_loudness(array, rate)
        if self.num_samples is not None:
            policy = "center" if self.crop == "random" and not train else self.crop
            array = dsp.crop_or_pad(array, self.num_samples, policy=policy, rng=rng)
        return array

    def to_dict(self) -> dict:
        """Plain JSON/YAML-serialisable dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping) -> Preprocess:
        """Rebuild from :meth:`to_dict` output; missing keys take defaults, unknown keys fail."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"Preprocess config must be a mapping, got {type(data).__name__}")
        known = [field.name for field in dataclasses.fields(cls)]
        unknown = sorted(str(key) for key in data if key not in known)
        if unknown:
            raise ConfigError(
                f"unknown Preprocess keys: {', '.join(unknown)}; allowed: {', '.join(known)}"
            )
        return cls(**data)
