"""Cross-corpus evaluation of a bundle on a labelled set it never saw.

Each label found on the utterances is mapped into the bundle's classes, in this order: an
explicit ``mapping`` entry (``{"calm": "neutral"}``), the bundle's own label map (the merges it
was trained with, e.g. ``excited -> happy``), then identity where the name is one of the
bundle's labels. Utterances whose label maps nowhere are excluded and reported with counts.
Features come from the bundle's own preprocessing, extractor(s) (through the feature cache,
test-time views included) and the model (any kind, ensembles included) runs through the
bundle's scorer (:mod:`sertk.inference`), the path a Recognizer uses.

>>> from sertk.corpora import scan_corpus
>>> utterances = scan_corpus("emodb", "examples").utterances  # or read_manifest("crema.csv")
>>> result = evaluate_bundle("default", utterances, mapping={"calm": "neutral"})
>>> print(format_evaluation(result))
bundle: .../default_model (global normalisation)
evaluated 7 of 7 utterances; label mapping: angry->angry, ...
UA ...
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.audio import load_audio
from sertk.bundle import load_bundle
from sertk.errors import ConfigError, CorpusError
from sertk.features.base import runs_own_threads
from sertk.features.cache import cached_extract, extract_utterances
from sertk.features.normalization import group_by_speaker
from sertk.features.voicing import check_speech
from sertk.inference import FeatureKey, Scorer
from sertk.metrics import classification_report
from sertk.parallel import chunk_length, map_chunks, plan_jobs


def map_labels(
    found: Iterable[str], bundle_labels: Sequence[str], bundle_mapping: Mapping[str, str],
    mapping: Mapping[str, str] | None = None,
) -> dict[str, str | None]:  # fmt: skip
    """Found label -> bundle label (None: cannot be mapped); see the module docstring."""
    labels = list(bundle_labels)
    explicit = dict(mapping or {})
    wrong = sorted(f"{src}={dst}" for src, dst in explicit.items() if dst not in labels)
    if wrong:
        raise ConfigError(
            f"mapping {', '.join(wrong)} targets labels the model does not have; its labels "
            f"are {', '.join(labels)}"
        )
    result: dict[str, str | None] = {}
    for label in found:
        if label in explicit:
            result[label] = explicit[label]
        elif bundle_mapping.get(label) in labels:
            result[label] = bundle_mapping[label]
        else:
            result[label] = label if label in labels else None
    return result


def evaluate_bundle(
    bundle_path: str | Path,
    utterances: Sequence[Any],
    *,
    mapping: Mapping[str, str] | None = None,
    cache: Any = None,
    device: str = "cpu",
    progress: bool = False,
    jobs: int | None = None,
    adapt: bool | None = None,
) -> dict[str, Any]:
    """Score the bundle at ``bundle_path`` (a folder, a run folder or ``default``) on
    ``utterances`` (``sertk.corpora.Utterance``); a JSON-ready dict.

    Keys: ``bundle``, ``labels``, ``normalization``, ``mapping`` (found label -> bundle label
    or None), ``unmapped`` (label -> excluded count), ``unused_mapping`` (explicit entries whose
    label never occurs), ``utterances``, ``evaluated``, ``report`` (a
    ``sertk.metrics.classification_report``) and ``predictions`` (id, label, predicted).
    ``cache``: an optional ``FeatureCache``; ``jobs``: worker processes for the features (see
    :func:`request_features`; None: automatic, 1 on a GPU).
    ``adapt`` (default: when the bundle is
    speaker-adapted) normalises each speaker's features with the statistics of all of that
    speaker's utterances (unlabelled; the speaker-adapted protocol): needed by a speaker-adapted
    bundle, chosen for an adaptive one (else its global model answers), refused by others.
    """
    bundle = load_bundle(bundle_path)
    utterances = list(utterances)
    if not utterances:
        raise CorpusError("no utterances to evaluate; check the manifest")
    scorer = bundle.build_scorer(device=device)
    labels = list(scorer.labels)
    counts = Counter(u.label for u in utterances)
    table = map_labels(sorted(counts), labels, bundle.label_map.get("mapping", {}), mapping)
    kept = _mappable(utterances, table, labels)
    if jobs is None and device != "cpu":
        jobs = 1  # the model runs on a GPU: keep one process
    features = request_features(scorer, kept, cache=cache, progress=progress, jobs=jobs)
    adapt = _check_adapt(scorer, adapt)
    scores = scorer.score(
        features,
        speakers=[u.speaker for u in kept] if adapt else None,
        statistics=speaker_statistics(scorer, kept, features) if adapt else None,
    )
    probabilities = scores.probabilities
    truth = [labels.index(table[u.label]) for u in kept]
    predicted = probabilities.argmax(axis=1)
    return {
        "bundle": str(Path(bundle.path).resolve()),
        "labels": labels,
        "normalization": scorer.normalization,
        "adapted_speakers": len({u.speaker for u in kept}) if adapt else 0,
        "mapping": table,
        "unmapped": {label: n for label, n in sorted(counts.items()) if table[label] is None},
        "unused_mapping": sorted(set(mapping or {}) - set(counts)),
        "utterances": len(utterances),
        "evaluated": len(kept),
        "report": classification_report(truth, predicted, labels),
        "predictions": [
            {"id": u.id, "label": table[u.label], "predicted": labels[int(p)]}
            for u, p in zip(kept, predicted, strict=True)
        ],
    }


def _check_adapt(scorer: Scorer, adapt: bool | None) -> bool:
    if adapt is None:
        return scorer.normalization == "speaker"
    if adapt and scorer.adaptation is None:
        raise ConfigError(
            f"{scorer.source} cannot adapt to speakers (no speaker-adapted model); evaluate it "
            "without --adapt"
        )
    if not adapt and scorer.normalization == "speaker":
        raise ConfigError(f"{scorer.source} is speaker-adapted: it needs --adapt speaker")
    return bool(adapt)


def speaker_statistics(scorer: Scorer, utterances: Sequence[Any], features) -> list | None:
    """Per utterance its speaker's statistics with the seconds of speech behind them, when the
    bundle's adaptation weighs seconds (shrinkage; None otherwise: the scorer groups the
    ``speakers`` itself, exactly as before)."""
    if scorer.adaptation is None or not scorer.adaptation.needs_prior:
        return None
    rate = scorer.sampling_rate
    seconds = [check_speech(load_audio(u.path, sampling_rate=rate)[0], rate).speech_seconds
               for u in utterances]  # fmt: skip
    out: list = [None] * len(utterances)
    for rows in group_by_speaker([u.speaker for u in utterances]).values():
        stats = scorer.statistics(
            [features[r] for r in rows], seconds=sum(seconds[r] for r in rows)
        )
        for row in rows:
            out[row] = stats
    return out


def request_features(
    scorer: Scorer,
    utterances: Sequence[Any],
    *,
    cache: Any = None,
    progress: bool = False,
    known: dict[FeatureKey, list[np.ndarray]] | None = None,
    jobs: int | None = None,
) -> list[dict[FeatureKey, np.ndarray]]:
    """Features of ``utterances`` for every key of ``scorer.requests``: each input's own
    features (``extract_utterances``) and each test-time view of the preprocessed audio,
    through ``cache`` when given. ``known``: keys whose features the caller already has (one
    array per utterance), e.g. a run's cached features. ``jobs``: worker processes, each
    taking chunks of utterances (None: automatic; see :mod:`sertk.parallel`)."""
    known = known or {}
    out: list[dict[FeatureKey, np.ndarray]] = [{} for _ in utterances]
    for index, item in enumerate(scorer.inputs):
        keys = [key for key in scorer.requests if key[0] == index]
        if (index, None) in keys:
            arrays = known.get((index, None)) or extract_utterances(
                utterances, item.extractor, preprocess=item.preprocess, cache=cache,
                progress=progress, jobs=jobs,
            )  # fmt: skip
            for row, array in enumerate(arrays):
                out[row][(index, None)] = array
        views = [key for key in keys if key[1] is not None and key not in known]
        if not views:
            continue
        count = plan_jobs(jobs, items=len(utterances), own_threads=runs_own_threads(item.extractor))
        found = map_chunks(
            _ViewFeatures(item, views, cache), utterances, jobs=count,
            chunk_size=chunk_length(len(utterances), count, limit=16),
        )  # fmt: skip
        for row, features in enumerate(found):
            out[row].update(features)
    return out


class _ViewFeatures:
    """Test-time views of one feature input for a chunk of utterances (here or in a worker):
    per utterance ``{key: features}``; each file is read once for all its views."""

    def __init__(self, item: Any, views: list[FeatureKey], cache: Any) -> None:
        self.item, self.views, self.cache = item, views, cache

    def __call__(self, chunk: Sequence[Any]) -> list[dict[FeatureKey, np.ndarray]]:
        preprocess, extractor = self.item
        rate = preprocess.sampling_rate
        results = []
        for utterance in chunk:
            signal = preprocess(load_audio(utterance.path, sampling_rate=rate)[0], rate)
            results.append({
                key: cached_extract(
                    extractor, key[1](signal, rate, preprocess), rate, preprocess=preprocess,
                    cache=self.cache,
                )
                for key in self.views
            })  # fmt: skip
        return results


def _mappable(utterances: Sequence[Any], table: Mapping[str, str | None], labels) -> list:
    kept = [u for u in utterances if table[u.label] is not None]
    if not kept:
        raise CorpusError(
            f"none of the labels {', '.join(sorted(table))} maps to the model's labels "
            f"{', '.join(labels)}; add --map SRC=DST for the ones that correspond"
        )
    return kept


def format_evaluation(result: Mapping[str, Any]) -> str:
    """Human-readable text of an ``evaluate_bundle`` result."""
    report, labels = result["report"], result["labels"]
    mapped = ", ".join(f"{src}->{dst}" for src, dst in result["mapping"].items() if dst is not None)
    lines = [
        f"bundle: {result['bundle']} ({result['normalization']} normalisation)",
        *(
            [
                f"adapted to {result['adapted_speakers']} speakers (each one's own utterances, "
                "unlabelled)"
            ]
            if result.get("adapted_speakers")
            else []
        ),  # fmt: skip
        f"evaluated {result['evaluated']} of {result['utterances']} utterances; "
        f"label mapping: {mapped}",
    ]
    if result["unmapped"]:
        skipped = ", ".join(f"{label} ({n})" for label, n in result["unmapped"].items())
        lines.append(f"labels with no mapping, excluded: {skipped}")
    if result["unused_mapping"]:
        lines.append(f"--map entries for labels not found: {', '.join(result['unused_mapping'])}")
    lines.append(f"UA {report['ua']:.4f}  WA {report['wa']:.4f}  macro-F1 {report['macro_f1']:.4f}")
    lines.append(f"{'class':<12} {'precision':>9} {'recall':>9} {'F1':>9} {'support':>8}")
    for label in labels:
        row = report["per_class"][label]
        cells = ["—" if row[k] is None else f"{row[k]:.4f}" for k in ("precision", "recall", "f1")]
        lines.append(f"{label:<12} {cells[0]:>9} {cells[1]:>9} {cells[2]:>9} {row['support']:>8}")
    width = max(6, *(len(label) for label in labels))
    lines.append("confusion (rows true, columns predicted):")
    lines.append(" " * 12 + " ".join(f"{label[:width]:>{width}}" for label in labels))
    for label, row in zip(labels, report["confusion"], strict=True):
        lines.append(f"{label:<12}" + " ".join(f"{count:>{width}}" for count in row))
    return "\n".join(lines)
