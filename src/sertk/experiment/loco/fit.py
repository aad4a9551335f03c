"""One split of the benchmark: normalise, fit a classical model, score the test rows.

A split trains on the rows ``train`` (original utterances plus their augmented copies) and tests
on ``test``. Its classes are the labels found on its training rows (in label-map order); test
utterances of other classes are excluded and counted. Scoring is done two ways over the classes
the test rows share with training: *restricted* (argmax over those classes only, EmoBox's
cross-corpus rule) and *open* (argmax over every class the model has, as a user meets it).

Protocols. ``global``: nothing from the test rows; the model's own standardisation is fitted on
the training rows (with ``benchmark.train_norm: corpus`` every training corpus is first
z-normalised by its own statistics and the test rows by the training population's). ``speaker``:
every row is normalised with its unit's statistics (:mod:`.adapt`), computed from the unit's
original utterances without labels, test units included; copies use their source's unit.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

import numpy as np

from sertk.classical import fit_classifier
from sertk.experiment.loco.adapt import (
    normalize_units,
    one_sided_subsets,
    population_statistics,
    unit_statistics,
)


@dataclasses.dataclass(frozen=True)
class Split:
    """Row indices (into the corpus data) of one train/test split, and the inner-CV groups."""

    name: str
    corpus: str  # the corpus whose utterances are tested
    train: np.ndarray
    test: np.ndarray
    inner_groups: str  # "corpus" or "speaker"


@dataclasses.dataclass
class Scored:
    """What a split produced: its classes, the test rows scored, and the excluded counts."""

    labels: list[str]  # the model's classes
    shared: list[str]  # classes of the test rows that the model has
    rows: np.ndarray  # scored test rows (excluded ones left out)
    probabilities: np.ndarray  # [rows, labels]
    excluded: dict[str, int]
    training: dict[str, Any]
    one_sided: dict[str, Any] = dataclasses.field(default_factory=dict)


def units_of(data: Any, settings: Any) -> np.ndarray:
    """The adaptation unit of every utterance: its speaker, or the field ``adapt.units`` names
    for its corpus (``urdu: corpus``)."""
    corpus, speaker = data.column("corpus"), data.column("speaker")
    units = speaker.astype(object)
    for name, field in settings.adapt.units.items():
        mine = corpus == name
        if mine.any() and field != "speaker":
            units[mine] = [f"{field}={value}" for value in data.column(field)[mine]]
    return units.astype(str)


def fit_split(config: Any, data: Any, table: Any, split: Split, protocol: str) -> Scored:
    """Fit ``config.model`` on the split's training rows under ``protocol`` and score its test."""
    labels_all, corpus = data.column("label"), data.column("corpus")
    classes = [label for label in data.label_map.labels if label in set(labels_all[split.train])]
    keep = np.isin(labels_all[split.test], classes)
    excluded = dict(Counter(labels_all[split.test][~keep].tolist()))
    test = split.test[keep]
    x, copies, transform = _normalised(config, data, table, split, protocol)
    rows = np.concatenate([x[split.train], *(c[split.train] for c in copies)])
    owners = np.concatenate([split.train] * (1 + len(copies)))
    speakers = data.column("speaker")[owners]
    groups = corpus[owners] if split.inner_groups == "corpus" else speakers
    y = np.array([classes.index(label) for label in labels_all[owners]])
    params = {**config.model.hparams}
    if table.blocks is not None and params.get("blocks") is None:
        params["blocks"] = list(table.blocks)
    if config.benchmark.weights == "class" or config.train.class_weights:
        params["class_weight"] = "balanced"
    model = fit_classifier(
        rows, y, kind=config.model.name, num_classes=len(classes), groups=groups, params=params,
        search=config.model.search, seed=config.train.seed,
        scored=np.arange(owners.size) < split.train.size, calibration_groups=speakers,
    )  # fmt: skip
    probabilities = model.predict_proba(x[test])
    shared = [label for label in classes if label in set(labels_all[test])]
    training = _record(model, split, rows.shape[0], classes, corpus)
    scored = Scored(classes, shared, test, probabilities, excluded, training)
    if protocol == "speaker":
        scored.one_sided = _one_sided(config, data, table, test, transform, model, classes)
    return scored


def _normalised(config, data, table, split, protocol):
    """``(x, copies, transform)``: features under the protocol; ``transform(x_rows, units)``
    re-normalises raw test rows with statistics of those rows only (one-sided evaluation)."""
    settings = config.benchmark
    if protocol == "speaker":
        adapt = settings.adapt
        units = units_of(data, settings)
        population = population_statistics(table.x[split.train])
        options = {"statistic": adapt.statistic, "shrink": adapt.shrink, "population": population}
        stats = unit_statistics(table.x, units, **options)

        def transform(rows: np.ndarray, unit_ids: np.ndarray) -> np.ndarray:
            own = unit_statistics(table.x[rows], unit_ids, **options)
            return normalize_units(table.x[rows], unit_ids, own)

        x = normalize_units(table.x, units, stats)
        return x, [normalize_units(c, units, stats) for c in table.copies], transform
    if settings.train_norm == "corpus":
        corpus = data.column("corpus")
        population = population_statistics(table.x[split.train])
        units = np.where(np.isin(np.arange(corpus.size), split.train), corpus, "population")
        stats = unit_statistics(table.x[split.train], corpus[split.train])
        stats["population"] = population
        x = normalize_units(table.x, units, stats)
        return x, [normalize_units(c, units, stats) for c in table.copies], None
    return table.x, table.copies, None


def _record(model, split, rows: int, classes, corpus) -> dict[str, Any]:
    search = model.search
    return {
        "model": model.kind,
        "params": model.params,
        "classes": classes,
        "train_utterances": int(split.train.size),
        "train_rows": int(rows),
        "train_corpora": sorted(set(corpus[split.train].tolist())),
        "inner_groups": split.inner_groups,
        "search": None if search is None else {
            "best": search["best"], "best_ua": search["best_ua"], "grid": search["grid"],
        },
    }  # fmt: skip


def _one_sided(config, data, table, test, transform, model, classes) -> dict[str, Any]:
    """Test units whose audio is mostly (``share``) or only one emotion: statistics from that
    subset alone, every subset's utterances scored; predictions pooled per share."""
    labels_all = data.column("label")
    units = units_of(data, config.benchmark)
    out = {}
    for share in config.benchmark.one_sided:
        subsets = one_sided_subsets(
            labels_all[test], units[test], share=share, seed=config.train.seed
        )
        rows, probabilities = [], []
        for _, _, index in subsets:
            chosen = test[index]
            probabilities.append(model.predict_proba(transform(chosen, units[chosen])))
            rows.append(chosen)
        out[f"{share:g}"] = {
            "subsets": len(subsets),
            "rows": np.concatenate(rows),
            "probabilities": np.concatenate(probabilities),
        }
    return out
