"""Long recordings in bounded memory: the timeline step by step, and one label for a long file.

:func:`timeline_blocks` (behind :meth:`Recognizer.timeline` and
:meth:`Recognizer.timeline_blocks`) reads the recording as an
:class:`~sertk.audio.stream.AudioStream`, mono blocks at the model's rate, twice:

1. **speech**: frame levels block by block (:class:`~sertk.audio.speech.LevelMeter`, float32,
   1.4 MB per audio hour), then the speech/silence decisions block by block with the noise floor
   carried (:func:`~sertk.audio.speech.regions_of_levels`): the same regions as one call of
   :func:`~sertk.audio.speech_regions` over the whole recording; then the windows are planned
   (:func:`~sertk.recognizer.timeline.plan_windows`);
2. **windows**: a second pass cuts each window's samples out of the blocks as they go by (at
   most one window and one block held) and scores ``batch_size`` windows at a time.

Every window is checked for speech (:meth:`Recognizer.hear`): a window with sound but no speech
(a tone, a hum, noise the energy rule let through) gets no emotion and becomes part of a
``no speech`` segment. With session adaptation (``adapt=True``, or ``speaker=``: a bundle that
can adapt normalises every window with the statistics of the recording's own speech) the
windows are read once more first, accumulating the statistics of the speech windows (sums:
constant memory) with the seconds of speech they cover (the union of their spans, each second
once), and every window is then scored with them (:func:`~sertk.recognizer.adaptation.fixed_plan`). Memory stays bounded by a block of decoded
audio, the frame levels, one batch of windows and the results (a few hundred bytes per window);
time grows linearly with the length. Each step (a block read, a batch scored) yields a
:class:`TimelineBlock`, so a caller can interleave other work (the REST server) or show
progress (the GUI); the last one carries the :class:`~sertk.recognizer.prediction.Timeline`.

**One label for a long recording.** ``predict`` on an input longer than :data:`LONG_RECORDING`
seconds (or a file that does not announce its length) does not crop or load it whole: it runs
the timeline with its defaults and :func:`summarise` averages the windows' probabilities
weighted by the speech each covers (the duration-weighted mean of the speech segments). A
recording with no speech at all has no emotion to report: AudioError.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from sertk.audio import LevelMeter, audio_blocks, regions_of_levels
from sertk.audio.stream import AudioStream
from sertk.errors import AudioError, SertkError
from sertk.inference.speakers import merge_statistics
from sertk.recognizer.adaptation import Plan, fixed_plan, require_adaptation
from sertk.recognizer.prediction import AdaptationState, Prediction, Segment, Timeline
from sertk.recognizer.timeline import (
    DEFAULT_WINDOW,
    build_timeline,
    check_seconds,
    check_vad,
    plan_windows,
    timeline_smooth,
    window_segment,
)

LONG_RECORDING = 60.0  # seconds: predict summarises a timeline of anything longer
_METER_OPTIONS = ("frame_ms", "hop_ms")


@dataclasses.dataclass(frozen=True)
class TimelineBlock:
    """One bounded step of a timeline (:meth:`Recognizer.timeline_blocks`).

    ``stage`` is ``"speech"`` (finding speech: ``done`` of ``total`` seconds read; ``total`` None
    when the file does not announce its length), ``"windows"`` (``done`` of ``total`` windows
    scored; ``windows`` holds the ones scored in this step, raw probabilities, in time order)
    or ``"done"`` (``timeline`` holds the result; the last step).
    """

    stage: str
    done: float
    total: float | None
    windows: tuple[Segment, ...] = ()
    timeline: Timeline | None = None


def timeline_blocks(
    recognizer: Any,
    source: Any,
    *,
    sampling_rate: int | None = None,
    window: float | None = None,
    hop: float = 1.0,
    smooth: float = 0.0,
    smoothing: Any = None,
    min_speech: float = 0.5,
    speaker: str | None = None,
    adapt: bool = False,
    vad: Mapping[str, Any] | None = None,
    batch_size: int = 16,
    max_duration: float | None,
) -> Iterator[TimelineBlock]:
    """The steps of :meth:`Recognizer.timeline` (see there for the options). Options, the
    file's header and ``max_duration`` are checked now (SertkError); decoding errors come from
    the step that meets them."""
    adapt = bool(adapt) or speaker is not None
    settings = _settings(recognizer, window, hop, smooth, smoothing, min_speech, adapt, vad)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise SertkError(f"batch_size must be a positive integer, got {batch_size!r}")
    stream = audio_blocks(
        source, sampling_rate=recognizer.sampling_rate, source_rate=sampling_rate,
        max_duration=max_duration,
    )  # fmt: skip
    return _steps(recognizer, stream, settings, speaker=speaker, adapt=adapt, batch_size=batch_size)


def _settings(recognizer, window, hop, smooth, smoothing, min_speech, adapt, vad) -> dict:
    if window is None:
        crops = [p.duration for p, _ in recognizer.inputs if p.duration is not None]
        window = max(crops) if crops else DEFAULT_WINDOW
    window, hop = check_seconds("window", window), check_seconds("hop", hop)
    options = check_vad(vad)
    if "noise_margin_db" in options:
        warnings.warn(
            "vad={'noise_margin_db': ...} is deprecated: it is called margin_db now",
            DeprecationWarning,
            stacklevel=4,
        )
        options["margin_db"] = options.pop("noise_margin_db")
    if recognizer.speaker_adapted and not adapt:
        raise SertkError(
            f"{recognizer.bundle.path} is speaker-adapted: pass adapt=True (or speaker=: one id "
            "for the whole recording; its speech windows supply the speaker statistics)"
        )
    if adapt:
        require_adaptation(recognizer.scorer)  # now, before any audio is read
    meter = {key: options.pop(key) for key in _METER_OPTIONS if key in options}
    LevelMeter(recognizer.sampling_rate, **meter)  # checks frame_ms and hop_ms now
    plan_windows([], window=window, hop=hop)  # checks hop <= window now
    return {
        "window": window,
        "hop": hop,
        "smooth": timeline_smooth(smooth, smoothing, hop=hop),
        "min_speech": check_seconds("min_speech", min_speech, allow_zero=True),
        "meter": meter,
        "decide": options,
    }


def _steps(
    recognizer: Any, stream: AudioStream, settings: dict, *, speaker: str | None, adapt: bool,
    batch_size: int,
) -> Iterator[TimelineBlock]:  # fmt: skip
    rate = stream.sampling_rate
    meter = LevelMeter(rate, **settings["meter"])
    for block in stream:  # 1. speech
        meter.add(block)
        yield TimelineBlock("speech", meter.samples / rate, stream.duration)
    regions = regions_of_levels(
        meter.levels(), frame=meter.frame, hop=meter.hop, sampling_rate=rate,
        samples=meter.samples, min_duration=settings["min_speech"], **settings["decide"],
    )  # fmt: skip
    spans = plan_windows(regions, window=settings["window"], hop=settings["hop"])
    labels = recognizer.labels
    rows: list[np.ndarray] = []
    speech: list[bool] = []
    state = None
    if spans:  # 2. windows
        scored = _score_windows(
            recognizer, stream, spans, speaker=speaker, adapt=adapt, batch_size=batch_size
        )
        for probabilities, flags, adapted in scored:
            first, state = len(rows), adapted
            rows.extend(probabilities)
            speech.extend(flags)
            own = tuple(
                window_segment(span, row, labels)
                for span, row in zip(spans[first : len(rows)], probabilities, strict=True)
            )
            yield TimelineBlock("windows", len(rows), len(spans), windows=own)
    timeline = build_timeline(
        duration=meter.samples / rate, regions=regions, spans=spans,
        probabilities=np.array(rows).reshape(len(spans), len(labels)), labels=labels,
        window=settings["window"], hop=settings["hop"], smooth=settings["smooth"],
        model_sha256=getattr(recognizer, "sha256", None), speech=speech or None,
        adaptation=state,
    )  # fmt: skip
    yield TimelineBlock("done", len(spans), len(spans), timeline=timeline)


def cut_windows(stream: AudioStream, bounds: Sequence[tuple[int, int]]) -> Iterator[np.ndarray]:
    """float32 samples ``[start, end)`` of each window of ``bounds`` (sample indices, ordered
    by start and by end), in order, from one pass over ``stream``: only the samples from the
    next window's start on are kept between blocks."""
    buffer, offset, index = np.zeros(0, np.float32), 0, 0
    for block in stream:
        buffer = np.concatenate([buffer, block])
        while index < len(bounds) and bounds[index][1] <= offset + len(buffer):
            start, end = bounds[index]
            yield buffer[start - offset : end - offset].copy()
            index += 1
        keep = bounds[index][0] if index < len(bounds) else offset + len(buffer)
        drop = min(len(buffer), max(0, keep - offset))
        buffer, offset = buffer[drop:], offset + drop
    for start, end in bounds[index:]:  # past the end of a recording shorter than planned
        yield buffer[max(0, start - offset) : max(0, end - offset)].copy()


