"""``run_benchmark``: the splits of a benchmark, one folder per split, resumable.

Modes:

- ``loco`` (leave one corpus out): for every corpus, train on all the others and test on it.
  ``benchmark.inner_groups: corpus`` makes the model's inner CV (``model.search``, the
  calibration) a nested leave-one-corpus-out over the training corpora: choices are made on
  training corpora, never on the held-out one.
- ``within`` (each corpus's own speaker-independent CV, its in-corpus ceiling): RAVDESS on the
  EmoBox actor folds, corpora of <= 10 speakers leave-one-speaker-out, the others 5 folds grouped
  by speaker (``folds.seed``); inner CV grouped by speaker.

Layout of ``<output_dir>/<name>-<mode>-<timestamp>/``::

    config.yaml  env.json  splits.json  labels.json  summary.json  report.md  ua.png
    <protocol>/<split>/  metrics.json  predictions.csv  confusion_restricted.png
                         confusion_open.png

A split is complete when its ``metrics.json`` exists (written last); ``resume=True`` skips
complete splits and redoes the rest.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import ConfigError
from sertk.experiment import artifacts
from sertk.experiment.loco.data import feature_table, load_corpora
from sertk.experiment.loco.fit import Split, fit_split
from sertk.experiment.loco.report import split_metrics, write_outputs, write_split
from sertk.experiment.loco.settings import dump_benchmark_config, load_benchmark_config
from sertk.experiment.prepare import resolve_config
from sertk.features.cache import FeatureCache
from sertk.folds import EMOBOX_RAVDESS_FOLDS, make_folds

MODES = ("loco", "within")
SPLITS_FILE = "splits.json"


def run_benchmark(
    config: Any, *, mode: str = "loco", corpora: Sequence[str] | None = None,
    resume: bool = False, run_dir: str | Path | None = None, cache_dir: str | Path | None = None,
    progress: bool = False, log: Callable[[str], None] | None = None,
) -> Path:  # fmt: skip
    """Run (or with ``resume`` continue) a benchmark of a ``BenchmarkConfig``; its folder.

    ``corpora``: names (``data.corpora`` prefixes) to use, default all. With ``resume``,
    ``run_dir`` is the folder to continue and its stored recipe, mode and corpora are used.
    """
    log = log or (lambda _: None)
    if resume:
        folder, config, mode, corpora = _reopen(run_dir)
    else:
        if mode not in MODES:
            raise ConfigError(f"unknown benchmark mode {mode!r}; choose {' or '.join(MODES)}")
        config = resolve_config(config)
    data = load_corpora(config, corpora)
    splits = make_splits(data, mode, config)
    cache = FeatureCache(cache_dir)
    if resume:
        _check_same_splits(folder, data, splits)
    else:
        folder = _new_folder(config, mode, data, splits, cache.root.resolve())
    log(f"run folder: {folder}")
    table = feature_table(config, data, cache=cache, progress=progress, log=log)
    results: dict[str, dict[str, Any]] = {}
    for protocol in config.benchmark.protocols:
        for split in splits:
            results.setdefault(protocol, {})[split.name] = _run_split(
                config, data, table, split, protocol, folder / protocol / split.name, log
            )
    write_outputs(folder, config, mode, data, results)
    return folder


def _run_split(config, data, table, split: Split, protocol: str, where: Path, log) -> dict:
    done = where / artifacts.METRICS_FILE
    if done.is_file():
        metrics = artifacts.read_json(done)
        log(f"{protocol} {split.name}: done before the resume")
        return metrics
    start = time.perf_counter()
    scored = fit_split(config, data, table, split, protocol)
    metrics = split_metrics(data, scored, split, time.perf_counter() - start)
    write_split(where, data, scored, metrics)
    restricted, opened = metrics["restricted"], metrics["open"]
    log(
        f"{protocol} {split.name}: restricted UA {restricted['ua']:.4f} WA {restricted['wa']:.4f}"
        f"  open UA {opened['ua']:.4f}  (n={restricted['n']}, {metrics['seconds']:.0f} s)"
    )
    return metrics


def make_splits(data: Any, mode: str, config: Any) -> list[Split]:
    """The splits of ``mode`` over ``data`` (see the module docstring)."""
    corpus = data.column("corpus")
    names = data.corpora
    if mode == "loco":
        if len(names) < 2:
            raise ConfigError("leave-one-corpus-out needs at least 2 corpora")
        groups = config.benchmark.inner_groups if len(names) > 2 else "speaker"
        rows = np.arange(corpus.size)
        return [
            Split(name, name, rows[corpus != name], rows[corpus == name], groups) for name in names
        ]
    return [split for name in names for split in _within(data, name, config)]


def _within(data: Any, name: str, config: Any) -> list[Split]:
    corpus = data.column("corpus")
    rows = np.flatnonzero(corpus == name)
    utterances = [data.utterances[i] for i in rows]
    speakers = {u.speaker for u in utterances}
    source = next(s for s in config.data.corpora if s.prefix == name)
    if source.corpus == "ravdess":
        folds = [[f"{name}:Actor_{actor:02d}" for actor in fold] for fold in EMOBOX_RAVDESS_FOLDS]
        options = {"strategy": "explicit", "folds": folds}
    elif len(speakers) <= 10:
        options = {"strategy": "logo"}
    else:
        options = {"strategy": "group_kfold", "n_splits": 5, "seed": config.folds.seed}
    position = {u.id: i for i, u in zip(rows, utterances, strict=True)}
    splits = []
    for number, fold in enumerate(make_folds(utterances, **options), start=1):
        test = np.array([position[uid] for uid in fold.test])
        tested = sorted({data.utterances[i].speaker.split(":", 1)[1] for i in test})
        label = tested[0] if options["strategy"] == "logo" else f"fold{number}"
        train = np.array([position[uid] for uid in (*fold.train, *fold.valid)])
        splits.append(Split(f"{name}/{label}", name, train, test, "speaker"))
    return splits


def _new_folder(config, mode: str, data, splits: list[Split], cache_root: Path) -> Path:
    folder = artifacts.new_run_dir(config.output_dir, f"{config.name}-{mode}")
    artifacts.write_text_atomic(folder / artifacts.CONFIG_FILE, dump_benchmark_config(config))
    artifacts.write_json(folder / artifacts.ENV_FILE, artifacts.environment(cache_root))
    ids, speaker = data.column("id"), data.column("speaker")
    document = {
        "mode": mode,
        "corpora": data.corpora,
        "splits": [
            {
                "name": split.name,
                "corpus": split.corpus,
                "inner_groups": split.inner_groups,
                "train_speakers": int(np.unique(speaker[split.train]).size),
                "test_speakers": sorted(set(speaker[split.test].tolist())),
                "test": ids[split.test].tolist(),
            }
            for split in splits
        ],
    }
    artifacts.write_json(folder / SPLITS_FILE, document)
    return folder


def _check_same_splits(folder: Path, data: Any, splits: list[Split]) -> None:
    stored = artifacts.read_json(folder / SPLITS_FILE)["splits"]
    ids = data.column("id")
    now = [(split.name, ids[split.test].tolist()) for split in splits]
    if now != [(entry["name"], entry["test"]) for entry in stored]:
        raise ConfigError(
            f"cannot resume {folder}: the corpora now give other splits than its {SPLITS_FILE}; "
            "restore the data the run started with, or start a new run"
        )


def _reopen(run_dir) -> tuple[Path, Any, str, list[str]]:
    """The stored recipe, mode and corpora of a run folder to resume."""
    if run_dir is None:
        raise ConfigError("resume needs the run folder to continue")
    folder = Path(run_dir).resolve()
    if not (folder / artifacts.CONFIG_FILE).is_file() or not (folder / SPLITS_FILE).is_file():
        raise ConfigError(f"{folder} is not a benchmark run folder (no config.yaml/splits.json)")
    stored = artifacts.read_json(folder / SPLITS_FILE)
    config = load_benchmark_config(folder / artifacts.CONFIG_FILE)
    env = artifacts.read_json(folder / artifacts.ENV_FILE)
    env.setdefault("resumed", []).append(artifacts.environment())
    artifacts.write_json(folder / artifacts.ENV_FILE, env)
    return folder, dataclasses.replace(config), stored["mode"], stored["corpora"]
