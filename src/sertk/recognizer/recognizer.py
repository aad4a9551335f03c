"""``Recognizer``: the one inference object behind the CLI, the REST server, the GUI and live input.

From a file to a prediction, every hop defined by the bundle::

    load_audio(path, sampling_rate=rate)        # 1. decode, downmix, resample
    -> scorer.preprocess(signal, rate)           # 2. the bundle's Preprocess (crop/pad, loudness)
    -> scorer.extract(items) -> scorer.score()   # 3. scorer: features (and test-time views)
                                                 #    -> normalisation -> model -> views combined
    -> Prediction                                # 4. label, confidence, probabilities

The scorer (``bundle.build_scorer()``, :mod:`sertk.inference`) does the same for the
cross-validation runner and ``sertk evaluate``, and with the same functions the training
pipeline ran, so a file gets exactly the features it got when the model was trained. The
Recognizer adds what only callers with files need: reading audio, batching, collecting errors
per item, attention weights as a time axis, and long recordings (:meth:`timeline`, read block by block:
:mod:`sertk.recognizer.long_audio`). In a batch,
hops 1-3 run on chunks of items in ``jobs`` worker processes (:mod:`sertk.parallel`), which the
Recognizer keeps from one batch to the next; the model (hop 3's scoring) runs here.
Every reading method takes ``max_duration`` (seconds, default 4 h; None: no limit): a longer
recording is refused from its header, before any large allocation
(:class:`~sertk.errors.AudioTooLongError`).

Importing this module costs numpy and soundfile only: torch (or onnxruntime, or transformers
for an SSL bundle) is imported when a bundle that needs it is loaded.

>>> recognizer = Recognizer.load("default")
>>> recognizer.predict_file("examples/03a02Wc.flac").label
'angry'
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from sertk.audio import DEFAULT_MAX_DURATION, check_signal, is_audio_source, load_audio, probe_audio
from sertk.audio.reader import open_source
from sertk.bundle import BACKENDS as BACKENDS  # re-exported
from sertk.bundle import Bundle, check_backend, load_bundle
from sertk.errors import AudioError, ConfigError, SertkError
from sertk.features.base import runs_own_threads
from sertk.features.voicing import check_speech
from sertk.parallel import Workers, check_jobs, chunk_length, plan_jobs
from sertk.recognizer.adaptation import Heard, Plan, SpeakerSummary, plan_adaptation
from sertk.recognizer.long_audio import (
    LONG_RECORDING,
    TimelineBlock,
    run_timeline,
    summarise,
    timeline_blocks,
)
from sertk.recognizer.prediction import Prediction, Timeline
from sertk.recognizer.timeline import DEFAULT_WINDOW as DEFAULT_WINDOW  # re-exported


class Recognizer:
    """Emotion predictions from audio with a model bundle of any kind (see the module docstring).

    Attributes: ``bundle``, ``scorer`` (its :class:`~sertk.inference.Scorer`), ``labels`` (the
    bundle's, in order), ``sampling_rate`` (the rate audio is read at), ``inputs`` (the
    scorer's ``(preprocess, extractor)`` pairs: one, except for an ensemble whose members use
    different features), ``preprocess`` and ``extractor`` (the first pair),
    ``speaker_adapted`` (needs speaker statistics), ``adaptive`` (can use them: a
    speaker-adapted or an adaptive bundle), ``has_attention``, ``device``, ``backend``,
    ``jobs`` (worker processes for batches; None: automatic, see :meth:`load`), ``sha256``
    (the bundle's content hash, carried in every Prediction and Timeline), ``speech_check``
    (whether clips are checked for speech first; False scores everything as speech, as sertk
    did before it had the check).
    """

    def __init__(
        self,
        bundle: Bundle,
        *,
        device: str = "cpu",
        backend: str = "torch",
        threads: int | None = None,
        jobs: int | None = None,
        speech_check: bool = True,
    ) -> None:
        self.bundle = bundle
        self.device = device
        self.backend = check_backend(backend)
        self.jobs = check_jobs(jobs)
        self._workers: Workers | None = None
        self.scorer = bundle.build_scorer(device=device, threads=threads)
        self.labels: tuple[str, ...] = self.scorer.labels
        self.sampling_rate: int = self.scorer.sampling_rate
        self.inputs = self.scorer.inputs
        self.preprocess, self.extractor = self.inputs[0]
        self.speaker_adapted = self.scorer.normalization == "speaker"
        self.adaptive = self.scorer.adaptation is not None
        self.speech_check = bool(speech_check)
        self.has_attention = self.scorer.has_attention
        self.sha256: str = bundle.content_hash

    @classmethod
    def load(
        cls,
        bundle: str | os.PathLike = "default",
        *,
        device: str = "cpu",
        backend: str = "torch",
        threads: int | None = None,
        jobs: int | None = None,
        sha256: str | None = None,
        speech_check: bool = True,
    ) -> Recognizer:
        """Load a bundle by name or path (``sertk.bundle.resolve_bundle``) onto ``device``.

        ``backend="onnx"`` runs a folder written by ``sertk export`` with onnxruntime (no
        torch); ``threads`` sets onnxruntime's intra-op threads. ``jobs``: worker processes
        that read and extract the items of a batch (None: one per core for batches of 4 items
        per core or more; 1 on a GPU or with an extractor that runs its own threads, such as
        an SSL encoder; see :mod:`sertk.parallel`). Results do not depend on it. ``sha256``
        pins the bundle: BundleError unless its content hash (``sertk info BUNDLE``) is exactly
        this one. ``speech_check=False`` turns the "no speech" check off.
        """
        loaded = load_bundle(bundle, backend=check_backend(backend), sha256=sha256)
        return cls(
            loaded, device=device, backend=backend, threads=threads, jobs=jobs,
            speech_check=speech_check,
        )  # fmt: skip

    def close(self) -> None:
        """Stop this recognizer's worker processes (a later batch starts them again)."""
        workers, self._workers = self._workers, None
        if workers is not None:
            workers.close()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"Recognizer({str(self.bundle.path)!r}, labels={list(self.labels)}, "
            f"features={[e.name for _, e in self.inputs]}, device={self.device!r})"
        )

    # --- single items ---------------------------------------------------------------------

    def predict_file(
        self,
        path: Any,
        *,
        statistics: Any = None,
        attention: bool = False,
        max_duration: float | None = DEFAULT_MAX_DURATION,
    ) -> Prediction:
        """Predict one file (a path, bytes or a binary file object); see :meth:`predict_batch`;
        ``statistics``: see :meth:`predict_signal`.

        >>> probabilities = Recognizer.load("default").predict_file("examples/15a02Ta.flac").probabilities
        >>> list(probabilities)  # the bundle's labels, in order
        ['neutral', 'happy', 'sad', 'angry', 'fearful', 'disgust', 'surprised']
        >>> max(probabilities, key=probabilities.get), round(sum(probabilities.values()), 6)
        ('sad', 1.0)
        """
        if statistics is None:
            self._refuse_single()
        options = {"statistics": statistics, "attention": attention, "max_duration": max_duration}
        return self.predict_batch([path], **options)[0]

    def predict_signal(
        self,
        signal: np.ndarray,
        sampling_rate: int,
        *,
        statistics: Any = None,
        attention: bool = False,
        max_duration: float | None = DEFAULT_MAX_DURATION,
    ) -> Prediction:
        """Predict one signal ``[samples]`` or ``[channels, samples]`` at ``sampling_rate`` Hz;
        ``statistics``: the speaker's kept statistics (see :meth:`predict_adapted`), the
        signal's own speech added to them before it is scored."""
        if statistics is None:
            self._refuse_single()
        options = {"statistics": statistics, "attention": attention, "max_duration": max_duration}
        return self.predict_batch([signal], sampling_rate=sampling_rate, **options)[0]

    def _refuse_single(self) -> None:
        if self.speaker_adapted:
            raise SertkError(
                f"{self.bundle.path} is speaker-adapted (trained on features normalised per "
                "speaker): one utterance cannot be normalised on its own; give several "
                "utterances of the speaker: predict_batch(items, speakers=[...]) (CLI: --adapt)"
            )

    # --- batches --------------------------------------------------------------------------

    def predict_batch(
        self,
        items: Sequence[Any],
        *,
        sampling_rate: int | None = None,
        batch_size: int = 16,
        speakers: Sequence[str] | None = None,
        statistics: Any = None,
        attention: bool = False,
        on_error: str = "raise",
        max_duration: float | None = DEFAULT_MAX_DURATION,
    ) -> list[Any]:
        """Predict several files and/or signals; one :class:`Prediction` per item, in order.

        Items are paths, bytes, binary files or signals (signals need ``sampling_rate``). Audio
        is read, checked for speech (a clip without any gets the label ``no speech``, see
        :class:`Prediction`), preprocessed and turned into features ``batch_size`` items at a
        time (the extractor's ``extract_batch``), in the recognizer's ``jobs`` worker processes
        (smaller chunks then, so each worker gets some); the model then scores all of them.
        ``speakers`` (one id per item) adapts a bundle that can adapt to each speaker's speech
        in this call (:meth:`predict_adapted`; required by a speaker-adapted bundle; other
        bundles ignore it). ``on_error="return"`` puts the SertkError of an unreadable item in
        its place instead of raising it. With test-time views, each item is also scored in every
        view and the probabilities combined (attention weights stay those of the item itself).

        An item longer than ``LONG_RECORDING`` (60 s; or a file that does not announce its
        length) is never loaded whole or cropped: its timeline is computed block by block
        (default options, ``speakers[i]`` as its speaker) and summarised, the windows'
        probabilities averaged weighted by the speech each covers (``Prediction.windows`` says
        how many; :mod:`sertk.recognizer.long_audio`). An item longer than ``max_duration``
        seconds is refused (:class:`~sertk.errors.AudioTooLongError`).
        """
        if speakers is not None and self.scorer.adaptation is None:
            self._check_batch(items, speakers, attention, on_error, batch_size, statistics)
            speakers = None  # documented: bundles that cannot adapt ignore speakers
        return self.predict_adapted(
            items, sampling_rate=sampling_rate, batch_size=batch_size, speakers=speakers,
            statistics=statistics, attention=attention, on_error=on_error,
            max_duration=max_duration,
        )[0]  # fmt: skip

    def predict_adapted(
        self,
        items: Sequence[Any],
        *,
        sampling_rate: int | None = None,
        batch_size: int = 16,
        speakers: Sequence[str] | None = None,
        statistics: Any = None,
        min_seconds: float | None = None,
        attention: bool = False,
        on_error: str = "raise",
        max_duration: float | None = DEFAULT_MAX_DURATION,
    ) -> tuple[list[Any], dict[str | None, SpeakerSummary]]:
        """:meth:`predict_batch` adapted to speakers, with a summary per speaker.

        Each speaker's statistics come from its items in this call that hold speech
        (``speakers``: one id per item; None with ``statistics``: all items one speaker),
        merged with ``statistics`` kept from before (one speaker's, or ``{speaker id:
        statistics}``, e.g. a session's; :attr:`SpeakerSummary.statistics` is what this call
        adds). A speaker with ``min_seconds`` of speech or more (default: the bundle's) is
        adapted; below that an adaptive bundle answers with its global model, a speaker-adapted
        one with an error for that speaker's items. See :mod:`sertk.recognizer.adaptation`.
        """
        items = self._check_batch(items, speakers, attention, on_error, batch_size, statistics)
        heard = self.hear(
            items, sampling_rate=sampling_rate, batch_size=batch_size, on_error=on_error,
            max_duration=max_duration, speakers=speakers,
        )  # fmt: skip  # 1-3: audio, speech, features
        plan = plan_adaptation(self.scorer, heard, speakers=speakers, prior=statistics,
                               min_seconds=min_seconds)  # fmt: skip  # whose statistics
        if plan.errors and on_error == "raise":
            raise next(iter(plan.errors.values()))
        return self.answer(heard, plan, attention=attention), plan.summaries  # 3-4: model

    def hear(
        self,
        items: Sequence[Any],
        *,
        sampling_rate: int | None = None,
        batch_size: int = 16,
        on_error: str = "raise",
        max_duration: float | None = DEFAULT_MAX_DURATION,
        speakers: Sequence[str] | None = None,
        parallel: bool = True,
    ) -> Heard:
        """Hops 1 to 3 of a batch: audio (``load_audio``), its speech check, the bundle's
        preprocessing and the features, in chunks of at most ``batch_size`` items on the
        recognizer's workers (``parallel=False``: here). A long recording is summarised
        (:meth:`predict_batch`); its Prediction is its entry in ``results``."""
        heard = Heard([None] * len(items), {}, {}, {})
        outcomes = self._read_and_extract(
            items, sampling_rate, batch_size, on_error, max_duration, speakers, parallel
        )
        for i, outcome in outcomes:
            if isinstance(outcome, SertkError | Prediction):  # an error, or a long recording
                heard.results[i] = outcome
            else:
                heard.durations[i], check, heard.features[i] = outcome
                if check is not None:
                    heard.checks[i] = check
        return heard

    def answer(self, heard: Heard, plan: Plan, *, attention: bool = False) -> list[Any]:
        """Hops 3 (the model) and 4: a :class:`Prediction` (or the item's SertkError) per item.
        Items that need statistics they do not have (a speaker-adapted bundle) are not scored."""
        results = list(heard.results)
        for i, error in plan.errors.items():
            results[i] = error
        needs = self.scorer.normalization == "speaker"
        good = [i for i in sorted(heard.features)
                if i not in plan.errors and not (needs and plan.statistics.get(i) is None)]  # fmt: skip
        scores = self.scorer.score(  # 3. scorer: model
            [heard.features[i] for i in good],
            statistics=[plan.statistics.get(i) for i in good], attention=attention,
        ) if good else None  # fmt: skip
        rate = (self.extractor.frame_rate or None) if attention else None
        rows = {i: row for row, i in enumerate(good)}
        for i in sorted(heard.features):  # 4. Prediction
            if i in plan.errors:
                continue
            check, row = heard.checks.get(i), rows.get(i)
            results[i] = Prediction.from_probabilities(
                self.labels, None if row is None else scores.probabilities[row],
                duration=heard.durations[i],
                attention=None if row is None else scores.attention[row], attention_rate=rate,
                no_speech=check.reason if check is not None else "",
                adaptation=plan.states.get(i), model_sha256=self.sha256,
            )  # fmt: skip
        return results

    def features(
        self,
        items: Sequence[Any],
        *,
        sampling_rate: int | None = None,
        input_index: int = 0,
        max_duration: float | None = DEFAULT_MAX_DURATION,
    ) -> list[np.ndarray]:
        """Features of each item from model input ``input_index`` (``[frames, dim]`` or
        ``[layers, frames, dim]``): what the model is given, before the bundle's normalisation
        (each item whole, whatever its length, up to ``max_duration`` seconds)."""
        processed = []
        for index, item in enumerate(items):
            signal, rate = self._read(item, sampling_rate, index, max_duration, summary=False)
            processed.append(self.scorer.preprocess(signal, rate))
        return [found[(input_index, None)] for found in self.scorer.extract(processed)]

    def _read(
        self, item: Any, sampling_rate: int | None, index: int, max_duration: float | None,
        speaker: str | None = None, *, summary: bool = True,
    ) -> tuple[np.ndarray, int] | Prediction:  # fmt: skip
        """1: a file read with ``load_audio`` at the scorer's rate, or a checked signal; with
        ``summary``, a recording longer than ``LONG_RECORDING`` is summarised instead."""
        if is_audio_source(item):
            opened = open_source(item)  # a stream is read once, whatever follows
            duration = probe_audio(opened, max_duration=max_duration).duration
            if summary and (duration is None or duration > LONG_RECORDING):
                return self._summary(opened, None, opened.name, speaker, max_duration)
            return load_audio(opened, sampling_rate=self.sampling_rate, max_duration=max_duration)
        if sampling_rate is None:
            raise AudioError(
                f"item {index}: an in-memory signal needs its sampling_rate; pass sampling_rate="
            )
        signal = check_signal(item, sampling_rate, name=f"item {index}")
        if summary and signal.shape[-1] / sampling_rate > LONG_RECORDING:
            return self._summary(signal, sampling_rate, f"item {index}", speaker, max_duration)
        return signal, int(sampling_rate)

    def _summary(self, source, sampling_rate, name, speaker, max_duration) -> Prediction:
        """One label for a long recording: its timeline, summarised (``long_audio``)."""
        if self.speaker_adapted and speaker is None:
            self._refuse_single()
        steps = timeline_blocks(
            self, source, sampling_rate=sampling_rate, speaker=speaker, max_duration=max_duration
        )
        return summarise(run_timeline(steps), name=name)

    def _read_and_extract(
        self, items, sampling_rate, batch_size, on_error, max_duration, speakers, parallel
    ) -> Iterator[tuple]:
        """Hops 1-3 (features) of every item, chunk by chunk on this recognizer's workers:
        ``(index, (duration, speech check, features))``, ``(index, Prediction)`` for a long
        recording (summarised), or ``(index, SertkError)`` with ``on_error="return"``."""
        # file objects cannot travel to a worker process: such a batch is read here
        portable = parallel and all(
            isinstance(item, str | os.PathLike | bytes | np.ndarray) for item in items
        )
        own_threads = self.device != "cpu" or any(runs_own_threads(e) for _, e in self.inputs)
        jobs = plan_jobs(self.jobs if portable else 1, items=len(items), own_threads=own_threads)
        size = chunk_length(len(items), jobs, limit=batch_size)
        chunks = [
            (sampling_rate, on_error, max_duration,
             [(i, items[i], None if speakers is None else speakers[i])
              for i in range(start, min(start + size, len(items)))])
            for start in range(0, len(items), size)
        ]  # fmt: skip
        if jobs > 1 and (self._workers is None or self._workers.jobs != jobs):
            self.close()
            self._workers = Workers(self._chunk_features, jobs=jobs)
        workers = self._workers if jobs > 1 else Workers(self._chunk_features, jobs=1)
        for outcomes in workers.map(chunks):
            yield from outcomes

    def _chunk_features(self, chunk: tuple) -> list[tuple[int, Any]]:
        """Hops 1-3 of one chunk ``(sampling_rate, on_error, max_duration, [(index, item,
        speaker), ...])``."""
        sampling_rate, on_error, max_duration, entries = chunk
        processed, durations, checks, errors, summaries = {}, {}, {}, {}, {}
        for i, item, speaker in entries:
            try:
                loaded = self._read(item, sampling_rate, i, max_duration, speaker)
                if isinstance(loaded, Prediction):  # a long recording, summarised
                    summaries[i] = loaded
                    continue
                signal, rate = loaded  # 1. load_audio
                if self.speech_check:  # no speech: no emotion (the label says so)
                    checks[i] = check_speech(signal, rate)
                processed[i] = self.scorer.preprocess(signal, rate)  # 2. preprocess
                durations[i] = signal.shape[-1] / rate
            except SertkError as error:
                if on_error == "raise":
                    raise
                errors[i] = error
        found = self._extract(processed, errors, on_error)  # 3. scorer: features
        outcomes = {**summaries, **errors}
        return [
            (i, outcomes[i] if i in outcomes else (durations[i], checks.get(i), found[i]))
            for i, *_ in entries
        ]

    def _extract(self, processed: dict[int, Any], errors: dict, on_error: str) -> dict[int, Any]:
        """3 (features) of a batch; when it fails and ``on_error="return"``, item by item,
        so each failing item gets its own error in ``errors``."""
        order = sorted(processed)
        if not order:
            return {}
        try:
            extracted = self.scorer.extract([processed[i] for i in order])
        except SertkError:
            if on_error == "raise":
                raise
        else:
            return dict(zip(order, extracted, strict=True))
        found = {}
        for i in order:
            try:
                found[i] = self.scorer.extract([processed[i]])[0]
            except SertkError as error:
                errors[i] = error
        return found

    def _check_batch(self, items, speakers, attention, on_error, batch_size, statistics=None):
        if isinstance(items, np.ndarray) or is_audio_source(items):
            raise SertkError(
                "predict_batch takes a list of items; wrap a single file or signal in a list "
                "(or use predict_file / predict_signal)"
            )
        items = list(items)
        if not items:
            raise SertkError("nothing to predict: give at least one file or signal")
        if on_error not in ("raise", "return"):
            raise ConfigError(f"on_error must be 'raise' or 'return', got {on_error!r}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigError(f"batch_size must be a positive integer, got {batch_size!r}")
        if speakers is not None and len(speakers) != len(items):
            raise SertkError(f"got {len(items)} items but {len(speakers)} speakers; give one each")
        if self.speaker_adapted and speakers is None and statistics is None:
            self._refuse_single()
        if attention and not self.has_attention:
            raise SertkError(
                f"the model of {self.bundle.path} ({self.bundle.model_name}) has no attention "
                "weights; check recognizer.has_attention before asking for them"
            )
        return items

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
        adapt: bool = False,
        vad: Mapping[str, Any] | None = None,
        batch_size: int = 16,
        max_duration: float | None = DEFAULT_MAX_DURATION,
        smoothing: int | str | None = None,
    ) -> Timeline:
        """Emotion over time of a long recording (a file or a signal with ``sampling_rate``).

        Speech is found with the rule of :func:`sertk.audio.speech_regions` (``vad``: its
        ``floor_db``, an absolute floor in dBFS, and ``margin_db`` over the noise floor, the rule
        the live gate uses); regions shorter than ``min_speech`` seconds count as non-speech.
        Stretches without speech become ``silence`` segments. Inside each region, windows of
        ``window`` seconds (default: the bundle's crop duration, so the model sees each window
        whole) every ``hop`` seconds are predicted in batches; probabilities are averaged over
        ``smooth`` seconds centred on each window, within its region (see
        :mod:`sertk.smoothing`; 0: none); adjacent windows with the same label merge into
        segments. A window longer than the bundle's crop duration is cropped by the bundle's
        policy, as training utterances were. A window with sound but no speech
        (:class:`Prediction` ``speech``) gives a ``no speech`` segment. ``adapt=True`` (session
        adaptation; a bundle that can adapt) normalises every window with the statistics of the
        recording's own speech windows; a speaker-adapted bundle needs it (or ``speaker``, which
        names the one speaker and implies it). The recording is read block by block, in
        bounded memory (:mod:`sertk.recognizer.long_audio`); one longer than ``max_duration``
        seconds is refused. ``smoothing`` (a number of windows) is deprecated: it works, with
        a DeprecationWarning, for one release.

        >>> import numpy as np, soundfile
        >>> from sertk.audio import load_audio
        >>> angry, sad = (load_audio(f"examples/{name}.flac")[0] for name in ("03a02Wc", "15a02Ta"))
        >>> silence = np.zeros(16000, np.float32)
        >>> soundfile.write("talk.wav", np.concatenate([angry, silence, sad]), 16000)
        >>> recognizer = Recognizer.load("default")
        >>> for s in recognizer.timeline("talk.wav", smooth=1.0).segments:
        ...     print(f"{s.start:4.1f} {s.end:4.1f} {s.label}")
         0.0  1.5 angry
         1.5  2.5 silence
         2.5  4.8 sad
        """
        options = {
            "sampling_rate": sampling_rate, "window": window, "hop": hop, "smooth": smooth,
            "smoothing": smoothing, "min_speech": min_speech, "speaker": speaker, "adapt": adapt,
            "vad": vad,
            "batch_size": batch_size, "max_duration": max_duration,
        }  # fmt: skip
        return run_timeline(timeline_blocks(self, source, **options))

    def timeline_blocks(self, source: Any, **options: Any) -> Iterator[TimelineBlock]:
        """:meth:`timeline` one bounded step at a time (same options): an iterator of
        :class:`~sertk.recognizer.long_audio.TimelineBlock` (a block of audio read while
        finding speech, then a batch of ``batch_size`` windows scored, with their raw
        probabilities); the last one holds the Timeline. Options, the header and
        ``max_duration`` are checked when it is called; a caller interleaves other work between
        steps or shows progress.

        >>> recognizer = Recognizer.load("default")
        >>> for step in recognizer.timeline_blocks("examples/03a02Wc.flac", hop=0.5):
        ...     print(step.stage, round(step.done, 2), round(step.total, 2))
        speech 1.5 1.5
        windows 1 1
        done 1 1
        """
        options.setdefault("max_duration", DEFAULT_MAX_DURATION)
        return timeline_blocks(self, source, **options)
