"""``StreamingEngine``: emotion while someone speaks, from any stream of audio blocks.

Audio blocks go into a fixed ring buffer (``feed``, from any thread; ``start(source)`` runs a
feeder thread over a source from :mod:`sertk.live.sources`). A worker thread analyses the newest
``window`` seconds every ``hop`` seconds of *audio* time, from the moment a full window has
arrived (a stream that ends sooner is analysed once, whole): a voice-activity gate first
(silence is reported as silence, without calling the model), then ``predict``, then the
probabilities are averaged over the last ``smooth`` seconds of speech (:mod:`sertk.smoothing`,
the definition timelines use too).

Real-time mode (default) keeps latency bounded: when analysis is slower than the audio, the
worker jumps to the newest due window and reports how many it skipped. ``deterministic=True``
analyses every hop in order instead, holding the feeder back when the buffer would overwrite
audio still to be analysed: results then depend on the audio alone (files, tests).

The engine needs only ``predict(signal, sampling_rate)`` returning something with
``probabilities`` (a ``{label: p}`` mapping, as :class:`sertk.recognizer.Prediction` has), a
mapping, or a ``[classes]`` array, plus the label list, so it runs without any GUI and with any
model. A prediction with ``speech`` False (sound the gate let through, but no speech in it: a
tone, a hum) becomes a ``no speech`` result; one with an ``adaptation`` state passes it on
(:meth:`from_recognizer` with an adaptive bundle: the session's running statistics, see
:class:`sertk.recognizer.adaptation.Session`). Memory is bounded: the ring buffer is
preallocated, the history is a bounded deque and a session's statistics are sums per feature.

>>> recognizer = Recognizer.load("default")  # needs a microphone  # doctest: +SKIP
>>> with StreamingEngine.from_recognizer(recognizer, on_result=print) as engine:  # needs a microphone  # doctest: +SKIP
...     engine.start(MicrophoneSource())
...     time.sleep(10)
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import ConfigError, SertkError
from sertk.live import _checks
from sertk.live.buffer import RingBuffer
from sertk.live.result import NO_SPEECH, SILENCE, Result, save_history
from sertk.live.vad import EnergyGate, level_db
from sertk.parallel import limit_blas
from sertk.recognizer.adaptation import Session
from sertk.smoothing import LIVE_SMOOTH, TrailingAverage

Predict = Callable[[np.ndarray, int], Any]


class StreamingEngine:
    """Windowed, gated, smoothed emotion analysis of a live stream (see the module docstring).

    ``buffer``, ``window`` and ``hop`` are seconds (``buffer >= window + hop``); ``smooth`` is
    the span in seconds over which probabilities are averaged, ending at each result (0: none);
    ``vad`` is True (an :class:`EnergyGate`), False (score every window) or any
    ``gate(window, sampling_rate) -> bool`` (its ``reset()``, if any, is called on start);
    ``history`` is the most results kept (None keeps all: unbounded). ``on_result(result)`` and
    ``on_error(exception)`` run on the worker thread. ``smoothing`` (the weight of the newest
    window in an exponential average) is deprecated: it is converted to ``smooth`` with a
    DeprecationWarning, for one release.
    """

    def __init__(
        self,
        predict: Predict,
        *,
        labels: Sequence[str],
        sampling_rate: int = 16000,
        buffer: float = 5.0,
        window: float = 3.0,
        hop: float = 0.5,
        smooth: float = LIVE_SMOOTH,
        vad: bool | Callable[[np.ndarray, int], bool] = True,
        deterministic: bool = False,
        on_result: Callable[[Result], Any] | None = None,
        on_error: Callable[[BaseException], Any] | None = None,
        history: int | None = 10_000,
        smoothing: float | None = None,
    ) -> None:
        self.labels = _checks.labels(labels)
        self.sampling_rate = _checks.rate(sampling_rate)
        self.window, self.hop, self.buffer = _checks.timing(window, hop, buffer)
        self.smooth = TrailingAverage.span_of(smooth, smoothing, hop=self.hop)
        self.gate = _checks.gate(vad, EnergyGate)
        self.deterministic = bool(deterministic)
        self.predict, self.on_result, self.on_error = predict, on_result, on_error
        self._hop_n = round(self.hop * self.sampling_rate)
        self._window_n = round(self.window * self.sampling_rate)
        self._ring = RingBuffer(round(self.buffer * self.sampling_rate))
        self._history: collections.deque[Result] = collections.deque(
            maxlen=_checks.history(history)
        )
        self._cond = threading.Condition()
        self._reset_state()

    @classmethod
    def from_recognizer(
        cls, recognizer: Any, *, adapt: bool | None = None, min_seconds: float | None = None,
        **options: Any,
    ) -> StreamingEngine:  # fmt: skip
        """An engine over a :class:`sertk.recognizer.Recognizer`: its ``predict_signal``, labels
        and sampling rate; ``window`` defaults to the bundle's crop duration (or 3 s). From here
        on the process's BLAS runs one thread (:func:`sertk.parallel.limit_blas`), so the
        analysis does not fight the audio and UI threads for the cores.

        ``adapt`` (default: when the bundle is adaptive) keeps the session's running
        statistics (:class:`sertk.recognizer.adaptation.Session`): the global model answers
        until ``min_seconds`` (default: the bundle's) of speech were heard, then the adapted
        one; each result's ``adaptation`` says which."""
        limit_blas(1)
        preprocess = getattr(recognizer, "preprocess", None)
        duration = getattr(preprocess, "duration", None)
        window = options.setdefault("window", duration or 3.0)
        hop = options.get("hop", 0.5)
        if "buffer" not in options and all(isinstance(x, int | float) for x in (window, hop)):
            options["buffer"] = max(5.0, window + hop)  # room for a window and a hop
        if adapt is None:
            adapt = bool(getattr(recognizer, "adaptive", False)) and not recognizer.speaker_adapted
        predict = recognizer.predict_signal
        if adapt:
            predict = Session(recognizer, step=hop, min_seconds=min_seconds)
        return cls(
            predict,
            labels=recognizer.labels,
            sampling_rate=recognizer.sampling_rate,
            **options,
        )

    def _reset_state(self) -> None:
        self._arrivals: collections.deque[tuple[int, float]] = collections.deque()
        self._next_end = self._window_n  # absolute sample index where the next window ends
        self._last_end = 0
        self._ended = self._stopping = False
        self._average = TrailingAverage(span=self.smooth, hop=self.hop)
        self._gated_until = 0  # the end (sample) of the last window the gate saw
        self._threads: list[threading.Thread] = []
        self._source: Any = None
        self._done = threading.Event()
        self.error: BaseException | None = None
        self._stats = {"results": 0, "speech": 0, "silence": 0, "no_speech": 0, "skipped": 0}
        self._inference = {"count": 0, "total_s": 0.0, "max_s": 0.0, "max_latency_s": 0.0}

    # --- input ----------------------------------------------------------------------------

    def feed(self, block: np.ndarray) -> None:
        """Add float32 ``[samples]`` audio at ``sampling_rate``. In deterministic mode this waits
        while the buffer would overwrite audio not analysed yet."""
        block = _checks.block(block)
        for start in range(0, len(block), self._hop_n):
            self._feed_piece(block[start : start + self._hop_n])

    def _feed_piece(self, piece: np.ndarray) -> None:
        with self._cond:
            if self._ended:
                raise SertkError("audio fed after end_of_stream(); start a new engine")
            while self.deterministic and self._would_overwrite(len(piece)):
                if self._stopping or self._done.is_set():
                    return
                self._cond.wait(0.5)
            self._ring.write(piece)
            self._arrivals.append((self._ring.total, time.monotonic()))
            while len(self._arrivals) > 1 and self._arrivals[0][0] <= self._ring.oldest:
                self._arrivals.popleft()
            self._cond.notify_all()

    def _would_overwrite(self, size: int) -> bool:
        needed_from = self._next_end - self._window_n  # start of the next window to analyse
        return self._ring.total + size - self._ring.capacity > needed_from

    def end_of_stream(self) -> None:
        """No more audio: the worker analyses what is due (plus a last, shorter hop) and ends."""
        with self._cond:
            self._ended = True
            self._cond.notify_all()

    # --- running --------------------------------------------------------------------------

    def start(self, source: Iterable[np.ndarray] | None = None) -> StreamingEngine:
        """Start the worker, and a feeder thread over ``source`` (blocks at ``sampling_rate``;
        ``end_of_stream`` is called when it runs out). Without a source, call ``feed``."""
        if self._threads:
            raise SertkError("the engine is already started; stop() it and make a new one")
        reset = getattr(self.gate, "reset", None)
        if callable(reset):
            reset()  # a gate that learns the background starts afresh with the stream
        if source is not None:
            rate = getattr(source, "sampling_rate", self.sampling_rate)
            if rate != self.sampling_rate:
                raise ConfigError(
                    f"the source gives {rate} Hz audio but the engine expects "
                    f"{self.sampling_rate} Hz; open the source with sampling_rate="
                    f"{self.sampling_rate}"
                )
            self._source = source
        self._spawn(self._work, "sertk-live-worker")
        if source is not None:
            self._spawn(self._pump, "sertk-live-feeder")
        return self

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the stream has ended and been analysed (or failed); True when finished."""
        return self._done.wait(timeout)

    def stop(self, *, timeout: float = 5.0) -> None:
        """Stop the source and the threads (results already made stay in ``history``)."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        close = getattr(self._source, "close", None)
        if close is not None:
            close()
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def run(self, source: Iterable[np.ndarray], *, timeout: float | None = None) -> list[Result]:
        """Analyse ``source`` to its end (or ``timeout`` seconds); returns the history. Raises
        the worker's or feeder's error as a SertkError."""
        try:
            self.start(source)
            self.wait(timeout)
        finally:
            self.stop()
        self.raise_error()
        return self.history

    def raise_error(self) -> None:
        """Raise the error that stopped the engine, if any (SertkErrors as they are)."""
        if self.error is None:
            return
        if isinstance(self.error, SertkError):
            raise self.error
        raise SertkError(
            f"live analysis failed: {type(self.error).__name__}: {self.error}"
        ) from self.error

    def __enter__(self) -> StreamingEngine:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _pump(self) -> None:
        try:
            for block in self._source:
                if self._stopping or self._done.is_set():
                    break
                self.feed(block)
        except BaseException as error:  # surfaced through engine.error / on_error
            self._fail(error)
        finally:
            self.end_of_stream()

    def _fail(self, error: BaseException) -> None:
        with self._cond:
            if self.error is None:
                self.error = error
            self._stopping = True
            self._cond.notify_all()
        self._done.set()
        if self.on_error is not None:
            try:
                self.on_error(error)
            except Exception:  # noqa: S110 - the first error is already recorded
                pass

    # --- analysis (worker thread) ---------------------------------------------------------

    def _work(self) -> None:
        try:
            while (job := self._next_job()) is not None:
                result = self._analyse(*job)
                with self._cond:
                    self._history.append(result)
                    self._count(result)
                if self.on_result is not None:
                    self.on_result(result)
        except BaseException as error:
            self._fail(error)
        finally:
            self._done.set()

    def _next_job(self) -> tuple[int, np.ndarray, int, float] | None:
        """Wait for the next due window: ``(end, samples, skipped, arrival)``, None when done."""
        with self._cond:
            while not self._stopping:
                total = self._ring.total
                if total >= self._next_end:
                    steps = 0 if self.deterministic else (total - self._next_end) // self._hop_n
                    end = self._next_end + steps * self._hop_n
                    self._next_end = end + self._hop_n
                    return self._job(end, steps)
                if self._ended:
                    return self._job(total, 0) if total > self._last_end else None
                self._cond.wait(0.5)
            return None

    def _job(self, end: int, skipped: int) -> tuple[int, np.ndarray, int, float]:
        self._last_end = end
        samples = self._ring.read(end, min(self._window_n, end))
        arrival = next(t for index, t in self._arrivals if index >= end)
        self._cond.notify_all()  # a feeder held back in deterministic mode may go on
        return end, samples, skipped, arrival

    def _analyse(self, end: int, samples: np.ndarray, skipped: int, arrival: float) -> Result:
        rate = self.sampling_rate
        speech = self.gate is None or self._gate(samples, end)
        label, confidence, probabilities, adaptation = SILENCE, None, None, None
        if speech:
            began = time.perf_counter()
            answer = self.predict(samples, rate)
            self._note_inference(time.perf_counter() - began)
            adaptation = getattr(answer, "adaptation", None)
            speech = getattr(answer, "speech", True) is not False
            label = SILENCE if speech else NO_SPEECH  # sound, but no speech: no emotion
        if speech:
            row = _checks.probability_row(answer, self.labels)
            average = self._average.add(end / rate, row)
            best = int(average.argmax())
            label, confidence = self.labels[best], float(average[best])
            probabilities = dict(zip(self.labels, map(float, average), strict=True))
        else:
            self._average.restart(end / rate)  # a new stretch of speech starts afresh
        return Result(
            time=end / rate,
            start=(end - len(samples)) / rate,
            label=label,
            confidence=confidence,
            probabilities=probabilities,
            level_db=level_db(samples[-self._hop_n :]),
            speech=speech,
            latency_s=time.monotonic() - arrival,
            skipped=skipped,
            wall_time=time.time(),
            adaptation=adaptation,
        )

    def _gate(self, samples: np.ndarray, end: int) -> bool:
        """The gate's verdict; an :class:`EnergyGate` follows the stream (it is told how many
        samples are new since the window it saw last)."""
        if isinstance(self.gate, EnergyGate):
            new, self._gated_until = end - self._gated_until, end
            return self.gate(samples, self.sampling_rate, new=new)
        return bool(self.gate(samples, self.sampling_rate))

    def _note_inference(self, seconds: float) -> None:
        inference = self._inference
        inference["count"] += 1
        inference["total_s"] += seconds
        inference["max_s"] = max(inference["max_s"], seconds)

    def _count(self, result: Result) -> None:
        stats = self._stats
        stats["results"] += 1
        kind = (
            "speech" if result.speech else "no_speech" if result.label == NO_SPEECH else "silence"
        )
        stats[kind] += 1
        stats["skipped"] += result.skipped
        self._inference["max_latency_s"] = max(self._inference["max_latency_s"], result.latency_s)

    # --- reporting ------------------------------------------------------------------------

    @property
    def history(self) -> list[Result]:
        """The kept results, oldest first (a copy)."""
        with self._cond:
            return list(self._history)

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: ``results``, ``speech``, ``silence``, ``skipped`` windows, ``samples`` fed,
        ``mean_inference_s``, ``max_inference_s``, ``max_latency_s``, ``buffer_bytes`` (constant),
        ``dropped_blocks`` (lost by the source, when it counts them)."""
        with self._cond:
            inference = self._inference
            return {
                **self._stats,
                "samples": self._ring.total,
                "mean_inference_s": inference["total_s"] / max(1, inference["count"]),
                "max_inference_s": inference["max_s"],
                "max_latency_s": inference["max_latency_s"],
                "buffer_bytes": self._ring.nbytes,
                "dropped_blocks": getattr(self._source, "dropped", 0),
            }

    def save_history(self, path: str | Path) -> Path:
        """Write the history to ``.csv`` or ``.jsonl`` (see :func:`sertk.live.save_history`)."""
        return save_history(path, self.history, labels=self.labels)
