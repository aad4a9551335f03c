"""Test-time adaptation measured on real corpora with a speaker-adapted run and a global run on
the same folds (e.g. ``recipes/emodb_functionals_adapted.yaml`` and ``emodb_functionals.yaml``):

- **how UA grows with seconds of a speaker's speech** (``curve``): each test speaker's
  statistics come from a random subset of their clips holding at least S seconds of speech
  (``sertk.features.voicing``'s speech seconds, as the Recognizer counts them), and all of
  their clips are scored with them; pooled UA per S (mean of ``--repeats`` draws), next to the
  global model's UA on the same clips. Where the adapted model catches up with the global one
  is the switch-over an adaptive bundle should use (``min_seconds``);
- **one-sided speakers** (``one-sided``): each test speaker's audio restricted to one emotion
  E (``single``: only E; ``70%``: all of E plus clips of the other emotions making 30 %), the
  statistics taken from that audio and that audio scored; pooled UA over all (speaker, E), for
  the global model, plain z-score and shrinkage towards the training speakers' prior with
  ``--priors`` seconds (the prior of each fold from its training speakers only);
  ``balanced`` is the usual protocol (all of the speaker's clips).

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_adaptation.py ADAPTED_RUN GLOBAL_RUN
[--repeats 5] [--json out.json]`` (features come from the run's feature cache).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from sertk.audio import load_audio
from sertk.bundle import load_bundle
from sertk.config import load_config
from sertk.experiment.evaluate import request_features
from sertk.experiment.prepare import prepare_data
from sertk.features.cache import FeatureCache
from sertk.features.normalization import (
    Adaptation,
    FeatureStatistics,
    group_by_speaker,
    population_prior,
)
from sertk.features.voicing import check_speech
from sertk.metrics import classification_report

KEY = (0, None)
SECONDS = (2, 5, 10, 15, 20, 30, 45, 60, 90)
PRIORS = (5, 10, 20, 30, 60, 120, 240, 480)


def load_run(run: Path, cache: FeatureCache):
    """Utterances (by id), folds, each utterance's raw features and speech seconds."""
    config = load_config(run / "config.yaml")
    data = prepare_data(config)
    utterances = {u.id: u for u in data.utterances}
    scorer = load_bundle(run / "folds" / data.folds[0].name / "bundle").build_scorer()
    order = list(utterances)
    features = request_features(scorer, [utterances[i] for i in order], cache=cache)
    raw = {uid: f[KEY] for uid, f in zip(order, features, strict=True)}
    rate = scorer.sampling_rate
    seconds = {
        uid: check_speech(load_audio(u.path, sampling_rate=rate)[0], rate).speech_seconds
        for uid, u in utterances.items()
    }
    return utterances, data.folds, raw, seconds


def scorer_of(bundle, method: str, prior_seconds: float, prior):
    if method == "zscore":
        return bundle.build_scorer()
    contract = dataclasses.replace(
        bundle.contract, adaptation=Adaptation("shrinkage", prior_seconds=prior_seconds)
    )
    return dataclasses.replace(bundle, contract=contract, priors={KEY: prior}).build_scorer()


def predict(scorer, raw, ids, stats_ids, seconds) -> np.ndarray:
    """Predicted class indices of ``ids`` normalised with the statistics of ``stats_ids``."""
    stats = {KEY: FeatureStatistics.of([raw[i] for i in stats_ids],
                                       seconds=sum(seconds[i] for i in stats_ids))}  # fmt: skip
    scores = scorer.score([{KEY: raw[i]} for i in ids], statistics=stats)
    return scores.probabilities.argmax(axis=1)


def ua(truth: list[int], predicted: list[int], labels) -> float:
    return classification_report(truth, predicted, labels)["ua"]


def fold_models(adapted_run, global_run, fold, utterances, raw, seconds, priors):
    """Per fold: the adapted bundle, scorers per method, the global model's predictions."""
    bundle = load_bundle(adapted_run / "folds" / fold.name / "bundle")
    train = [*fold.train, *fold.valid]
    groups = group_by_speaker([utterances[i].speaker for i in train])
    prior = population_prior(
        FeatureStatistics.of([raw[train[r]] for r in rows]) for rows in groups.values()
    )
    scorers = {"zscore": scorer_of(bundle, "zscore", 0, None)}
    for k in priors:
        scorers[f"shrinkage {k:g} s"] = scorer_of(bundle, "shrinkage", k, prior)
    general = load_bundle(global_run / "folds" / fold.name / "bundle").build_scorer()
    test = list(fold.test)
    found = general.score([{KEY: raw[i]} for i in test]).probabilities.argmax(axis=1)
    return bundle.labels, scorers, dict(zip(test, found.tolist(), strict=True))


