"""The canonical emotion vocabulary and ``LabelMap``, the mapping to a model's target classes.

Every adapter labels utterances with a canonical name from ``CANONICAL_LABELS``; the corpus's
own code stays in ``fields["emotion_code"]``. A ``LabelMap`` then chooses the ordered target
classes of an experiment and says which canonical labels feed each of them; labels it does not
mention are dropped, and ``apply`` reports how many.

>>> label_map = LabelMap.preset("iemocap4")
>>> label_map.labels
('neutral', 'happy', 'angry', 'sad')
>>> label_map.target("excited"), label_map.encode("angry")
('happy', 2)
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from sertk.corpora.base import Utterance
from sertk.errors import ConfigError, CorpusError

# The vocabulary every adapter maps to. "other" is a rater's explicit "other emotion";
# "unknown" means the raters did not agree (IEMOCAP "xxx").
CANONICAL_LABELS = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "boredom",
    "excited",
    "frustrated",
    "contempt",
    "other",
    "unknown",
)

# spellings found in corpora and user folders -> canonical name
SYNONYMS = {
    "neu": "neutral",
    "anger": "angry",
    "ang": "angry",
    "mad": "angry",
    "happiness": "happy",
    "hap": "happy",
    "joy": "happy",
    "sadness": "sad",
    "fear": "fearful",
    "fea": "fearful",
    "afraid": "fearful",
    "disgusted": "disgust",
    "dis": "disgust",
    "surprise": "surprised",
    "sur": "surprised",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "bored": "boredom",
    "exc": "excited",
    "excitement": "excited",
    "frustration": "frustrated",
    "fru": "frustrated",
}


def canonical_label(name: str) -> str | None:
    """Return the canonical emotion for a label spelling (case-insensitive), or None if unknown."""
    key = name.strip().lower().replace(" ", "_").replace("-", "_")
    if key in CANONICAL_LABELS:
        return key
    return SYNONYMS.get(key)


def canonical_order(labels: Iterable[str]) -> list[str]:
    """Distinct labels in ``CANONICAL_LABELS`` order, then any others alphabetically."""
    rank = {label: i for i, label in enumerate(CANONICAL_LABELS)}
    return sorted(set(labels), key=lambda label: (rank.get(label, len(rank)), label))


_RAVDESS8 = ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised")
_COMMON = ("neutral", "happy", "sad", "angry", "fearful", "disgust")
_SHARED = (*_COMMON, "surprised")

# name -> (ordered target labels, extra canonical -> target merges, one-line description)
PRESETS: dict[str, tuple[tuple[str, ...], dict[str, str], str]] = {
    "iemocap4": (
        ("neutral", "happy", "angry", "sad"),
        {"excited": "happy"},
        "IEMOCAP 4-class protocol; excited merged into happy",
    ),
    "ravdess8": (_RAVDESS8, {}, "the 8 RAVDESS emotions"),
    "emodb7": (
        ("neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom"),
        {},
        "the 7 EmoDB emotions",
    ),
    "merge_calm": (
        tuple(label for label in _RAVDESS8 if label != "calm"),
        {"calm": "neutral"},
        "RAVDESS with calm merged into neutral (7 classes)",
    ),
    "shared": (
        _SHARED,
        {"calm": "neutral", "excited": "happy"},
        "one set for every corpus: calm merged into neutral, excited into happy; boredom, "
        "frustrated, contempt, other and unknown cannot be mapped (dropped and counted)",
    ),
    "common": (
        _COMMON,
        {"calm": "neutral"},
        "shared by RAVDESS, EmoDB, TESS and CREMA-D; calm merged into neutral; "
        "surprised (absent from EmoDB, CREMA-D) and boredom (EmoDB only) dropped",
    ),
}


@dataclasses.dataclass(frozen=True, eq=False)
class LabelMap:
    """Ordered target labels plus a canonical label -> target label mapping.

    ``labels`` are the model's classes, in output order; ``mapping`` sends each kept canonical
    label to one of them. A canonical label absent from ``mapping`` is dropped.
    """

    labels: tuple[str, ...]
    mapping: Mapping[str, str]
    name: str | None = None

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        if not labels or not all(isinstance(label, str) and label for label in labels):
            raise ConfigError(f"a LabelMap needs non-empty string labels, got {list(labels)!r}")
        repeated = sorted(label for label, n in Counter(labels).items() if n > 1)
        if repeated:
            raise ConfigError(f"LabelMap labels must be unique; repeated: {', '.join(repeated)}")
        mapping = dict(self.mapping)
        stray = sorted({target for target in mapping.values() if target not in labels})
        if stray:
            raise ConfigError(
                f"LabelMap maps to {', '.join(map(repr, stray))}, which are not among its "
                f"labels {list(labels)}; add them to labels or fix the mapping"
            )
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "mapping", MappingProxyType(mapping))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LabelMap):
            return NotImplemented
        return self.labels == other.labels and dict(self.mapping) == dict(other.mapping)

    def __hash__(self) -> int:
        return hash((self.labels, tuple(sorted(self.mapping.items()))))

    @classmethod
    def preset(cls, name: str) -> LabelMap:
        """Build a named preset (``iemocap4``, ``ravdess8``, ``emodb7``, ``merge_calm``,
        ``shared``, ``common``)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown label preset {name!r}; choose one of {', '.join(PRESETS)}")
        labels, merges, _ = PRESETS[name]
        return cls(labels, {**{label: label for label in labels}, **merges}, name=name)

    @classmethod
    def from_labels(cls, labels: Iterable[str], *, name: str | None = None) -> LabelMap:
        """Identity map over ``labels`` (in the given order)."""
        labels = tuple(labels)
        return cls(labels, {label: label for label in labels}, name=name)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def target(self, label: str) -> str | None:
        """Target label for a canonical label, or None when it is dropped."""
        return self.mapping.get(label)

    def encode(self, label: str) -> int:
        """Class index of a target label (as found on utterances after ``apply``)."""
        try:
            return self.labels.index(label)
        except ValueError:
            raise CorpusError(
                f"label {label!r} is not one of this LabelMap's classes {list(self.labels)}; "
                "run LabelMap.apply on the utterances first"
            ) from None

    def decode(self, index: int) -> str:
        """Target label of a class index."""
        if not 0 <= index < len(self.labels):
            raise CorpusError(f"class index {index} out of range for {len(self.labels)} labels")
        return self.labels[index]

    def apply(self, utterances: Iterable[Utterance]) -> tuple[list[Utterance], dict[str, int]]:
        """Relabel utterances to target labels; drop the unmapped ones.

        Returns ``(kept, dropped_counts)``: kept utterances carry the target label (the
        canonical one moves to ``fields["source_label"]`` when it changed), and
        ``dropped_counts`` counts dropped utterances per canonical label, largest first.
        """
        kept: list[Utterance] = []
        dropped: Counter[str] = Counter()
        for utterance in utterances:
            target = self.mapping.get(utterance.label)
            if target is None:
                dropped[utterance.label] += 1
            elif target == utterance.label:
                kept.append(utterance)
            else:
                fields = {**utterance.fields, "source_label": utterance.label}
                kept.append(dataclasses.replace(utterance, label=target, fields=fields))
        return kept, dict(dropped.most_common())

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form, stored in every artifact that depends on the classes."""
        return {"name": self.name, "labels": list(self.labels), "mapping": dict(self.mapping)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelMap:
        """Inverse of ``to_dict``; raises ConfigError on a malformed dict."""
        if not isinstance(data, Mapping) or "labels" not in data or "mapping" not in data:
            raise ConfigError("a LabelMap dict needs 'labels' (a list) and 'mapping' (a dict)")
        labels, mapping = data["labels"], data["mapping"]
        if not isinstance(labels, list) or not isinstance(mapping, Mapping):
            raise ConfigError("LabelMap 'labels' must be a list and 'mapping' a dict")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in mapping.items()):
            raise ConfigError("LabelMap 'mapping' must map strings to strings")
        name = data.get("name")
        return cls(tuple(labels), dict(mapping), name=name if isinstance(name, str) else None)

    def describe(self) -> str:
        """One line: ``neutral(+calm) happy sad ...``."""
        parts = []
        for label in self.labels:
            extra = sorted(k for k, v in self.mapping.items() if v == label and k != label)
            parts.append(label + (f"(+{'+'.join(extra)})" if extra else ""))
        return " ".join(parts)