def _batches(pieces: Iterator[np.ndarray], size: int) -> Iterator[list[np.ndarray]]:
    batch: list[np.ndarray] = []
    for piece in pieces:
        batch.append(piece)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _score_windows(
    recognizer: Any, stream: AudioStream, spans: Sequence[tuple[float, float, int]], *,
    speaker: str | None, adapt: bool, batch_size: int,
) -> Iterator[tuple[np.ndarray, list[bool], AdaptationState | None]]:  # fmt: skip
    """Per batch of windows, in order: probabilities ``[n, classes]`` (NaN rows for windows
    without speech), whether each window holds speech, and the session's adaptation (None
    without). With ``adapt``, a first pass gathers the statistics of the speech windows."""
    rate = stream.sampling_rate
    bounds = [(round(start * rate), round(end * rate)) for start, end, _ in spans]

    def heard_batches() -> Iterator[tuple[int, Any]]:
        first = 0
        for batch in _batches(cut_windows(stream, bounds), batch_size):
            yield first, recognizer.hear(
                batch, sampling_rate=rate, batch_size=batch_size, max_duration=None,
                parallel=False,
            )  # fmt: skip
            first += len(batch)

    statistics, reach, plan = None, -np.inf, None
    if adapt:
        for first, heard in heard_batches():
            spoken = [i for i in sorted(heard.features) if heard.speech(i)]
            seconds = 0.0
            for i in spoken:  # spans in time order: the union grows by what is new
                start, end = spans[first + i][:2]
                if end > reach:
                    seconds, reach = seconds + end - max(start, reach), end
            if spoken:
                own = recognizer.scorer.statistics(
                    [heard.features[i] for i in spoken], seconds=seconds
                )
                statistics = own if statistics is None else merge_statistics(statistics, own)
    labels = recognizer.labels
    for _, heard in heard_batches():
        plan = (
            fixed_plan(recognizer.scorer, heard, speaker=speaker, statistics=statistics)
            if adapt else Plan({}, {}, {}, {})
        )  # fmt: skip
        if plan.errors:
            raise next(iter(plan.errors.values()))
        rows = np.full((len(heard.results), len(labels)), np.nan)
        for row, prediction in enumerate(recognizer.answer(heard, plan)):
            if prediction.probabilities is not None:
                rows[row] = [prediction.probabilities[label] for label in labels]
        state = next(iter(plan.states.values()), None)
        yield rows, [heard.speech(i) for i in range(len(heard.results))], state


