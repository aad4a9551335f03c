"""Versions of an utterance: seeded training augmentation and deterministic test-time views.

- :mod:`~sertk.augment.transforms`: :class:`AugmentConfig`, :class:`Augmenter` and the waveform
  (speed, time stretch, pitch shift, gain, noise) and feature (SpecAugment-style masks) steps,
  drawn at random for training data only;
- :mod:`~sertk.augment.views`: :class:`View` (a fixed speed or crop of a preprocessed utterance)
  and :func:`combine_views`; a bundle lists its test-time views and every scorer applies them,
  and classical runs add the same crops of each training utterance as training rows.

Numpy and soxr only; nothing here imports torch.

>>> View(speed=0.9), AugmentConfig(noise_p=0.5).waveform_enabled
(View(speed=0.9, crop=None), True)
"""

from sertk.augment.transforms import (
    MASK_VALUES,
    AugmentConfig,
    Augmenter,
    add_noise,
    augment_features,
    augment_waveform,
    change_speed,
    mask_spans,
    pitch_shift,
    time_stretch,
)
from sertk.augment.views import View, combine_views, fit_length

__all__ = [
    "MASK_VALUES",
    "AugmentConfig",
    "Augmenter",
    "View",
    "add_noise",
    "augment_features",
    "augment_waveform",
    "change_speed",
    "combine_views",
    "fit_length",
    "mask_spans",
    "pitch_shift",
    "time_stretch",
]
