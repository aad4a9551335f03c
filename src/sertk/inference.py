"""The one "signals/features -> model -> probabilities" step, shared by evaluation and the Recognizer.

:class:`BundleModel` wraps a loaded bundle of any kind (``torch``, ``classical``, ``ensemble``)
and turns inputs into class probabilities ``[n, classes]`` (columns in ``labels`` order):

- :meth:`BundleModel.predict_signals` ``(signals, sampling_rate, *, speakers=None)``: each
  input's preprocessing and feature extractor, then the model(s). Works for every kind,
  ensembles whose members use different extractors included; this is what a Recognizer calls.
- :meth:`BundleModel.predict_features` ``(features, *, speakers=None, speaker_normalized=False)``:
  features from the bundle's own extractor (one per utterance). For bundles with a single
  input (``len(model.inputs) == 1``: torch, classical, and ensembles whose members share
  extractor and preprocessing).
- :meth:`BundleModel.predict_inputs`: features per input (``model.inputs`` order), for callers
  that extract (and cache) features themselves, e.g. ``sertk.experiment.evaluate_bundle``.

Normalisation, per model: (1) per-speaker z-normalisation when the bundle was trained under the
speaker-adapted protocol (``bundle.extra["feature_normalization"] == "speaker"``): callers pass
``speakers`` (several utterances per speaker make the statistics meaningful); (2) a torch
bundle's global mean/std; a classical model standardises inside. An ensemble combines its
members' probabilities with its weights (soft voting: the mean), mapping member labels onto its
own. Importing this module imports neither torch nor scikit-learn; a classical bundle predicts
with numpy alone.

>>> scorer = BundleModel.load("runs/x/final/bundle")  # doctest: +SKIP
>>> probabilities = scorer.predict_signals([signal], 16000)  # [1, classes]  # doctest: +SKIP
>>> scorer.labels[int(probabilities[0].argmax())]  # doctest: +SKIP
'angry'
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import BundleError, FeatureError, SertkError
from sertk.normalization import normalize_per_speaker
from sertk.views import View, bundle_views, combine_views

__all__ = [
    "NORMALIZATION_KEY", "BundleModel", "FeatureInput", "bundle_normalization", "extract_signals",
    "normalize_per_speaker", "predict_with_views", "speaker_step",
]  # fmt: skip

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


@dataclasses.dataclass(frozen=True)
class FeatureInput:
    """One preprocessing + feature-extractor pair (their config dicts) a bundle reads."""

    features: dict[str, Any]
    preprocess: dict[str, Any]

    def build_preprocess(self) -> Any:
        """The ``sertk.audio.Preprocess`` chain."""
        from sertk.audio import Preprocess

        return Preprocess.from_dict(self.preprocess)

    def build_extractor(self) -> Any:
        """The feature extractor (``sertk.features.build_extractor``)."""
        from sertk.features import build_extractor

        return build_extractor(self.features)


class BundleModel:
    """A bundle ready for inference (see the module docstring).

    Attributes: ``bundle``, ``kind``, ``labels``, ``normalization`` (``"speaker"`` when any
    model needs ``speakers``), ``inputs`` (tuple of :class:`FeatureInput`), ``sampling_rate``
    (the rate to load audio at), and for ensembles ``members`` (BundleModels) and ``weights``.
    """

    def __init__(self, bundle: Any, *, device: str = "cpu", batch_size: int = 32) -> None:
        self.bundle = bundle
        self.kind: str = bundle.kind
        self.labels: tuple[str, ...] = tuple(bundle.labels)
        self.device = device
        self.batch_size = batch_size
        self._extractors: dict[int, tuple[Any, Any]] = {}
        if self.kind == "ensemble":
            self._init_ensemble(bundle)
            return
        if self.kind not in ("torch", "classical"):
            raise BundleError(f"{bundle.path}: cannot run a {bundle.kind!r} bundle")
        self.normalization = bundle_normalization(bundle)
        self.tta_views = bundle_views(bundle)
        self.inputs = (FeatureInput(dict(bundle.features), dict(bundle.preprocess)),)
        self.model = bundle.build_model()
        if self.kind == "torch":
            self.model = self.model.to(device)

    def _init_ensemble(self, bundle: Any) -> None:
        from sertk.bundle._ensemble import label_matrix

        self.members = tuple(
            BundleModel(m.bundle, device=self.device, batch_size=self.batch_size)
            for m in bundle.members
        )
        self.weights = np.array([m.weight for m in bundle.members], dtype=np.float64)
        self._matrices = [
            label_matrix(model.labels, self.labels, member.label_mapping, str(member.name))
            for model, member in zip(self.members, bundle.members, strict=True)
        ]
        keys = [json.dumps([m.inputs[0].features, m.inputs[0].preprocess], sort_keys=True)
                for m in self.members]  # fmt: skip
        unique = list(dict.fromkeys(keys))
        self._member_input = [unique.index(key) for key in keys]
        self.inputs = tuple(self.members[keys.index(key)].inputs[0] for key in unique)
        speaker = any(m.normalization == "speaker" for m in self.members)
        self.normalization = "speaker" if speaker else "global"
        self.tta_views: tuple[View, ...] = ()  # members apply their own (predict_signals)

    @classmethod
    def load(cls, path: str | Path, *, device: str = "cpu") -> BundleModel:
        """Load the bundle at ``path`` (``sertk.bundle.load_bundle``) and wrap it."""
        from sertk.bundle import load_bundle

        return cls(load_bundle(path), device=device)

    @property
    def sampling_rate(self) -> int:
        """The rate to load audio at (each input's preprocessing resamples to its own)."""
        return max(int(item.preprocess.get("sampling_rate", 16000)) for item in self.inputs)

    def prepare(
        self,
        features: Sequence[np.ndarray],
        *,
        speakers: Sequence[str] | None = None,
        speaker_normalized: bool = False,
    ) -> list[np.ndarray]:
        """A torch or classical model's inputs: per-speaker normalisation if the bundle needs
        it, then the global statistics (torch).

        For a speaker-protocol bundle pass ``speakers`` (one id per item), or
        ``speaker_normalized=True`` when the features already are; otherwise SertkError.
        """
        items = speaker_step(self, features, speakers, speaker_normalized)
        return [self.bundle.normalize(x) for x in items]

    def predict_features(
        self,
        features: Sequence[np.ndarray],
        *,
        speakers: Sequence[str] | None = None,
        speaker_normalized: bool = False,
    ) -> np.ndarray:
        """Probabilities float32 ``[n, classes]`` of features from the bundle's one input."""
        if len(self.inputs) != 1:
            raise SertkError(
                f"{self.bundle.path} is an ensemble whose members read {len(self.inputs)} "
                "different feature inputs; call predict_signals(signals, sampling_rate) or "
                "predict_inputs with features per input"
            )
        return self.predict_inputs(
            [features], speakers=speakers, speaker_normalized=speaker_normalized
        )

    def predict_inputs(
        self,
        features_per_input: Sequence[Sequence[np.ndarray]],
        *,
        speakers: Sequence[str] | None = None,
        speaker_normalized: bool = False,
    ) -> np.ndarray:
        """Probabilities float32 ``[n, classes]``; ``features_per_input[i]`` holds one array
        per utterance from ``inputs[i]`` (same utterances, same order, for every input)."""
        options = {"speakers": speakers, "speaker_normalized": speaker_normalized}
        if self.kind == "ensemble":
            members = self.member_probabilities(features_per_input, **options)
            combined = sum(w * p for w, p in zip(self.weights, members, strict=True))
            return np.asarray(combined, dtype=np.float32)
        if len(features_per_input) != 1:
            raise SertkError(f"give features for 1 input, got {len(features_per_input)}")
        features = features_per_input[0]
        if len(features) == 0:
            raise SertkError("no features to predict; give at least one array")
        inputs = self.prepare(features, **options)
        if self.kind == "classical":
            return self._predict_classical(inputs)
        from sertk.training import predict

        _, probabilities = predict(
            self.model, inputs, batch_size=self.batch_size, device=self.device
        )
        return probabilities

    def _predict_classical(self, inputs: list[np.ndarray]) -> np.ndarray:
        bad = [i for i, x in enumerate(inputs) if x.ndim != 2 or x.shape[0] != 1]
        if bad:
            raise FeatureError(
                f"a classical model takes one row of utterance-level features per utterance "
                f"([1, dim], e.g. 'functionals'); item {bad[0]} has shape {inputs[bad[0]].shape}"
            )
        return self.model.predict_proba(np.concatenate(inputs)).astype(np.float32)

    def member_probabilities(
        self,
        features_per_input: Sequence[Sequence[np.ndarray]],
        *,
        speakers: Sequence[str] | None = None,
        speaker_normalized: bool = False,
    ) -> list[np.ndarray]:
        """An ensemble's per-member probabilities ``[n, classes]`` in the ensemble's label order."""
        if self.kind != "ensemble":
            raise SertkError(f"{self.bundle.path} is a {self.kind} bundle, not an ensemble")
        if len(features_per_input) != len(self.inputs):
            raise SertkError(
                f"give features for each of the {len(self.inputs)} inputs, got "
                f"{len(features_per_input)}"
            )
        sizes = {len(features) for features in features_per_input}
        if len(sizes) != 1:
            raise SertkError(f"every input needs the same utterances; got counts {sorted(sizes)}")
        return [
            member.predict_features(
                features_per_input[index], speakers=speakers, speaker_normalized=speaker_normalized
            ).astype(np.float64)
            @ matrix
            for member, index, matrix in zip(
                self.members, self._member_input, self._matrices, strict=True
            )
        ]

    def extract(self, signals: Sequence[np.ndarray], sampling_rate: int) -> list[list[np.ndarray]]:
        """Features of ``signals`` (each ``[samples]`` or ``[channels, samples]`` at
        ``sampling_rate``) for every input: ``result[i][k]`` is utterance ``k`` of ``inputs[i]``."""
        return self.extract_views(signals, sampling_rate, (None,))[0]

    def extract_views(
        self, signals: Sequence[np.ndarray], sampling_rate: int, views: Sequence[View | None]
    ) -> list[list[list[np.ndarray]]]:
        """:meth:`extract` for each of ``views`` (None: the signals themselves; a
        :class:`~sertk.views.View` of the preprocessed signals for test-time augmentation),
        preprocessing each signal once: ``result[v][i][k]``."""
        per_input = []
        for index, item in enumerate(self.inputs):
            if index not in self._extractors:
                self._extractors[index] = (item.build_preprocess(), item.build_extractor())
            preprocess, extractor = self._extractors[index]
            per_input.append(extract_signals(preprocess, extractor, signals, sampling_rate, views))
        return [[features[v] for features in per_input] for v in range(len(views))]

    def predict_signals(
        self,
        signals: Sequence[np.ndarray],
        sampling_rate: int,
        *,
        speakers: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Probabilities float32 ``[n, classes]`` of raw signals: preprocess + extract + predict
        (and, with test-time views, the same for each view, combined)."""
        if self.kind == "ensemble" and any(m.tta_views for m in self.members):
            members = [
                member.predict_signals(signals, sampling_rate, speakers=speakers) @ matrix
                for member, matrix in zip(self.members, self._matrices, strict=True)
            ]
            combined = sum(w * p for w, p in zip(self.weights, members, strict=True))
            return np.asarray(combined, dtype=np.float32)
        return predict_with_views(self, signals, sampling_rate, speakers)


def speaker_step(
    scorer: Any, features: Sequence[np.ndarray], speakers: Sequence[str] | None,
    speaker_normalized: bool,
) -> list[np.ndarray]:  # fmt: skip
    """float32 ``features``, per-speaker normalised when ``scorer.normalization`` is
    ``"speaker"`` and they are not yet (SertkError without ``speakers``)."""
    items = [np.asarray(x, dtype=np.float32) for x in features]
    if scorer.normalization != "speaker" or speaker_normalized:
        return items
    if speakers is None:
        raise SertkError(
            f"{scorer.bundle.path} was trained on per-speaker normalised features; pass "
            "speakers= (one id per utterance, several utterances per speaker)"
        )
    return normalize_per_speaker(items, speakers)


def extract_signals(
    preprocess: Any, extractor: Any, signals: Sequence[np.ndarray], sampling_rate: int,
    views: Sequence[View | None] = (None,),
) -> list[list[np.ndarray]]:  # fmt: skip
    """Features of raw ``signals`` for each of ``views``: ``preprocess`` (once), then that
    version of each signal (None: itself; a View for test-time augmentation), then
    ``extractor`` (batched when it can). ``result[v][k]`` is utterance ``k`` in view ``v``."""
    if isinstance(signals, np.ndarray) or len(signals) == 0:
        raise SertkError(
            "signals must be a non-empty list of arrays, one per utterance; wrap a single "
            "signal in a list"
        )
    rate = preprocess.sampling_rate
    processed = [preprocess(signal, sampling_rate) for signal in signals]
    batch = getattr(extractor, "extract_batch", None)
    out = []
    for view in views:
        items = processed if view is None else [view(x, rate, preprocess) for x in processed]
        if batch is not None and len(items) > 1:
            out.append(list(batch(items, rate)))
        else:
            out.append([extractor(x, rate) for x in items])
    return out


def predict_with_views(
    scorer: Any, signals: Sequence[np.ndarray], sampling_rate: int,
    speakers: Sequence[str] | None,
) -> np.ndarray:  # fmt: skip
    """``scorer.predict_inputs`` of the signals and of each of ``scorer.tta_views``, combined
    by :func:`~sertk.views.combine_views` (just the first without test-time views)."""
    views = [
        scorer.predict_inputs(features, speakers=speakers)
        for features in scorer.extract_views(signals, sampling_rate, (None, *scorer.tta_views))
    ]
    return views[0] if len(views) == 1 else combine_views(views)
