"""``run_experiment``: speaker-independent cross-validation over cached features.

corpus -> label map -> folds -> features of every utterance, once, through the
``FeatureCache`` -> per fold: normalisation fitted on its training utterances, model trained
with early stopping on its validation speakers (a classical model: fitted with an inner
grouped CV, see ``classical.py``), bundle saved, test fold scored through the reloaded bundle
-> summary over folds -> optional final model (``final.py``: refit, or the fold ensemble).

Resuming (``resume=True``) reopens a run folder: completed folds (their ``metrics.json``
exists) are skipped, an interrupted fold continues from its training checkpoint, and the
result equals an uninterrupted run. Every fold re-seeds before building its model, so the
order in which folds run does not matter.

>>> run_dir = run_experiment(load_config("recipes/emodb_logmel.yaml"))  # needs a corpus  # doctest: +SKIP
>>> json.loads((run_dir / "summary.json").read_text())["mean"]["ua"]  # needs a corpus  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sertk.bundle import load_bundle
from sertk.config import ExperimentConfig, config_to_dict, dump_config, load_config
from sertk.errors import ConfigError, require
from sertk.experiment import artifacts
from sertk.experiment.artifacts import (
    METRICS_FILE,
    PREDICTIONS_FILE,
    VALID_PREDICTIONS_FILE,
    read_json,
    write_json,
)
from sertk.experiment.context import FitContext, no_log
from sertk.experiment.evaluate import request_features
from sertk.experiment.final import final_model
from sertk.experiment.fitting import build_torch_model, fit_bundle
from sertk.experiment.prepare import check_config, model_kind, prepare_data, resolve_config
from sertk.experiment.report import write_summary
from sertk.features import build_extractor
from sertk.features.cache import FeatureCache, extract_utterances
from sertk.metrics import classification_report, plot_confusion, plot_curves
from sertk.parallel import check_jobs

# may differ between an interrupted run and its resume: they do not change any result
_RESUME_FREE = ("name", "output_dir", "train.device", "train.num_workers")


def run_experiment(
    config: ExperimentConfig,
    *,
    resume: bool = False,
    run_dir: str | Path | None = None,
    cache_dir: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    jobs: int | None = None,
) -> Path:
    """Run (or with ``resume=True`` continue) a cross-validation experiment; returns its folder.

    ``run_dir``: the folder to resume (required with ``resume``), or an empty/new folder for a
    new run (default: a fresh ``<output_dir>/<name>-<timestamp>``). ``cache_dir``: the feature
    cache (default ``$SERTK_CACHE`` or ``~/.cache/sertk/features``). ``log`` receives one line
    per fold and stage (e.g. ``print``). ``jobs``: worker processes that extract features (of
    the utterances, their augmented copies and test-time views; None: one per core, 1 for an
    SSL encoder or a GPU run); results do not depend on it.
    """
    log = log or no_log
    check_jobs(jobs)
    config = resolve_config(config)
    check_config(config)
    _check_device(config)
    cache = FeatureCache(cache_dir)
    data = None if resume else prepare_data(config)  # bad data: fail before making a folder
    folder, config = _open_run(config, resume, run_dir, cache.root.resolve())
    log(f"run folder: {folder}")
    data = data or prepare_data(config)
    _record_splits(folder, data, resume)
    ctx = _fit_context(
        config, data, folder, cache, resume=resume, progress=progress, log=log, jobs=jobs
    )
    fold_metrics = {}
    for fold in data.folds:
        fold_dir = folder / "folds" / fold.name
        done = (fold_dir / METRICS_FILE).is_file()
        fold_metrics[fold.name] = metrics = run_fold(ctx, fold, fold_dir)
        log(_fold_line(metrics) + (" [completed before the resume]" if done else ""))
    final = None
    if config.final_model:
        final = final_model(ctx, data.folds, fold_metrics, folder / "final", log)
    write_summary(folder, config, data, fold_metrics, final)
    return folder


def _check_device(config: ExperimentConfig) -> None:
    if config.train.device == "cuda":
        torch = require("torch", extra="neural", what="train.device 'cuda'")
        if not torch.cuda.is_available():
            raise ConfigError("train.device is 'cuda' but no CUDA device is available; use 'auto'")


def _open_run(config, resume: bool, run_dir, cache_root: Path) -> tuple[Path, ExperimentConfig]:
    """New run: create the folder, write config.yaml and env.json. Resume: check the config."""
    if not resume:
        if run_dir is not None:
            folder = artifacts.claim_run_dir(run_dir)
        else:
            folder = artifacts.new_run_dir(config.output_dir, config.name)
        artifacts.write_text_atomic(folder / artifacts.CONFIG_FILE, dump_config(config))
        write_json(folder / artifacts.ENV_FILE, artifacts.environment(cache_root))
        return folder, config
    if run_dir is None:
        raise ConfigError("resume=True needs run_dir, the folder of the run to continue")
    folder = Path(run_dir).resolve()
    stored_path = folder / artifacts.CONFIG_FILE
    if not stored_path.is_file():
        raise ConfigError(f"{folder} is not a sertk run folder (no {artifacts.CONFIG_FILE})")
    stored = load_config(stored_path)
    _check_resume_config(_flat(config_to_dict(stored)), _flat(config_to_dict(config)), folder)
    env_path = folder / artifacts.ENV_FILE
    env = read_json(env_path) if env_path.is_file() else {}
    env.setdefault("resumed", []).append(artifacts.environment(cache_root))
    write_json(env_path, env)
    # keep the stored run's settings, except the ones that change no result
    train = dataclasses.replace(
        stored.train, device=config.train.device, num_workers=config.train.num_workers
    )
    return folder, dataclasses.replace(stored, train=train)


def _flat(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and key not in ("hparams", "params", "mapping", "search"):
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _check_resume_config(old: dict[str, Any], new: dict[str, Any], folder: Path) -> None:
    changes = [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in sorted(set(old) | set(new))
        if key not in _RESUME_FREE and old.get(key) != new.get(key)
    ]
    if changes:
        raise ConfigError(
            f"cannot resume {folder}: the config differs from the run's {artifacts.CONFIG_FILE} "
            f"({'; '.join(changes)}); resume with the stored config (sertk train --resume "
            f"{folder} without a recipe) or start a new run"
        )


def _record_splits(folder: Path, data, resume: bool) -> None:
    path = folder / artifacts.SPLITS_FILE
    if resume and path.is_file():
        artifacts.check_same_splits(read_json(path), data.folds, path)
        return
    write_json(path, artifacts.splits_document(data.folds, data.utterances))


def _fit_context(config, data, folder, cache, *, resume, progress, log, jobs) -> FitContext:
    """Build the extractor, check the model builds, and extract every utterance's features."""
    preprocess = config.preprocess
    if preprocess.crop == "random":
        log("note: features are cached once per utterance, so crop 'random' acts as 'center'")
    extractor = build_extractor({"name": config.features.name, **config.features.params})
    kind = model_kind(config.model.name)
    if kind == "torch":
        build_torch_model(config, extractor, len(data.label_map.labels))  # bad hparams fail now
        if jobs is None and _torch_device(config) != "cpu":
            jobs = 1  # a GPU run: keep one process
    utterances = data.utterances
    arrays = extract_utterances(
        utterances, extractor, preprocess=preprocess, cache=cache, progress=progress, jobs=jobs
    )
    log(
        f"features: {len(arrays)} utterances, {extractor.name} dim {extractor.dim} "
        f"(cache {cache.root}: {cache.hits} hits, {cache.misses} misses)"
    )
    return FitContext(
        config=config,
        label_map=data.label_map,
        extractor=extractor,
        preprocess=preprocess,
        raw={u.id: array for u, array in zip(utterances, arrays, strict=True)},
        utterances={u.id: u for u in utterances},
        kind=kind,
        resume=resume,
        progress=progress,
        run_name=folder.name,
        keys={u.id: index for index, u in enumerate(utterances)},
        cache=cache,
        log=log,
        jobs=jobs,
    )


