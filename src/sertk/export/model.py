"""``OnnxBundleModel``: an ONNX bundle's ``head.onnx`` behind the ``sertk.inference.BundleModel`` API.

Same attributes (``bundle``, ``kind``, ``labels``, ``normalization``, ``inputs``,
``sampling_rate``, ``batch_size``) and methods (``prepare``, ``predict_features``,
``predict_inputs``, ``extract``, ``predict_signals``) with the same normalisation (per speaker,
then the bundle's global statistics), so it drops in where a ``BundleModel`` of a torch bundle is
used; its probabilities equal torch's within the tolerance recorded in ``bundle.json``
(``onnx.parity``). Plus ``has_attention`` and :meth:`predict_attention` (the model's attention
matrices, which the torch path reads from ``model(..., return_attention=True)``). Runs on
onnxruntime's CPU provider with ``threads`` intra-op threads; imports neither torch nor
transformers.

>>> scorer = OnnxBundleModel.load("model-onnx", threads=2)  # doctest: +SKIP
>>> scorer.predict_signals([signal], 16000).shape  # doctest: +SKIP
(1, 4)
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import FeatureError, SertkError
from sertk.export.runner import OnnxBundle, OnnxFeatureInput, load_onnx_bundle, make_session
from sertk.inference import bundle_normalization, extract_signals, predict_with_views, speaker_step
from sertk.views import View, bundle_views


def pad_batch(items: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Zero-pad ``[(layers,) frames, dim]`` arrays to ``[batch, (layers,) frames, dim]`` + lengths."""
    lengths = np.array([x.shape[-2] for x in items], dtype=np.int64)
    first = items[0]
    padded = np.zeros((len(items), *first.shape[:-2], lengths.max(), first.shape[-1]), np.float32)
    for row, x in enumerate(items):
        padded[row][..., : x.shape[-2], :] = x
    return padded, lengths


