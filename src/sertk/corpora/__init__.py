"""Corpora: adapters from official layouts to ``Utterance`` lists, CSV manifests, ``LabelMap``.

>>> from sertk.corpora import LabelMap, scan_corpus, write_manifest
>>> result = scan_corpus("emodb", "examples")  # the EmoDB clips in examples/
>>> kept, dropped = LabelMap.preset("iemocap4").apply(result.utterances)
>>> [u.label for u in kept], dropped
(['angry', 'happy', 'neutral', 'sad', 'angry'], {'disgust': 1, 'fearful': 1})
>>> write_manifest(kept, "emodb4.csv")
PosixPath('.../emodb4.csv')
"""

from sertk.corpora.base import (
    AUDIO_EXTENSIONS,
    Adapter,
    ScanResult,
    Utterance,
    read_manifest,
    write_manifest,
)
from sertk.corpora.labels import CANONICAL_LABELS, PRESETS, LabelMap, canonical_label
from sertk.corpora.scan import CORPORA, default_label_map, scan_corpus

__all__ = [
    "AUDIO_EXTENSIONS",
    "Adapter",
    "CANONICAL_LABELS",
    "CORPORA",
    "LabelMap",
    "PRESETS",
    "ScanResult",
    "Utterance",
    "canonical_label",
    "default_label_map",
    "read_manifest",
    "scan_corpus",
    "write_manifest",
]
