"""The one path from preprocessed signals to class probabilities, for every backend.

A :class:`Scorer` runs three hops, each of them once for every bundle kind and backend::

    scorer.preprocess(signal, sampling_rate)   # the bundle's Preprocess, once per feature input
    scorer.extract([processed, ...])           # each input's extractor, on the utterance and on
                                               #   each test-time view of it (batched)
    scorer.score(features, speakers=/statistics=)
        # per view: speaker normalisation (speaker-adapted bundles) -> the bundle's global
        #   statistics -> model forward -> softmax; then the views combined (geometric mean)

Features of one item are a mapping ``FeatureKey -> array``, where a ``FeatureKey`` is ``(input
index, view)`` (view None: the utterance itself); :attr:`Scorer.requests` lists the keys a scorer
reads, so a caller with cached features (the cross-validation runner, ``sertk evaluate``) can
fill them itself and still get the same normalisation, views and combination.

:class:`ModelScorer` holds one model; the backends differ only in its ``forward`` (numpy
classical, torch head, onnxruntime head; see :mod:`sertk.inference.backends` and
:mod:`sertk.inference.onnx`) and in how an SSL encoder is built (torch or ONNX; the bundle
kind decides). :class:`~sertk.inference.ensemble.EnsembleScorer` combines member scorers.
A scorer is built by its bundle kind (``load_bundle(path).build_scorer()``) and is cheap to
rebuild from the bundle path (e.g. in a worker process).

>>> from sertk.audio import Preprocess, load_audio
>>> from sertk.bundle import load_bundle
>>> signal = Preprocess()(*load_audio("examples/03a02Wc.flac"))
>>> scorer = load_bundle("default").build_scorer()
>>> scorer.predict_signals([signal], 16000).shape  # [items, classes]
(1, 7)
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np

from sertk.audio import Preprocess
from sertk.augment import View, combine_views
from sertk.errors import SertkError
from sertk.features.normalization import Adaptation, FeatureStatistics, apply_statistics
from sertk.inference.speakers import SpeakerStatistics, normalize_speakers

FeatureKey = tuple[int, View | None]
ItemFeatures = Mapping[FeatureKey, np.ndarray]


class FeatureInput(NamedTuple):
    """One preprocessing chain and the feature extractor that reads its output."""

    preprocess: Preprocess
    extractor: Any

    def key(self) -> str:
        """Canonical JSON of both configs: equal keys give equal features."""
        return json.dumps([self.preprocess.to_dict(), self.extractor.config()], sort_keys=True)


@dataclasses.dataclass(frozen=True, eq=False)
class Scores:
    """``probabilities`` float32 ``[n, classes]`` (columns in ``labels`` order) and, when asked
    for and the model has them, each item's attention weights ``[frames]`` (else None)."""

    probabilities: np.ndarray
    attention: list[np.ndarray | None]


class Forward(Protocol):
    """A model's forward pass: normalised features of n items -> ``(probabilities [n, classes]
    float32, per-item attention [frames] or None)``."""

    has_attention: bool

    def __call__(
        self, items: list[np.ndarray], *, attention: bool = False
    ) -> tuple[np.ndarray, list[np.ndarray | None]]: ...


class Scorer:
    """What every scorer shares: its inputs, the preprocessing and feature hops, and
    :meth:`predict_signals`. Subclasses define ``requests``, ``normalization`` and ``score``.

    Attributes: ``labels``, ``inputs`` (:class:`FeatureInput` per feature input),
    ``has_attention``, ``source`` (the bundle folder, or None).
    """

    labels: tuple[str, ...]
    inputs: tuple[FeatureInput, ...]
    has_attention: bool = False
    source: Path | None = None

    @property
    def requests(self) -> tuple[FeatureKey, ...]:
        """The feature keys :meth:`score` reads, in order (the utterance first)."""
        raise NotImplementedError

    @property
    def normalization(self) -> str:
        """``"speaker"`` when :meth:`score` needs speakers or statistics, else ``"global"``."""
        raise NotImplementedError

    @property
    def adaptation(self) -> Adaptation | None:
        """How speaker statistics normalise features (None: this scorer cannot use them)."""
        return None

    @property
    def sampling_rate(self) -> int:
        """The rate to load audio at (each input's preprocessing resamples to its own)."""
        return max(item.preprocess.sampling_rate for item in self.inputs)

    def preprocess(self, signal: np.ndarray, sampling_rate: int) -> tuple[np.ndarray, ...]:
        """``signal`` (``[samples]`` or ``[channels, samples]`` at ``sampling_rate``) through
        each input's preprocessing: float32 ``[samples]`` per input."""
        return tuple(item.preprocess(signal, sampling_rate) for item in self.inputs)

    def extract(self, processed: Sequence[Sequence[np.ndarray]]) -> list[dict[FeatureKey, Any]]:
        """Features of preprocessed items (``processed[i][k]``: item ``i`` for input ``k``) for
        every key of :attr:`requests`: one ``{key: features}`` per item. Each view is made from
        the preprocessed signal; the extractor runs batched (``extract_batch``) when it can."""
        out: list[dict[FeatureKey, Any]] = [{} for _ in processed]
        for index, item in enumerate(self.inputs):
            rate = item.preprocess.sampling_rate
            signals = [parts[index] for parts in processed]
            for key in self.requests:
                if key[0] != index:
                    continue
                view = key[1]
                versions = (
                    signals if view is None else [view(x, rate, item.preprocess) for x in signals]
                )
                for row, features in enumerate(run_extractor(item.extractor, versions, rate)):
                    out[row][key] = features
        return out

    def score(
        self,
        features: Sequence[ItemFeatures],
        *,
        speakers: Sequence[str] | None = None,
        statistics: SpeakerStatistics | Sequence[SpeakerStatistics | None] | None = None,
        attention: bool = False,
    ) -> Scores:
        """Probabilities of items whose features hold every key of :attr:`requests`.

        A speaker-adapted scorer z-normalises each item with its speaker's statistics: taken
        from ``statistics`` (one :data:`SpeakerStatistics` for every item, or one per item, as a
        caller accumulates them, see :meth:`statistics`) where given, else computed over the
        items of each speaker in ``speakers`` (one id per item). Other scorers ignore both.
        """
        raise NotImplementedError

    def statistics(
        self, features: Sequence[ItemFeatures], *, seconds: float = 0.0
    ) -> SpeakerStatistics:
        """:class:`FeatureStatistics` of ``features`` (from ``seconds`` of speech) per key of
        :attr:`requests`, e.g. one speaker's so far; merge them with
        :func:`sertk.inference.speakers.merge_statistics`."""
        check_features(features, self.requests)
        return {
            key: FeatureStatistics.of([f[key] for f in features], seconds=seconds)
            for key in self.requests
        }

    def predict_signals(
        self,
        signals: Sequence[np.ndarray],
        sampling_rate: int,
        *,
        speakers: Sequence[str] | None = None,
        statistics: SpeakerStatistics | Sequence[SpeakerStatistics | None] | None = None,
    ) -> np.ndarray:
        """Probabilities float32 ``[n, classes]`` of raw signals (a list, one per utterance):
        :meth:`preprocess`, :meth:`extract`, :meth:`score`."""
        if isinstance(signals, np.ndarray) or len(signals) == 0:
            raise SertkError(
                "signals must be a non-empty list of arrays, one per utterance; wrap a single "
                "signal in a list"
            )
        processed = [self.preprocess(signal, sampling_rate) for signal in signals]
        scores = self.score(self.extract(processed), speakers=speakers, statistics=statistics)
        return scores.probabilities


