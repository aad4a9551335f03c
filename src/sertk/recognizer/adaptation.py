"""Test-time adaptation for the Recognizer: whose statistics normalise which item, and when.

A bundle that can adapt (``scorer.adaptation`` is set: a speaker-adapted bundle, or an
``adaptive`` bundle holding a global and a speaker-adapted model) normalises each item's
features with statistics of its speaker's speech. :func:`plan_adaptation` decides, for the items
of one call:

- each speaker's statistics are those given for it (``prior``: kept by a caller, e.g. a REST
  session) merged with the statistics of this call's items of that speaker **that hold speech**
  (clips judged "no speech" never enter them), and carry the seconds of speech behind them;
- a speaker with at least ``min_seconds`` of speech (the bundle's ``adaptation.min_seconds``
  unless given) is adapted; below it, an adaptive bundle answers with its global model and a
  speaker-adapted bundle cannot answer (a :class:`~sertk.errors.SertkError` names the speaker
  and the seconds);
- every item gets an :class:`~sertk.recognizer.prediction.AdaptationState`, every speaker a
  :class:`SpeakerSummary` (files, seconds, adapted or not, and this call's statistics to merge
  into a session).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from sertk.errors import SertkError
from sertk.features.normalization import FeatureStatistics, group_by_speaker
from sertk.inference import SpeakerStatistics, merge_statistics
from sertk.inference.speakers import statistics_seconds
from sertk.recognizer.prediction import AdaptationState


@dataclasses.dataclass
class Heard:
    """What the first hops made of a batch: per item index with features, its ``features``
    (a feature-key mapping), speech ``checks`` (:class:`~sertk.features.voicing.SpeechCheck`,
    None when the check is off) and ``durations`` (s); ``results`` holds the SertkError of each
    item that failed, else None."""

    results: list[Any]
    features: dict[int, Any]
    checks: dict[int, Any]
    durations: dict[int, float]

    def speech(self, index: int) -> bool:
        check = self.checks.get(index)
        return check is None or bool(check.speech)

    def speech_seconds(self, index: int) -> float:
        check = self.checks.get(index)
        return self.durations[index] if check is None else float(check.speech_seconds)


@dataclasses.dataclass(frozen=True, eq=False)
class SpeakerSummary:
    """One speaker of a call: ``files`` (items with features), ``speech_files`` (of which hold
    speech), ``seconds`` of speech in this call, ``total_seconds`` with the prior statistics,
    ``min_seconds`` needed, ``adapted``, and ``statistics``: this call's own (None without
    speech), to merge into a kept session."""

    speaker: str | None
    files: int
    speech_files: int
    seconds: float
    total_seconds: float
    min_seconds: float
    adapted: bool
    statistics: SpeakerStatistics | None

    def describe(self) -> str:
        """``Actor_01: 60 files, 212.3 s of speech, adapted``."""
        name = "all files" if self.speaker is None else self.speaker
        what = "adapted" if self.adapted else (
            f"not adapted: needs {self.min_seconds:g} s of speech" if self.total_seconds
            else "not adapted: no speech"
        )  # fmt: skip
        heard = f"{self.speech_files} with speech" if self.speech_files < self.files else ""
        files = f"{self.files} file{'s' if self.files != 1 else ''}"
        return f"{name}: {files}{f' ({heard})' if heard else ''}, {self.total_seconds:.1f} s of speech, {what}"


@dataclasses.dataclass
class Plan:
    """Per item index: ``statistics`` to score it with (None: unadapted), its ``state``, or an
    ``errors`` entry; per speaker its ``summaries``."""

    statistics: dict[int, SpeakerStatistics | None]
    states: dict[int, AdaptationState]
    errors: dict[int, SertkError]
    summaries: dict[str | None, SpeakerSummary]


def split_prior(
    prior: Any, speakers: Sequence[str | None]
) -> dict[str | None, SpeakerStatistics | None]:
    """``prior`` per speaker: one :data:`SpeakerStatistics` (all items one speaker) or a
    mapping speaker id -> statistics."""
    if prior is None:
        return {}
    values = list(prior.values()) if isinstance(prior, Mapping) else None
    if values is None:
        raise SertkError("statistics= must be a speaker's statistics or {speaker: statistics}")
    if not values or all(isinstance(v, FeatureStatistics) for v in values):
        if len(set(speakers)) > 1:
            raise SertkError(
                "one set of statistics was given for several speakers; give {speaker id: "
                "statistics} or leave speakers= out"
            )
        return {speaker: prior for speaker in set(speakers)}
    return dict(prior)


def plan_adaptation(
    scorer: Any,
    heard: Heard,
    *,
    speakers: Sequence[str] | None,
    prior: Any = None,
    min_seconds: float | None = None,
    seconds: Mapping[int, float] | None = None,
) -> Plan:
    """The adaptation of the items of ``heard`` (see the module docstring). ``seconds``: the
    speech each item adds to its speaker's statistics (default: its speech check's); e.g. a
    timeline whose windows overlap counts each second once."""
    plan = Plan({}, {}, {}, {})
    if speakers is None and prior is None:
        return plan
    adaptation = require_adaptation(scorer)
    needed = adaptation.min_seconds if min_seconds is None else float(min_seconds)
    order = sorted(heard.features)
    ids = [None if speakers is None else speakers[i] for i in order]
    priors = split_prior(prior, ids)
    for name, rows in group_by_speaker(ids).items():
        indices = [order[row] for row in rows]
        spoken = [i for i in indices if heard.speech(i)]
        added = sum((seconds or {}).get(i, heard.speech_seconds(i)) for i in spoken)
        own = (
            scorer.statistics([heard.features[i] for i in spoken], seconds=added)
            if spoken else None
        )  # fmt: skip
        before = priors.get(name) or None
        total = own if before is None else before if own is None else merge_statistics(before, own)
        enough = total is not None and statistics_seconds(total) >= needed
        state = AdaptationState(name, statistics_seconds(total), needed, enough)
        plan.summaries[name] = SpeakerSummary(
            name, len(indices), len(spoken), added, statistics_seconds(total), needed, enough, own
        )
        for i in indices:
            plan.statistics[i], plan.states[i] = (total if enough else None), state
            if not enough and scorer.normalization == "speaker" and heard.speech(i):
                plan.errors[i] = _too_little(scorer, name, statistics_seconds(total), needed)
    return plan


def fixed_plan(
    scorer: Any,
    heard: Heard,
    *,
    speaker: str | None,
    statistics: SpeakerStatistics | None,
    min_seconds: float | None = None,
) -> Plan:
    """Every item of ``heard`` scored with ``statistics`` gathered beforehand (e.g. over all of
    a recording's speech windows, in a pass of their own): adapted when they hold
    ``min_seconds`` of speech (default: the bundle's), as :func:`plan_adaptation` decides."""
    adaptation = require_adaptation(scorer)
    needed = adaptation.min_seconds if min_seconds is None else float(min_seconds)
    total = statistics_seconds(statistics)
    enough = statistics is not None and total >= needed
    state = AdaptationState(speaker, total, needed, enough)
    plan = Plan({}, {}, {}, {})
    for i in heard.features:
        plan.statistics[i], plan.states[i] = (statistics if enough else None), state
        if not enough and scorer.normalization == "speaker" and heard.speech(i):
            plan.errors[i] = _too_little(scorer, speaker, total, needed)
    return plan


def require_adaptation(scorer: Any) -> Any:
    """``scorer.adaptation``; SertkError when the scorer has no speaker-adapted model."""
    if scorer.adaptation is None:
        raise SertkError(
            f"{scorer.source} cannot adapt to speakers: it has no speaker-adapted model; use a "
            "speaker-adapted or adaptive bundle (sertk bundle pair GLOBAL ADAPTED -o OUT)"
        )
    return scorer.adaptation


def _too_little(scorer: Any, speaker: str | None, seconds: float, needed: float) -> SertkError:
    who = "the files" if speaker is None else f"speaker {speaker!r}"
    return SertkError(
        f"{who}: {seconds:.1f} s of speech, but {scorer.source} (speaker-adapted, no global "
        f"model) adapts from {needed:g} s; give more of their audio, or use a bundle with a "
        "global model (sertk bundle pair)"
    )


class Session:
    """One speaker's (or stream's) running statistics, for a live session: each call hears a
    window, adds its statistics when it holds speech (``step`` new seconds each, the hop of the
    stream; the first window counts whole) and answers with them: the global model of an
    adaptive bundle until ``min_seconds`` of speech are in, then the adapted one. Memory is
    constant (sums per feature), however long the session.

    >>> from sertk.audio import load_audio
    >>> from sertk.recognizer import Recognizer
    >>> window, rate = load_audio("examples/03a02Wc.flac", sampling_rate=16000)
    >>> session = Session(Recognizer.load("default"), step=0.5)  # the default model is adaptive
    >>> session(window, rate).adaptation.describe()
    'global 1/20 s'
    """

    def __init__(self, recognizer: Any, *, step: float, min_seconds: float | None = None) -> None:
        if recognizer.speaker_adapted:
            raise SertkError(
                f"{recognizer.bundle.path} is speaker-adapted with no global model to answer while "
                "a session's statistics grow; pair it with a global bundle (sertk bundle pair "
                "GLOBAL ADAPTED -o OUT) for live use"
            )
        if not recognizer.adaptive:
            raise SertkError(f"{recognizer.bundle.path} cannot adapt: it has no adapted model")
        self.recognizer, self.step, self.min_seconds = recognizer, float(step), min_seconds
        self.statistics: SpeakerStatistics | None = None
        self.heard = 0  # windows with speech

    @property
    def seconds(self) -> float:
        """Seconds of speech in the statistics so far."""
        return statistics_seconds(self.statistics)

    def reset(self) -> None:
        """Forget the statistics (a new speaker, a new stream)."""
        self.statistics, self.heard = None, 0

    def __call__(self, signal: Any, sampling_rate: int) -> Any:
        """The :class:`~sertk.recognizer.Prediction` of one window, adapted as far as the
        session allows; its speech (if any) is added first."""
        heard = self.recognizer.hear([signal], sampling_rate=sampling_rate)
        if heard.results[0] is not None:
            raise heard.results[0]
        new = heard.durations[0] if not self.heard else min(heard.durations[0], self.step)
        plan = plan_adaptation(self.recognizer.scorer, heard, speakers=[None],
                               prior=self.statistics, min_seconds=self.min_seconds,
                               seconds={0: new})  # fmt: skip
        own = plan.summaries[None].statistics
        if own is not None:
            self.heard += 1
            self.statistics = own if self.statistics is None else merge_statistics(
                self.statistics, own)  # fmt: skip
        return self.recognizer.answer(heard, plan)[0]