class OnnxBundleModel:
    """The head of an ONNX bundle, ready for inference (see the module docstring)."""

    backend = "onnx"

    def __init__(
        self, bundle: OnnxBundle, *, threads: int | None = None, batch_size: int = 32
    ) -> None:
        self.bundle = bundle
        self.kind = bundle.kind  # of the bundle it was exported from ("torch")
        self.labels: tuple[str, ...] = tuple(bundle.labels)
        self.normalization = bundle_normalization(bundle)
        self.tta_views = bundle_views(bundle)
        self.batch_size = batch_size
        self.threads = threads
        self.inputs = (OnnxFeatureInput(bundle.features, bundle.preprocess, bundle, threads),)
        self.session = make_session(bundle.file("head"), threads=threads)
        shape = self.session.get_inputs()[0].shape  # [batch, (layers,) frames, dim]
        self.input_shape = tuple(d if isinstance(d, int) else None for d in shape[1:])
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.has_attention = "attention" in self.outputs
        self._extractor: tuple[Any, Any] | None = None

    @classmethod
    def load(cls, path: str | Path, *, threads: int | None = None) -> OnnxBundleModel:
        """Load the ONNX bundle at ``path`` and open its head graph."""
        return cls(load_onnx_bundle(path), threads=threads)

    @property
    def sampling_rate(self) -> int:
        """The rate to load audio at (the preprocessing resamples to it)."""
        return int(self.bundle.preprocess.get("sampling_rate", 16000))

    def prepare(
        self,
        features: Sequence[np.ndarray],
        *,
        speakers: Sequence[str] | None = None,
        speaker_normalized: bool = False,
    ) -> list[np.ndarray]:
        """Per-speaker normalisation if the bundle needs it, then the global statistics."""
        items = speaker_step(self, features, speakers, speaker_normalized)
        return [self._check(self.bundle.normalize(x), i) for i, x in enumerate(items)]

    def _check(self, x: np.ndarray, index: int) -> np.ndarray:
        want = self.input_shape
        if x.ndim != len(want) or any(
            w is not None and w != s for w, s in zip(want, x.shape, strict=True)
        ):
            layout = "[layers, frames, dim]" if len(want) == 3 else "[frames, dim]"
            expected = tuple("*" if w is None else w for w in want)
            raise FeatureError(
                f"features {index} have shape {x.shape} but this model takes {layout} = "
                f"{expected}; use the bundle's own extractor (bundle.build_extractor())"
            )
        if x.shape[-2] == 0 or not np.isfinite(x).all():
            raise FeatureError(
                f"features {index} are empty or hold NaN/inf; check the audio and the extractor"
            )
        return x

    def predict_features(
        self,
        features: Sequence[np.ndarray],
        *,
        speakers: Sequence[str] | None = None,
        speaker_normalized: bool = False,
    ) -> np.ndarray:
        """Softmax probabilities float32 ``[n, classes]`` (columns in ``labels`` order)."""
        probabilities, _ = self.predict_attention(
            features, speakers=speakers, speaker_normalized=speaker_normalized
        )
        return probabilities

    def predict_inputs(
        self,
        features_per_input: Sequence[Sequence[np.ndarray]],
        *,
        speakers: Sequence[str] | None = None,
        speaker_normalized: bool = False,
    ) -> np.ndarray:
        """``predict_features`` of the one input: ``features_per_input`` is ``[features]``."""
        if len(features_per_input) != 1:
            raise SertkError(f"give features for 1 input, got {len(features_per_input)}")
        return self.predict_features(
            features_per_input[0], speakers=speakers, speaker_normalized=speaker_normalized
        )

    def predict_attention(
        self,
        features: Sequence[np.ndarray],
        *,
        speakers: Sequence[str] | None = None,
        speaker_normalized: bool = False,
    ) -> tuple[np.ndarray, list[np.ndarray] | None]:
        """Probabilities ``[n, classes]`` and, for models with attention, each item's attention
        ``[frames, frames]`` over its valid frames (None for models without attention)."""
        if len(features) == 0:
            raise SertkError("no features to predict; give at least one array")
        items = self.prepare(features, speakers=speakers, speaker_normalized=speaker_normalized)
        order = sorted(range(len(items)), key=lambda i: -items[i].shape[-2])  # less padding
        probabilities = np.zeros((len(items), len(self.labels)), np.float32)
        attention: list[Any] = [None] * len(items)
        for start in range(0, len(order), self.batch_size):
            batch = order[start : start + self.batch_size]
            padded, lengths = pad_batch([items[i] for i in batch])
            values = self.session.run(None, {"features": padded, "lengths": lengths})
            result = dict(zip(self.outputs, values, strict=True))
            probabilities[batch] = result["probabilities"]
            if self.has_attention:
                for row, (i, n) in enumerate(zip(batch, lengths, strict=True)):
                    attention[i] = np.ascontiguousarray(result["attention"][row, :n, :n])
        return probabilities, (attention if self.has_attention else None)

    def extract(self, signals: Sequence[np.ndarray], sampling_rate: int) -> list[list[np.ndarray]]:
        """``[features of each signal]`` (one input): the bundle's preprocessing + extractor."""
        return self.extract_views(signals, sampling_rate, (None,))[0]

    def extract_views(
        self, signals: Sequence[np.ndarray], sampling_rate: int, views: Sequence[View | None]
    ) -> list[list[list[np.ndarray]]]:
        """:meth:`extract` for each of ``views`` (as ``BundleModel.extract_views``)."""
        if self._extractor is None:
            item = self.inputs[0]
            self._extractor = (item.build_preprocess(), item.build_extractor())
        return [
            [features]
            for features in extract_signals(*self._extractor, signals, sampling_rate, views)
        ]

    def predict_signals(
        self,
        signals: Sequence[np.ndarray],
        sampling_rate: int,
        *,
        speakers: Sequence[str] | None = None,
    ) -> np.ndarray:
        """Probabilities float32 ``[n, classes]`` of raw signals: preprocess + extract + predict
        (with the bundle's test-time views: every view, combined)."""
        return predict_with_views(self, signals, sampling_rate, speakers)
