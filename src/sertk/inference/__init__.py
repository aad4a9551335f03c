"""Scorers: preprocessed signals -> features -> class probabilities, once for every backend.

- :class:`Scorer` (``scorer.py``): the hops ``preprocess -> extract -> score``, test-time views
  and their combination; :class:`ModelScorer` runs one model, :class:`EnsembleScorer`
  (``ensemble.py``) combines member scorers (label matrices, weights);
- ``speakers.py``: per-speaker normalisation from speaker ids or from statistics a caller keeps;
- model forwards: ``backends.py`` (numpy classical, torch head), ``onnx.py`` (onnxruntime head
  and SSL encoder).

Bundle kinds (:mod:`sertk.bundle`) build scorers; the Recognizer, the cross-validation runner,
``sertk evaluate`` and ensembles all score through them. Importing this package imports
neither torch nor onnxruntime.

>>> from sertk.bundle import load_bundle
>>> scorer = load_bundle("default").build_scorer()
>>> scorer.labels[:3], scorer.normalization, scorer.requests
(('neutral', 'happy', 'sad'), 'global', ((0, None),))
"""

from sertk.inference.adaptive import AdaptiveScorer
from sertk.inference.ensemble import RULES, EnsembleScorer, check_weights, combine, label_matrix
from sertk.inference.scorer import (
    FeatureInput,
    FeatureKey,
    Forward,
    ItemFeatures,
    ModelScorer,
    Scorer,
    Scores,
)
from sertk.inference.speakers import SpeakerStatistics, merge_statistics, statistics_seconds

__all__ = [
    "RULES",
    "AdaptiveScorer",
    "EnsembleScorer",
    "FeatureInput",
    "FeatureKey",
    "Forward",
    "ItemFeatures",
    "ModelScorer",
    "Scorer",
    "Scores",
    "SpeakerStatistics",
    "check_weights",
    "combine",
    "label_matrix",
    "merge_statistics",
    "statistics_seconds",
]
