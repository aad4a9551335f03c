"""``Recognizer``: the one inference object behind the CLI, the REST server and the GUI.

From a file to a prediction in four hops, all of them defined by the bundle::

    load_audio(path, sampling_rate=rate)            # 1. decode, downmix, resample
    -> preprocess(signal, rate)                      # 2. the bundle's Preprocess (crop/pad...)
    -> extractor.extract_batch(signals, rate)        # 3. the bundle's feature extractor
    -> scorer.predict_inputs([features])             # 4. normalisation + model + softmax
    -> Prediction

(An ensemble whose members read different features runs hops 2-3 once per feature input.)

These are the very functions the training pipeline ran (``sertk.features.cache.iter_features``
reads files with ``load_audio`` at the preprocessing rate and applies the same ``Preprocess`` in
inference mode), so a file gets exactly the features it got when the model was trained.

Importing this module costs numpy and soundfile only: torch (or transformers, for an SSL
bundle) is imported when a bundle that needs it is loaded.

>>> recognizer = Recognizer.load("runs/emodb/final/bundle")  # doctest: +SKIP
>>> recognizer.predict_file("speech.wav").label  # doctest: +SKIP
'angry'
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from sertk.audio import check_signal, load_audio
from sertk.errors import AudioError, BundleError, SertkError
from sertk.recognizer.backend import BACKENDS as BACKENDS  # re-exported
from sertk.recognizer.backend import (
    check_backend,
    check_batch_options,
    is_audio_source,
    load_scorer,
    score_attention,
    view_signals,
)
from sertk.recognizer.prediction import Prediction, Timeline
from sertk.recognizer.resolve import resolve_bundle
from sertk.recognizer.timeline import DEFAULT_WINDOW as DEFAULT_WINDOW  # re-exported
from sertk.recognizer.timeline import recording_timeline


def _item_name(item: Any, index: int) -> str:
    return str(item) if isinstance(item, str | os.PathLike) else f"item {index}"


class Recognizer:
    """Emotion predictions from audio with a model bundle of any kind (see the module docstring).

    Attributes: ``bundle``, ``labels`` (the bundle's, in order), ``sampling_rate`` (the rate
    audio is read at), ``inputs`` (one ``(Preprocess, extractor)`` pair per feature input of the
    model: one, except for an ensemble whose members use different features), ``preprocess``
    and ``extractor`` (the first pair), ``scorer`` (the ``sertk.inference.BundleModel``),
    ``speaker_adapted``, ``has_attention``.
    """

    def __init__(
        self,
        bundle: Any,
        *,
        device: str = "cpu",
        backend: str = "torch",
        threads: int | None = None,
    ) -> None:
        self.bundle = bundle
        self.device = device
        self.backend = check_backend(backend)
        self.scorer, extractors, self.has_attention = load_scorer(
            bundle, backend=self.backend, device=device, threads=threads
        )
        self.labels: tuple[str, ...] = tuple(self.scorer.labels)
        self.sampling_rate: int = self.scorer.sampling_rate
        self.inputs = tuple(
            (item.build_preprocess(), extractor)
            for item, extractor in zip(self.scorer.inputs, extractors, strict=True)
        )
        self.preprocess, self.extractor = self.inputs[0]
        self.speaker_adapted = self.scorer.normalization == "speaker"
        # test-time augmentation: each item is also scored in these views (hops 2b-4)
        self.tta_views: tuple[Any, ...] = tuple(self.scorer.tta_views)
        if any(m.tta_views for m in getattr(self.scorer, "members", ())):
            raise BundleError(
                f"{bundle.path}: an ensemble whose members use test-time views "
                "(tta_speeds, tta_crops) cannot be run by the Recognizer; ensemble bundles "
                "trained without them, or predict with the member bundles"
            )

    @classmethod
    def load(
        cls,
        bundle: str | os.PathLike = "default",
        *,
        device: str = "cpu",
        backend: str = "torch",
        threads: int | None = None,
    ) -> Recognizer:
        """Load a bundle by name or path (:func:`resolve_bundle`) onto ``device``.

        ``backend="onnx"`` runs a folder written by ``sertk export`` with onnxruntime (no
        torch); ``threads`` sets onnxruntime's intra-op threads.
        """
        path = resolve_bundle(bundle)
        if check_backend(backend) == "onnx":
            from sertk.export import load_onnx_bundle

            return cls(load_onnx_bundle(path), backend="onnx", threads=threads)
        from sertk.bundle import load_bundle

        return cls(load_bundle(path), device=device)

    def __repr__(self) -> str:
        return (
            f"Recognizer({str(self.bundle.path)!r}, labels={list(self.labels)}, "
            f"features={[e.name for _, e in self.inputs]}, device={self.device!r})"
        )

    # --- single items ---------------------------------------------------------------------

    def predict_file(self, path: Any, *, attention: bool = False) -> Prediction:
        """Predict one file (a path, bytes or a binary file object).

        >>> Recognizer.load(bundle_dir).predict_file("speech.wav").probabilities  # doctest: +SKIP
        {'neutral': 0.1, 'happy': 0.2, 'angry': 0.7}
        """
        self._refuse_single()
        return self.predict_batch([path], attention=attention)[0]

    def predict_signal(
        self, signal: np.ndarray, sampling_rate: int, *, attention: bool = False
    ) -> Prediction:
        """Predict one signal ``[samples]`` or ``[channels, samples]`` at ``sampling_rate`` Hz."""
        self._refuse_single()
        return self.predict_batch([signal], sampling_rate=sampling_rate, attention=attention)[0]

    def _refuse_single(self) -> None:
        if self.speaker_adapted:
            raise SertkError(
                f"{self.bundle.path} is speaker-adapted (trained on features normalised per "
                "speaker): one utterance cannot be normalised on its own; give several "
                "utterances of the speaker: predict_batch(items, speakers=[...]) (CLI: --speaker)"
            )

    # --- batches --------------------------------------------------------------------------

    def predict_batch(
        self,
        items: Sequence[Any],
        *,
        sampling_rate: int | None = None,
        batch_size: int = 16,
        speakers: Sequence[str] | None = None,
        attention: bool = False,
        on_error: str = "raise",
    ) -> list[Any]:
        """Predict several files and/or signals; one :class:`Prediction` per item, in order.

        Items are paths, bytes, binary files or signals (signals need ``sampling_rate``). Audio
        is read, preprocessed and turned into features ``batch_size`` items at a time (the
        extractor's ``extract_batch``); the model then runs over all of them in batches.
        ``speakers`` (one id per item) is required by a speaker-adapted bundle, whose
        per-speaker statistics use all items of a speaker in this call; other bundles ignore it.
        ``on_error="return"`` puts the SertkError of an unreadable item in its place instead of
        raising it. With test-time views, each item is also scored in every view and the
        probabilities combined (attention weights stay those of the item itself).
        """
        if isinstance(items, np.ndarray) or is_audio_source(items):
            raise SertkError(
                "predict_batch takes a list of items; wrap a single file or signal in a list "
                "(or use predict_file / predict_signal)"
            )
        items = list(items)
        self._check_batch_options(items, speakers, attention, on_error, batch_size)
        results: list[Any] = [None] * len(items)
        features: dict[int, list[np.ndarray]] = {}  # item -> one array per model input
        views: dict[Any, dict] = {view: {} for view in self.tta_views}  # the same, per view
        durations: dict[int, float] = {}
        for start in range(0, len(items), batch_size):
            signals = {}
            for i in range(start, min(start + batch_size, len(items))):
                try:
                    signals[i], durations[i] = self._model_inputs(items[i], sampling_rate, i)
                except SertkError as error:
                    if on_error == "raise":
                        raise
                    results[i] = error
            features.update(self._extract(signals, results, on_error))
            for view, found in views.items():
                found.update(self._extract(view_signals(self.inputs, signals, features, view),
                                           results, on_error))  # fmt: skip
        good = [i for i in sorted(features) if all(i in found for found in views.values())]
        if not good:
            return results
        chosen = None if speakers is None else [speakers[i] for i in good]

        def per_input(found: dict[int, list[np.ndarray]]) -> list[list[np.ndarray]]:
            return [[found[i][k] for i in good] for k in range(len(self.inputs))]

        probabilities, weights = self._score(per_input(features), chosen, attention)
        if views:
            from sertk.views import combine_views

            others = [self._score(per_input(found), chosen, False)[0] for found in views.values()]
            probabilities = combine_views([probabilities, *others])
        rate = (self.extractor.frame_rate or None) if attention else None
        for row, i in enumerate(good):
            results[i] = Prediction.from_probabilities(
                self.labels,
                probabilities[row],
                duration=durations[i],
                attention=weights[row],
                attention_rate=rate,
            )
        return results

    def features(
        self, items: Sequence[Any], *, sampling_rate: int | None = None, input_index: int = 0
    ) -> list[np.ndarray]:
        """Features of each item from model input ``input_index`` (``[frames, dim]`` or
        ``[layers, frames, dim]``): what the model is given, before the bundle's normalisation."""
        signals = {i: self._model_inputs(x, sampling_rate, i)[0] for i, x in enumerate(items)}
        extracted = self._extract(signals, [None] * len(signals), "raise")
        return [extracted[i][input_index] for i in range(len(signals))]

    def _check_batch_options(self, items, speakers, attention, on_error, batch_size) -> None:
        check_batch_options(items, speakers, on_error, batch_size)  # those the bundle has no say in
        if self.speaker_adapted and speakers is None:
            self._refuse_single()
        if attention and not self.has_attention:
            raise SertkError(
                f"the model of {self.bundle.path} ({self.bundle.model_name}) has no attention "
                "weights; check recognizer.has_attention before asking for them"
            )

    def _model_inputs(self, item: Any, sampling_rate: int | None, index: int):
        """Hops 1-2: the item read (``load_audio``) and preprocessed for each model input.

        Returns ``([float32 [samples] per input], input seconds)``.
        """
        if is_audio_source(item):
            signal, rate = load_audio(item, sampling_rate=self.sampling_rate)
        elif sampling_rate is None:
            raise AudioError(
                f"item {index}: an in-memory signal needs its sampling_rate; pass sampling_rate="
            )
        else:
            signal = check_signal(item, sampling_rate, name=_item_name(item, index))
            rate = int(sampling_rate)
        return [preprocess(signal, rate) for preprocess, _ in self.inputs], signal.shape[-1] / rate

    def _extract(self, signals: dict[int, list], results: list, on_error: str) -> dict:
        """Hop 3: per item, the features of each input (``extract_batch`` over the items); with
        ``on_error="return"`` an item whose extraction fails gets its error in ``results``."""
        order = sorted(signals)
        features: dict[int, list[np.ndarray]] = {i: [] for i in order}
        for k, (preprocess, extractor) in enumerate(self.inputs):
            batch = getattr(extractor, "extract_batch", None)
            extracted = None
            if batch is not None and len(order) > 1:
                try:
                    extracted = batch([signals[i][k] for i in order], preprocess.sampling_rate)
                except SertkError:
                    if on_error == "raise":
                        raise
            for position, i in enumerate(order):
                if i not in features:
                    continue  # failed on an earlier input
                try:
                    if extracted is not None:
                        features[i].append(extracted[position])
                    else:
                        features[i].append(extractor(signals[i][k], preprocess.sampling_rate))
                except SertkError as error:
                    if on_error == "raise":
                        raise
                    results[i] = error
                    del features[i]
        return features

    def _score(self, per_input: list[list[np.ndarray]], speakers, attention: bool):
        """Hop 4: probabilities ``[n, classes]`` and per-item attention ``[frames]`` (or None)."""
        if not attention:
            probabilities = self.scorer.predict_inputs(per_input, speakers=speakers)
            return probabilities, [None] * len(per_input[0])
        return score_attention(
            self.scorer, per_input[0], speakers, backend=self.backend, device=self.device
        )

    # --- long recordings ------------------------------------------------------------------

    def timeline(
        self,
        source: Any,
        *,
        sampling_rate: int | None = None,
        window: float | None = None,
        hop: float = 1.0,
        smooth: float = 0.0,
        min_speech: float = 0.5,
        speaker: str | None = None,
        vad: Mapping[str, Any] | None = None,
        batch_size: int = 16,
        smoothing: int | str | None = None,
    ) -> Timeline:
        """Emotion over time of a long recording (a file or a signal with ``sampling_rate``).

        Speech is found with :func:`sertk.audio.speech_regions` (``vad``: its ``floor_db``, an
        absolute floor in dBFS, and ``margin_db`` over the noise floor, the rule the live gate
        uses); regions shorter than ``min_speech`` seconds count as non-speech. Stretches
        without speech become ``silence`` segments. Inside each region, windows of ``window``
        seconds (default: the bundle's crop duration, so the model sees each window whole)
        every ``hop`` seconds are predicted in batches; probabilities are averaged over
        ``smooth`` seconds centred on each window, within its region (see
        :mod:`sertk.smoothing`; 0: none); adjacent windows with the same label merge into
        segments. A window longer than the bundle's crop duration is
        cropped by the bundle's policy, as training utterances were. A speaker-adapted bundle
        needs ``speaker`` (all windows are then that speaker's utterances). ``smoothing`` (a
        number of windows) is deprecated: it works, with a DeprecationWarning, for one release.

        >>> for s in recognizer.timeline("meeting.wav", smooth=3.0).segments:  # doctest: +SKIP
        ...     print(f"{s.start:6.1f} {s.end:6.1f} {s.label}")
        """
        return recording_timeline(
            self,
            source,
            sampling_rate=sampling_rate,
            window=window,
            hop=hop,
            smooth=smooth,
            smoothing=smoothing,
            min_speech=min_speech,
            speaker=speaker,
            vad=vad,
            batch_size=batch_size,
        )