class ModelScorer(Scorer):
    """One model behind one feature input (torch, classical and ONNX bundles).

    ``forward``: the model (see :class:`Forward`); ``normalization``: ``"global"`` or
    ``"speaker"`` (the speaker-adapted protocol); ``views``: test-time views; ``global_stats``:
    the ``{"mean", "std"}`` a torch head was trained with (None: the model standardises itself);
    ``adaptation`` (speaker normalisation only; default z-score) and ``priors`` (feature key ->
    the training population's ``{"mean", "std"}``, for shrinkage; the utterance's prior serves
    views without their own).
    """

    def __init__(
        self,
        *,
        labels: Sequence[str],
        input: FeatureInput,
        forward: Forward,
        normalization: str = "global",
        views: Sequence[View] = (),
        global_stats: Mapping[str, np.ndarray] | None = None,
        adaptation: Adaptation | None = None,
        priors: Mapping[FeatureKey, Mapping[str, np.ndarray]] | None = None,
        source: Path | None = None,
    ) -> None:
        if adaptation is not None and normalization != "speaker":
            raise SertkError("an adaptation applies to speaker normalisation only")
        self.labels = tuple(labels)
        self.inputs = (input,)
        self.forward = forward
        self.views = tuple(views)
        self.global_stats = global_stats
        self.has_attention = bool(forward.has_attention)
        self.source = source
        self._normalization = normalization
        self._adaptation = adaptation or (Adaptation() if normalization == "speaker" else None)
        self.priors = dict(priors or {})

    @property
    def normalization(self) -> str:
        return self._normalization

    @property
    def adaptation(self) -> Adaptation | None:
        return self._adaptation

    @property
    def requests(self) -> tuple[FeatureKey, ...]:
        return ((0, None), *((0, view) for view in self.views))

    def score(self, features, *, speakers=None, statistics=None, attention=False) -> Scores:
        check_features(features, self.requests)
        if attention and not self.has_attention:
            raise SertkError(f"the model of {self.source} has no attention weights")
        results = []
        for key in self.requests:
            items = [np.asarray(f[key], dtype=np.float32) for f in features]
            if self._normalization == "speaker":
                items = normalize_speakers(
                    key, items, speakers, statistics, self.source, adaptation=self._adaptation,
                    prior=self.priors.get(key, self.priors.get((key[0], None))),
                )  # fmt: skip
            if self.global_stats is not None:
                items = [apply_statistics(x, self.global_stats) for x in items]
            results.append(self.forward(items, attention=attention and key[1] is None))
        probabilities, weights = results[0]
        if len(results) > 1:
            probabilities = combine_views([p for p, _ in results])
        return Scores(probabilities, weights)


def check_features(features: Sequence[ItemFeatures], requests: Sequence[FeatureKey]) -> None:
    """SertkError for no items, or an item that lacks a requested key."""
    if isinstance(features, np.ndarray) or len(features) == 0:
        raise SertkError("no features to score; give at least one item")
    for index, item in enumerate(features):
        missing = [key for key in requests if key not in item]
        if missing:
            raise SertkError(
                f"item {index} lacks features {', '.join(describe(k) for k in missing)}; give "
                "one array per key of scorer.requests (scorer.extract makes them)"
            )


def describe(key: FeatureKey) -> str:
    """``input 0``, ``input 0 speed 0.9``."""
    return f"input {key[0]}" + ("" if key[1] is None else f" {key[1]}")


def run_extractor(extractor: Any, signals: list[np.ndarray], sampling_rate: int) -> list[Any]:
    """``extractor`` on each signal, through ``extract_batch`` when it has one and there are
    several (its results equal per-item calls by the extractor contract)."""
    batch = getattr(extractor, "extract_batch", None)
    if batch is not None and len(signals) > 1:
        return list(batch(signals, sampling_rate))
    return [extractor(signal, sampling_rate) for signal in signals]
