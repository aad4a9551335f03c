"""The one "features -> model -> probabilities" step, shared by evaluation and the Recognizer.

:class:`BundleModel` wraps a loaded bundle: it rebuilds the model once and turns a list of
feature arrays (``[frames, dim]`` or ``[layers, frames, dim]``, straight from the bundle's own
extractor) into class probabilities, applying the bundle's normalisation on the way:

1. per-speaker z-normalisation, when the bundle was trained under the speaker-adapted protocol
   (``bundle.extra["feature_normalization"] == "speaker"``): each speaker's features are scaled
   with statistics of that speaker's own utterances, so callers pass ``speakers`` (several
   utterances per speaker make the statistics meaningful);
2. the bundle's global mean/std (``bundle.normalize``);
3. the model, in eval mode, softmax over ``bundle.labels``.

Reading audio, preprocessing and feature extraction stay with the caller
(``bundle.build_preprocess()``, ``bundle.build_extractor()``); this module is the part a
Recognizer reuses as is.

>>> scorer = BundleModel.load("runs/x/folds/speaker_03/bundle")  # doctest: +SKIP
>>> probabilities = scorer.predict_features([features])  # [1, classes]  # doctest: +SKIP
>>> scorer.labels[int(probabilities[0].argmax())]  # doctest: +SKIP
'angry'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import BundleError, SertkError

# bundle.extra key naming the feature-normalisation protocol ("global" or "speaker")
NORMALIZATION_KEY = "feature_normalization"


def bundle_normalization(bundle: Any) -> str:
    """``"speaker"`` if the bundle expects per-speaker normalised features, else ``"global"``."""
    value = (bundle.extra or {}).get(NORMALIZATION_KEY, "global")
    if value not in ("global", "speaker"):
        raise BundleError(
            f"{bundle.path}: unknown {NORMALIZATION_KEY} {value!r} (expected global or speaker); "
            "upgrade sertk"
        )
    return value


def normalize_per_speaker(
    features: Sequence[np.ndarray], speakers: Sequence[str]
) -> list[np.ndarray]:
    """Z-normalise each item with the mean/std of all frames of its speaker's items.

    ``features``: arrays ``[frames, dim]`` (or ``[layers, frames, dim]``, statistics per layer);
    ``speakers``: one speaker id per item. Returns new float32 arrays in the same order.
    """
    from sertk.training import fit_normalization

    if len(features) != len(speakers):
        raise SertkError(
            f"got {len(features)} feature arrays but {len(speakers)} speakers; give one each"
        )
    by_speaker: dict[str, list[int]] = {}
    for index, speaker in enumerate(speakers):
        by_speaker.setdefault(speaker, []).append(index)
    result: list[np.ndarray] = [np.empty(0)] * len(features)
    for indices in by_speaker.values():
        stats = fit_normalization([features[i] for i in indices])
        mean, std = stats["mean"][..., None, :], stats["std"][..., None, :]
        for i in indices:
            result[i] = ((np.asarray(features[i], np.float32) - mean) / std).astype(np.float32)
    return result


class BundleModel:
    """A bundle's model ready for inference on features (see the module docstring)."""

    def __init__(self, bundle: Any, *, device: str = "cpu", batch_size: int = 32) -> None:
        if bundle.kind != "torch":  # a classical (numpy) bundle kind plugs in here
            raise BundleError(f"{bundle.path}: cannot run a {bundle.kind!r} bundle yet")
        self.bundle = bundle
        self.labels: tuple[str, ...] = tuple(bundle.labels)
        self.normalization = bundle_normalization(bundle)
        self.device = device
        self.batch_size = batch_size
        self.model = bundle.build_model().to(device)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> BundleModel:
        """Load the bundle at ``path`` (``sertk.bundle.load_bundle``) and wrap it."""
        from sertk.bundle import load_bundle

        return cls(load_bundle(path), device=device)

    def prepare(
        self,
        features: Sequence[np.ndarray],
        *,
        speakers: Sequence[str] | None = None,
        speaker_normalized: bool = False,
    ) -> list[np.ndarray]:
        """The model's inputs: per-speaker normalisation if the bundle needs it, then global.

        For a speaker-protocol bundle pass ``speakers`` (one id per item), or
        ``speaker_normalized=True`` when the features already are; otherwise SertkError.
        """
        items = [np.asarray(x, dtype=np.float32) for x in features]
        if self.normalization == "speaker" and not speaker_normalized:
            if speakers is None:
                raise SertkError(
                    f"{self.bundle.path} was trained on per-speaker normalised features; pass "
                    "speakers= (one id per utterance, several utterances per speaker)"
                )
            items = normalize_per_speaker(items, speakers)
        return [self.bundle.normalize(x) for x in items]

    def predict_features(
        self,
        features: Sequence[np.ndarray],
        *,
        speakers: Sequence[str] | None = None,
        speaker_normalized: bool = False,
    ) -> np.ndarray:
        """Softmax probabilities float32 ``[n, classes]`` (columns in ``labels`` order)."""
        from sertk.training import predict

        if len(features) == 0:
            raise SertkError("no features to predict; give at least one array")
        inputs = self.prepare(features, speakers=speakers, speaker_normalized=speaker_normalized)
        _, probabilities = predict(
            self.model, inputs, batch_size=self.batch_size, device=self.device
        )
        return probabilities
