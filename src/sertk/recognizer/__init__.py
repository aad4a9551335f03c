"""Inference: one object from a model bundle to predictions, shared by the CLI, server and GUI.

- :class:`Recognizer` (``recognizer.py``): ``Recognizer.load(bundle)``, ``predict_file``,
  ``predict_signal``, ``predict_batch``, ``timeline``.
- :func:`resolve_bundle` (from :mod:`sertk.bundle`): a model name (``"default"``), a run folder
  or a bundle path -> bundle folder.
- :class:`Prediction`, :class:`Segment`, :class:`Timeline` (``prediction.py``): the results,
  each with a JSON-safe ``to_dict()``; a clip without speech is labelled ``no speech``
  (:data:`NO_SPEECH`; the detector is :mod:`sertk.features.voicing`).
- test-time adaptation (``adaptation.py``): per-speaker statistics from the speech of a call,
  a session or a recording; :class:`SpeakerSummary`, :class:`AdaptationState`.
- ``timeline.py``: windows, smoothing and segment merging for long recordings;
  ``long_audio.py``: the body of ``Recognizer.timeline`` (the recording read block by block, in
  bounded memory; :class:`TimelineBlock` steps) and the one-label summary of a recording longer
  than :data:`LONG_RECORDING` seconds.

Importing this package does not import torch or transformers; loading a bundle imports what
that bundle needs.

>>> from sertk.recognizer import Recognizer
>>> recognizer = Recognizer.load("default")  # or a bundle folder: "runs/emodb/final/bundle"
>>> prediction = recognizer.predict_file("examples/03a02Wc.flac")
>>> prediction.label, prediction.confidence > 0.5
('angry', True)
"""

from sertk.bundle import DEFAULT_MODEL, resolve_bundle
from sertk.recognizer.adaptation import SpeakerSummary
from sertk.recognizer.long_audio import LONG_RECORDING, TimelineBlock
from sertk.recognizer.prediction import (
    NO_SPEECH,
    SILENCE,
    AdaptationState,
    Prediction,
    Segment,
    Timeline,
)
from sertk.recognizer.recognizer import Recognizer

__all__ = [
    "DEFAULT_MODEL",
    "LONG_RECORDING",
    "NO_SPEECH",
    "SILENCE",
    "AdaptationState",
    "Prediction",
    "Recognizer",
    "Segment",
    "SpeakerSummary",
    "Timeline",
    "TimelineBlock",
    "resolve_bundle",
]
