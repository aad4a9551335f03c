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


def _probabilities(labels: Sequence[str], values: Sequence[float]) -> dict[str, float]:
    """``{label: probability}`` in ``labels`` order, as Python floats."""
    return {label: float(value) for label, value in zip(labels, values, strict=True)}


@dataclasses.dataclass(frozen=True, eq=False)  # arrays have no truth value for ==
class Prediction:
    """The emotion of one utterance.

    ``probabilities`` maps every label of the bundle, in the bundle's order, to its softmax
    probability; ``label`` is the most probable one and ``confidence`` its probability.
    ``duration`` is the length of the input in seconds (before cropping or padding).

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
    confidence: float
    probabilities: dict[str, float]
    duration: float
    attention: np.ndarray | None = None
    attention_rate: float | None = None
    model_sha256: str | None = None
    windows: int | None = None

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
    ) -> Prediction:
        """Build from a ``[classes]`` probability row in ``labels`` order."""
        row = np.asarray(probabilities, dtype=np.float64)
        best = int(row.argmax())
        return cls(
            label=labels[best],
            confidence=float(row[best]),
            probabilities=_probabilities(labels, row),
            duration=float(duration),
            attention=attention,
            attention_rate=attention_rate,
            model_sha256=model_sha256,
            windows=windows,
        )

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        """The ``k`` most probable ``(label, probability)`` pairs, best first."""
        return sorted(self.probabilities.items(), key=lambda item: -item[1])[:k]

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; ``attention`` is a list of floats or None."""
        return {
            "label": self.label,
            "confidence": self.confidence,
            "probabilities": dict(self.probabilities),
            "duration": self.duration,
            "attention": None if self.attention is None else self.attention.tolist(),
            "attention_rate": self.attention_rate,
            "windows": self.windows,
            "model_sha256": self.model_sha256,
        }


@dataclasses.dataclass(frozen=True)
class Segment:
    """A stretch ``[start, end)`` seconds of a recording with one label.

    Speech stretches (``speech=True``) carry the emotion ``label``, its ``confidence`` and all
    class ``probabilities``; stretches without speech have ``label == "silence"``,
    ``speech=False`` and ``confidence``/``probabilities`` None: they are never forced into an
    emotion.
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
    label merged) and silence segments. ``windows`` holds one row per window the model scored
    (speech only), with its raw, unsmoothed probabilities. ``labels`` are the bundle's labels;
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
