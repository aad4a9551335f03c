"""What a :class:`~sertk.recognizer.Recognizer` returns: ``Prediction``, ``Segment``, ``Timeline``.

Plain frozen dataclasses with ``to_dict()`` methods that return JSON-safe values (Python floats,
lists, None), so the CLI, the REST server and the GUI serialise them the same way.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

SILENCE = "silence"  # the label of a timeline stretch without speech
NO_SPEECH = "no speech"  # the label of a clip (or window) with sound but no speech in it


def _probabilities(labels: Sequence[str], values: Sequence[float]) -> dict[str, float]:
    """``{label: probability}`` in ``labels`` order, as Python floats."""
    return {label: float(value) for label, value in zip(labels, values, strict=True)}


@dataclasses.dataclass(frozen=True)
class AdaptationState:
    """How a prediction was adapted to its speaker (test-time adaptation).

    ``speaker``: the speaker or session id (None: the call's items as one speaker);
    ``seconds``: of that speaker's speech in the statistics that normalised the features;
    ``min_seconds``: what the bundle needs before it adapts; ``adapted``: True when the
    speaker-adapted model answered, False when the global one did (not enough speech yet).
    """

    speaker: str | None
    seconds: float
    min_seconds: float
    adapted: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def describe(self) -> str:
        """``adapted`` or ``global 12/20 s`` (how ``sertk listen`` shows it)."""
        if self.adapted:
            return "adapted"
        return f"global {self.seconds:.0f}/{self.min_seconds:.0f} s"


@dataclasses.dataclass(frozen=True, eq=False)  # arrays have no truth value for ==
class Prediction:
    """The emotion of one utterance.

    ``probabilities`` maps every label of the bundle, in the bundle's order, to its softmax
    probability; ``label`` is the most probable one and ``confidence`` its probability.
    ``duration`` is the length of the input in seconds (before cropping or padding).

    ``speech`` is False when the clip holds no speech (silence, a tone, a DC offset, noise,
    too short; :func:`sertk.features.voicing.check_speech`): then ``label`` is ``"no speech"``
    and ``confidence`` None, whatever the model said; ``probabilities`` keep the model's
    answer for the record (None when it could not be scored, e.g. a speaker-adapted bundle
    without statistics of that speaker) and ``no_speech`` says why (``"silent"``, ``"no
    voicing"``, ``"steady pitch"``, ``"too short"``). ``adaptation`` says how the features were
    normalised to the speaker (:class:`AdaptationState`; None: not adapted).

    ``attention`` (only when asked for, from a model with attention) is float32 ``[frames]``: how
    much the model attended to each feature frame, i.e. the mean over query frames of the
    ``[frames, frames]`` attention matrix (each row sums to 1, so the weights sum to 1). Frame
    ``i`` covers the time ``i / attention_rate`` seconds of the *preprocessed* model input (the
    signal after the bundle's crop or pad; for the usual "start" crop that is the input's start).

    ``model_sha256`` is the content hash of the bundle that made the prediction
    (:func:`sertk.bundle.content_hash`). ``windows`` is None when the model scored the input as
    one utterance; for a recording longer than ``LONG_RECORDING`` seconds it is the number of
    timeline windows whose probabilities were averaged, weighted by the speech each one covers
    (see :func:`sertk.recognizer.long_audio.summarise`).
    """

    label: str
    confidence: float | None
    probabilities: dict[str, float] | None
    duration: float
    attention: np.ndarray | None = None
    attention_rate: float | None = None
    model_sha256: str | None = None
    windows: int | None = None
    speech: bool = True
    no_speech: str = ""
    adaptation: AdaptationState | None = None

    @classmethod
    def from_probabilities(
        cls,
        labels: Sequence[str],
        probabilities: np.ndarray,
        *,
        duration: float,
        attention: np.ndarray | None = None,
        attention_rate: float | None = None,
        model_sha256: str | None = None,
        windows: int | None = None,
        no_speech: str = "",
        adaptation: AdaptationState | None = None,
    ) -> Prediction:
        """Build from a ``[classes]`` probability row in ``labels`` order (None: not scored);
        ``no_speech`` (the reason) makes it a "no speech" prediction."""
        row = None if probabilities is None else np.asarray(probabilities, dtype=np.float64)
        if row is None and not no_speech:
            raise ValueError("a prediction of speech needs its probabilities")
        best = None if row is None else int(row.argmax())
        return cls(
            label=NO_SPEECH if no_speech else labels[best],
            confidence=None if no_speech else float(row[best]),
            probabilities=None if row is None else _probabilities(labels, row),
            duration=float(duration),
            attention=attention,
            attention_rate=attention_rate,
            model_sha256=model_sha256,
            windows=windows,
            speech=not no_speech,
            no_speech=no_speech,
            adaptation=adaptation,
        )

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable ``(label, probability)`` pairs, best first (none when the
        clip was not scored)."""
        return sorted((self.probabilities or {}).items(), key=lambda item: -item[1])[:k]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; ``attention`` is a list of floats or None."""
        return {
            "label": self.label,
            "confidence": self.confidence,
            "probabilities": None if self.probabilities is None else dict(self.probabilities),
            "duration": self.duration,
            "attention": None if self.attention is None else self.attention.tolist(),
            "attention_rate": self.attention_rate,
            "windows": self.windows,
            "model_sha256": self.model_sha256,
            "speech": self.speech,
            "no_speech": self.no_speech,
            "adaptation": None if self.adaptation is None else self.adaptation.to_dict(),
        }


@dataclasses.dataclass(frozen=True)
class Segment:
    """A stretch ``[start, end)`` seconds of a recording with one label.

    Speech stretches (``speech=True``) carry the emotion ``label``, its ``confidence`` and all
    class ``probabilities``; stretches without speech have ``label == "silence"`` (nothing
    above the speech floor) or ``"no speech"`` (sound, but not speech), ``speech=False`` and
    ``confidence``/``probabilities`` None: they are never forced into an emotion.
    """

    start: float
    end: float
    label: str
    confidence: float | None
    probabilities: dict[str, float] | None
    speech: bool

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict of the fields."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Timeline:
    """Emotion over time of one recording (see :meth:`Recognizer.timeline`).

    ``segments`` tile ``[0, duration]`` in order: speech segments (adjacent windows with the same
    label merged), silence segments (no energy above the floor) and ``no speech`` segments
    (sound, but no speech in it: a tone, a hum, noise). ``windows`` holds one row per window
    analysed (in speech regions), with its raw, unsmoothed probabilities (none for a
    ``no speech`` window). ``adaptation`` says whether the recording's own speech normalised
    the windows (session adaptation; None: not adapted). ``labels`` are the bundle's labels;
    ``window`` and ``hop`` the windows' length and spacing and ``smooth`` the span the segments'
    probabilities were averaged over (seconds; see :mod:`sertk.smoothing`); ``model_sha256``
    the content hash of the bundle.
    """

    segments: tuple[Segment, ...]
    windows: tuple[Segment, ...]
    duration: float
    labels: tuple[str, ...]
    window: float
    hop: float
    smooth: float
    model_sha256: str | None = None
    adaptation: AdaptationState | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the settings, ``segments`` and ``windows``."""
        return {
            "duration": self.duration,
            "labels": list(self.labels),
            "window": self.window,
            "hop": self.hop,
            "smooth": self.smooth,
            "model_sha256": self.model_sha256,
            "segments": [segment.to_dict() for segment in self.segments],
            "windows": [window.to_dict() for window in self.windows],
            "adaptation": None if self.adaptation is None else self.adaptation.to_dict(),
        }

    def to_rows(self, *, windows: bool = False) -> list[dict[str, Any]]:
        """Flat rows (for CSV): ``start, end, label, confidence, speech`` and one column per label.

        Rows are the segments, or the scored windows with ``windows=True``; silence rows leave
        ``confidence`` and the label columns empty (None).
        """
        rows = []
        for item in self.windows if windows else self.segments:
            probabilities: Mapping[str, float] = item.probabilities or {}
            row = {key: getattr(item, key) for key in ("start", "end", "label", "confidence")}
            row["speech"] = item.speech
            row.update({label: probabilities.get(label) for label in self.labels})
            rows.append(row)
        return rows