def run_fold(ctx: FitContext, fold: Any, fold_dir: Path) -> dict[str, Any]:
    """Train, save and score one fold; a fold whose ``metrics.json`` exists is read back.

    Writes ``predictions.csv`` (test utterances: id, speaker, label, predicted, one
    probability column per class) and, for neural models, ``valid_predictions.csv`` (the
    validation speakers, scored by the chosen checkpoint; used to fit ensemble weights).
    """
    metrics_path = fold_dir / METRICS_FILE
    if metrics_path.is_file():
        return read_json(metrics_path)
    (ctx.log or no_log)(_fit_line(ctx, fold))
    start = time.perf_counter()
    bundle_path, training = fit_bundle(
        ctx, fold.train, fold.valid, fold_dir, extra={"fold": fold.name}
    )
    scorer = _scorer(ctx, bundle_path)
    labels = list(scorer.labels)
    probabilities = _score(scorer, ctx, fold.test)
    truth = [labels.index(ctx.utterances[uid].label) for uid in fold.test]
    predicted = probabilities.argmax(axis=1)
    report = classification_report(truth, predicted, labels)
    write_predictions(fold_dir / PREDICTIONS_FILE, ctx, fold.test, labels, probabilities)
    if ctx.kind == "torch" and fold.valid:
        valid = _score(scorer, ctx, fold.valid)
        write_predictions(fold_dir / VALID_PREDICTIONS_FILE, ctx, fold.valid, labels, valid)
    plot_confusion(report["confusion"], labels, fold_dir / "confusion.png")
    if training.get("history"):
        plot_curves(training["history"], fold_dir / "curves.png", best_epoch=training["best_epoch"])
    metrics = {
        "fold": fold.name,
        "report": report,
        "training": training,
        "test_utterances": len(fold.test),
        "test_speakers": sorted({ctx.utterances[uid].speaker for uid in fold.test}),
        "seconds": round(time.perf_counter() - start, 3),
    }
    write_json(metrics_path, metrics)  # last: marks the fold complete
    shutil.rmtree(fold_dir / "checkpoint", ignore_errors=True)  # the bundle holds the weights
    return metrics


