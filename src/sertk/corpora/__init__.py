"""Corpora: adapters from official layouts to ``Utterance`` lists, CSV manifests, ``LabelMap``.

>>> from sertk.corpora import LabelMap, scan_corpus, write_manifest
>>> result = scan_corpus("emodb", "../shared/corpora/emodb")  # doctest: +SKIP
>>> kept, dropped = LabelMap.preset("common").apply(result.utterances)  # doctest: +SKIP
>>> write_manifest(kept, "build/emodb.csv")  # doctest: +SKIP
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