def run(adapted_run: Path, global_run: Path, *, repeats: int, priors) -> dict:
    cache = FeatureCache(None)
    utterances, folds, raw, seconds = load_run(adapted_run, cache)
    rng = np.random.default_rng(0)
    curve: dict[str, dict] = {}
    sided: dict[str, dict] = {}
    for fold in folds:
        labels, scorers, general = fold_models(
            adapted_run, global_run, fold, utterances, raw, seconds, priors
        )
        index = {label: k for k, label in enumerate(labels)}
        by_speaker = group_by_speaker([utterances[i].speaker for i in fold.test])
        for rows in by_speaker.values():
            ids = [fold.test[r] for r in rows]
            truth = [index[utterances[i].label] for i in ids]
            _curve(curve, scorers, raw, seconds, ids, truth, general, rng, repeats)
            _one_sided(sided, scorers, raw, seconds, ids, truth, general, rng)
    return {"labels": list(labels), "curve": _summarise(curve, labels),
            "one_sided": _summarise(sided, labels)}  # fmt: skip


def _add(store, key, method, truth, predicted):
    entry = store.setdefault(key, {}).setdefault(method, ([], []))
    entry[0].extend(truth)
    entry[1].extend(predicted)


def _curve(store, scorers, raw, seconds, ids, truth, general, rng, repeats) -> None:
    for target in SECONDS:
        for rep in range(repeats):
            order = rng.permutation(len(ids))
            total, chosen = 0.0, []
            for k in order:
                chosen.append(ids[k])
                total += seconds[ids[k]]
                if total >= target:
                    break
            for method, scorer in scorers.items():
                _add(
                    store, (target, rep), method, truth, predict(scorer, raw, ids, chosen, seconds)
                )
    for rep in range(repeats):
        _add(store, ("all", rep), "global", truth, [general[i] for i in ids])
        for method, scorer in scorers.items():
            _add(store, ("all", rep), method, truth, predict(scorer, raw, ids, ids, seconds))


def _one_sided(store, scorers, raw, seconds, ids, truth, general, rng) -> None:
    classes = sorted(set(truth))
    subsets = {"balanced": [list(range(len(ids)))]}
    for c in classes:
        own = [k for k, t in enumerate(truth) if t == c]
        other = [k for k, t in enumerate(truth) if t != c]
        if len(own) < 2:
            continue
        subsets.setdefault("single", []).append(own)
        extra = rng.choice(other, size=min(len(other), round(len(own) * 3 / 7)), replace=False)
        subsets.setdefault("70%", []).append(own + sorted(extra.tolist()))
    for name, parts in subsets.items():
        for part in parts:
            chosen = [ids[k] for k in part]
            want = [truth[k] for k in part]
            _add(store, name, "global", want, [general[i] for i in chosen])
            for method, scorer in scorers.items():
                _add(store, name, method, want, predict(scorer, raw, chosen, chosen, seconds))


def _summarise(store, labels) -> dict:
    out: dict = {}
    for key, methods in store.items():
        name = str(key[0]) if isinstance(key, tuple) else key
        for method, (truth, predicted) in methods.items():
            out.setdefault(name, {}).setdefault(method, []).append(ua(truth, predicted, labels))
    return {
        k: {m: round(100 * float(np.mean(v)), 1) for m, v in ms.items()} for k, ms in out.items()
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("adapted_run", type=Path)
    parser.add_argument("global_run", type=Path)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--priors", default=",".join(map(str, PRIORS)),
                        help="shrinkage prior weights to try, seconds")  # fmt: skip
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    priors = [float(x) for x in args.priors.split(",")]
    result = run(args.adapted_run, args.global_run, repeats=args.repeats, priors=priors)
    print(
        f"UA (%) against seconds of the speaker's speech in the statistics ({args.adapted_run.name})"
    )
    for name, methods in result["curve"].items():
        print(f"  {name:>5}  " + "  ".join(f"{m} {v:5.1f}" for m, v in methods.items()))
    print("one-sided speakers: pooled UA (%)")
    for name, methods in result["one_sided"].items():
        print(f"  {name:>8}  " + "  ".join(f"{m} {v:5.1f}" for m, v in methods.items()))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
