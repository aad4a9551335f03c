"""The benchmark's data: corpora on one label set, and one feature matrix per version.

``load_corpora`` scans every ``data.corpora`` entry, prefixes speakers and ids with the corpus
name (``emodb:03``), records ``fields["corpus"]`` and applies the recipe's label map (default:
the ``shared`` preset), counting per corpus what it merged and what it could not map.
``feature_table`` extracts the recipe's utterance-level features once for every utterance
(``[n, dim]``) and, for ``train.augment``, the same for each augmented copy (copy ``k`` of the
utterance at position ``i`` is drawn with ``(train.seed, k, i)``), all through the feature cache.
Every utterance trains in some split, so copies are made of all of them; a split uses only the
copies of its training utterances.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from sertk.audio import load_audio
from sertk.augment import Augmenter, change_speed
from sertk.augment.views import fit_length
from sertk.corpora import LabelMap, scan_corpus
from sertk.errors import ConfigError, FeatureError
from sertk.features import build_extractor
from sertk.features.cache import cached_extract, extract_utterances


@dataclasses.dataclass
class CorpusData:
    """Utterances after the label map (corpus order, then each adapter's order)."""

    utterances: list[Any]
    label_map: Any
    merged: dict[str, dict[str, int]]  # corpus -> "calm -> neutral" -> count
    dropped: dict[str, dict[str, int]]  # corpus -> label -> count
    problems: list[str]

    @property
    def corpora(self) -> list[str]:
        return list(dict.fromkeys(u.fields["corpus"] for u in self.utterances))

    def column(self, name: str) -> np.ndarray:
        """``speaker``, ``label`` or a field of every utterance, ``[n]`` strings."""
        if name in ("speaker", "label", "id"):
            return np.array([getattr(u, name) for u in self.utterances])
        return np.array([u.fields.get(name, "") for u in self.utterances])


@dataclasses.dataclass
class FeatureTable:
    """``x`` ``[n, dim]``: one row per utterance; ``copies``: one such matrix per copy."""

    x: np.ndarray
    copies: list[np.ndarray]
    blocks: list[int] | None


def load_corpora(config: Any, names: Sequence[str] | None = None) -> CorpusData:
    """Scan ``config.data.corpora`` (only ``names`` when given) onto one label set."""

    sources = config.data.corpora
    if not sources:
        raise ConfigError("a benchmark recipe lists its corpora in data.corpora")
    known = [source.prefix for source in sources]
    unknown = sorted(set(names or ()) - set(known))
    if unknown:
        raise ConfigError(
            f"--corpora names {', '.join(unknown)}, which the recipe's data.corpora does not "
            f"list; it has {', '.join(known)}"
        )
    label_map = config.data.label_map() or LabelMap.preset("shared")
    utterances, problems, merged, dropped = [], [], {}, {}
    for source in sources:
        if names and source.prefix not in names:
            continue
        scanned = scan_corpus(source.corpus, source.root)
        problems += [f"{source.prefix}: {problem}" for problem in scanned.problems]
        kept, dropped[source.prefix] = label_map.apply(scanned.utterances)
        merged[source.prefix] = dict(
            Counter(
                f"{u.fields['source_label']} -> {u.label}"
                for u in kept
                if "source_label" in u.fields
            )
        )
        utterances += [
            dataclasses.replace(
                u, id=f"{source.prefix}:{u.id}", speaker=f"{source.prefix}:{u.speaker}",
                fields={**u.fields, "corpus": source.prefix},
            )
            for u in kept
        ]  # fmt: skip
    return CorpusData(utterances, label_map, merged, dropped, problems)


def feature_table(
    config: Any, data: CorpusData, *, cache: Any = None, progress: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> FeatureTable:  # fmt: skip
    """Features of every utterance and of ``train.augment``'s copies (see the module docstring)."""
    extractor = build_extractor({"name": config.features.name, **config.features.params})
    if extractor.frame_rate != 0:
        raise ConfigError(
            f"the benchmark fits classical models on utterance-level features; "
            f"{config.features.name!r} gives frames (use e.g. emotion_functionals)"
        )
    preprocess = config.preprocess
    items = extract_utterances(
        data.utterances, extractor, preprocess=preprocess, cache=cache, progress=progress
    )
    x = _stack(items, data.utterances)
    log(f"features: {x.shape[0]} utterances x {x.shape[1]} ({extractor.name})")
    copies = _copies(config, data.utterances, extractor, preprocess, cache, log)
    return FeatureTable(x, copies, getattr(extractor, "blocks", None))


def _stack(items: Sequence[np.ndarray], utterances: Sequence[Any]) -> np.ndarray:
    for utterance, item in zip(utterances, items, strict=True):
        if item.ndim != 2 or item.shape[0] != 1:
            raise FeatureError(f"utterance {utterance.id} has features of shape {item.shape}")
    return np.concatenate(items).astype(np.float64)


def _copies(config, utterances, extractor, preprocess, cache, log) -> list[np.ndarray]:
    """One ``[n, dim]`` matrix per augmented copy of ``train.augment`` (none when it is off)."""
    augment = config.train.augment
    if augment.crops or augment.features_enabled:
        raise ConfigError(
            "the benchmark supports waveform copies (train.augment noise/gain/speed/..., "
            "speed_factors), not crops or feature masking"
        )
    if not augment.waveform_copies:
        return []
    augmenter = Augmenter(augment, seed=config.train.seed)
    rate = preprocess.sampling_rate
    rows: list[list[np.ndarray]] = [[] for _ in range(augment.copies)]
    for index, utterance in enumerate(utterances):
        signal = preprocess(load_audio(utterance.path, sampling_rate=rate)[0], rate)
        for copy in range(augment.copies):
            source = signal
            if augment.speed_factors:
                source = change_speed(signal, augment.speed_factors[copy], sampling_rate=rate)
            version = fit_length(augmenter.waveform(source, rate, copy, index), preprocess)
            rows[copy].append(
                cached_extract(extractor, version, rate, preprocess=preprocess, cache=cache)
            )
    log(f"features: {augment.copies} augmented copies of each utterance")
    return [_stack(items, utterances) for items in rows]