def score_bundle(ctx: FitContext, bundle_path: Path, ids) -> tuple[list[str], Any]:
    """Labels (from the bundle) and probabilities ``[n, classes]`` of ``ids`` via the bundle."""
    scorer = _scorer(ctx, bundle_path)
    return list(scorer.labels), _score(scorer, ctx, ids)


def _scorer(ctx: FitContext, bundle_path: Path) -> Any:
    """The scorer of a bundle this run saved, with the run's own extractor (already built)."""
    device = _torch_device(ctx.config) if ctx.kind == "torch" else "cpu"
    return load_bundle(bundle_path).build_scorer(device=device, extractor=ctx.extractor)


def _score(scorer: Any, ctx: FitContext, ids) -> Any:
    """Probabilities ``[n, classes]`` of ``ids``: the run's features of each utterance (and of
    the bundle's test-time views, through the cache), scored as inference scores them; under
    the speaker protocol with the statistics of each speaker's own utterances."""
    utterances = [ctx.utterances[uid] for uid in ids]
    known = {(0, None): [ctx.raw[uid] for uid in ids]}
    features = request_features(scorer, utterances, cache=ctx.cache, known=known, jobs=ctx.jobs)
    statistics = [ctx.statistics(uid) for uid in ids]
    speakers = [u.speaker for u in utterances]
    return scorer.score(features, speakers=speakers, statistics=statistics).probabilities


def _torch_device(config: ExperimentConfig) -> str:
    if config.train.device != "auto":
        return config.train.device
    torch = require("torch", extra="neural", what="train.device 'auto'")
    return "cuda" if torch.cuda.is_available() else "cpu"


def write_predictions(path: Path, ctx: FitContext, ids, labels, probabilities) -> None:
    """CSV: id, speaker, label, predicted, ``p_<label>`` per class (6 decimals)."""
    rows = [["id", "speaker", "label", "predicted", *(f"p_{label}" for label in labels)]]
    for uid, row in zip(ids, probabilities, strict=True):
        utterance = ctx.utterances[uid]
        predicted = labels[int(row.argmax())]
        rows.append(
            [uid, utterance.speaker, utterance.label, predicted, *(f"{p:.6f}" for p in row)]
        )
    with path.open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)


def _fit_line(ctx: FitContext, fold: Any) -> str:
    """What a fold is about to fit (printed before the fit starts: it can take a while)."""
    config = ctx.config
    search = config.model.search
    how = (
        f", choosing {', '.join(search)} by inner CV" if ctx.kind == "classical" and search else ""
    )
    epochs = f", up to {config.train.epochs} epochs" if ctx.kind == "torch" else ""
    return (
        f"fitting fold {fold.name}: {config.model.name} on {len(fold.train)} training and "
        f"{len(fold.valid)} validation utterances{how}{epochs}; {len(fold.test)} to test"
    )


def _fold_line(metrics: dict[str, Any]) -> str:
    report, training = metrics["report"], metrics["training"]
    if training.get("best_epoch") is None:  # classical
        chosen = ", ".join(
            f"{k}={v}" for k, v in ((training.get("search") or {}).get("best") or {}).items()
        )
        how = f"{training.get('model')}" + (f" {chosen}" if chosen else "")
    else:
        how = f"best epoch {training['best_epoch']} of {training['epochs_run']}"
    return (
        f"fold {metrics['fold']}: UA {report['ua']:.4f}  WA {report['wa']:.4f}  "
        f"macro-F1 {report['macro_f1']:.4f}  (n={report['n']}, {how}, "
        f"{metrics['seconds']:.0f} s)"
    )


def load_summary(run_dir: str | Path) -> dict[str, Any]:
    """The ``summary.json`` of a finished run."""
    return json.loads((Path(run_dir) / artifacts.SUMMARY_FILE).read_text(encoding="utf-8"))