def run_timeline(blocks: Iterator[TimelineBlock]) -> Timeline:
    """The timeline at the end of ``blocks``."""
    for block in blocks:
        if block.timeline is not None:
            return block.timeline
    raise SertkError("the timeline steps ended without a timeline")  # not reached


def speech_mean(timeline: Timeline) -> np.ndarray | None:
    """The recording's probabilities ``[classes]`` (labels order): the speech segments' averaged
    with weights equal to their durations, i.e. every window weighted by the speech it covers;
    None when the timeline holds no speech."""
    speech = [s for s in timeline.segments if s.speech and s.duration > 0]
    if not speech:
        return None
    weights = np.array([s.duration for s in speech])
    rows = np.array([[s.probabilities[x] for x in timeline.labels] for s in speech])
    return (rows * weights[:, None]).sum(axis=0) / weights.sum()


def summarise(timeline: Timeline, *, name: str) -> Prediction:
    """One :class:`Prediction` for a long recording from its ``timeline`` (see the module
    docstring); AudioError naming ``name`` when it holds no speech."""
    mean = speech_mean(timeline)
    if mean is None:
        raise AudioError(
            f"{name}: no speech in its {timeline.duration:.1f} s (nothing above the speech "
            "floor; see --vad-floor/--vad-margin), so there is no emotion to report; "
            "`sertk predict --timeline` shows it as silence"
        )
    return Prediction.from_probabilities(
        timeline.labels, mean, duration=timeline.duration,
        model_sha256=timeline.model_sha256, windows=len(timeline.windows),
    )  # fmt: skip
