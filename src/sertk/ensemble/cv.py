"""Cross-validated ensembles of finished runs: soft-vote their per-fold test probabilities.

Two or more runs (e.g. an SVM on functionals and a CNN on log-mels) that share their folds
(same fold names, same test utterances) and protocol are combined fold by fold from their
``folds/<fold>/predictions.csv``: each test utterance's probabilities are averaged (``soft``)
or weighted (``weighted``: given weights, or weights fitted per fold with
``sertk.ensemble.fit_weights`` on the runs' ``valid_predictions.csv``, the validation speakers
of that fold, never its test speakers). The ensemble is scored exactly like a run: per-fold
reports, mean ± std, pooled metrics, per-class recall; every member is re-scored from the same
files so the comparison is like for like.

>>> result = evaluate_ensemble_cv(["runs/svm-...", "runs/cnn-..."], out_dir="runs/mix")  # needs trained run folders  # doctest: +SKIP
>>> result["mean"]["ua"], [m["mean"]["ua"] for m in result["members"]]  # needs trained run folders  # doctest: +SKIP
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.config import load_config
from sertk.ensemble.weights import fit_weights
from sertk.errors import BundleError, ConfigError
from sertk.experiment import artifacts
from sertk.experiment.report import recall_table
from sertk.folds import folds_from_dict
from sertk.inference import RULES, check_weights, combine
from sertk.metrics import classification_report, format_report_md, plot_confusion, summarize


def evaluate_ensemble_cv(
    run_dirs: Sequence[str | Path],
    *,
    rule: str = "soft",
    weights: Sequence[float] | None = None,
    out_dir: str | Path | None = None,
) -> dict[str, Any]:
    """Score the ensemble of ``run_dirs`` fold by fold; a JSON-ready dict (see module doc).

    Keys: ``runs``, ``rule``, ``weights`` (fold -> weights), ``labels``, ``folds``, ``mean``,
    ``std``, ``per_fold``, ``pooled`` (as ``sertk.metrics.summarize``), ``fold_reports`` and
    ``members`` (each run's own summary over the same predictions). ``out_dir``: also write
    ``summary.json``, ``report.md`` and ``confusion_pooled.png`` there.
    """
    runs = [Path(run).resolve() for run in run_dirs]
    if len(runs) < 2:
        raise ConfigError(f"an ensemble needs at least two runs, got {len(runs)}")
    if rule not in RULES:
        raise ConfigError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    folds = _shared_folds(runs, need_valid=rule == "weighted" and weights is None)
    protocol = _shared_protocol(runs)
    fixed = _fixed_weights(rule, weights, len(runs))
    labels, fold_reports, member_reports, used = None, {}, [{} for _ in runs], {}
    for fold in folds:
        tables = [_read_predictions(run / "folds" / fold.name / artifacts.PREDICTIONS_FILE)
                  for run in runs]  # fmt: skip
        labels = labels or tables[0][1]
        truth, probabilities = _aligned(tables, labels, fold.test, fold.name, runs)
        fold_weights = fixed if fixed is not None else _fitted(runs, fold, labels)
        used[fold.name] = [float(w) for w in fold_weights]
        combined = combine(probabilities, fold_weights)
        fold_reports[fold.name] = _report(truth, combined, labels)
        for reports, member in zip(member_reports, probabilities, strict=True):
            reports[fold.name] = _report(truth, member, labels)
    result = {
        "runs": [str(run) for run in runs],
        "rule": rule,
        "weights": used,
        "protocol": protocol,
        **summarize(fold_reports),
        "fold_reports": fold_reports,
        "members": [
            {"run": str(run), **_describe(run), **_brief(summarize(reports))}
            for run, reports in zip(runs, member_reports, strict=True)
        ],
    }
    if out_dir is not None:
        write_ensemble_report(Path(out_dir), result)
    return result


def _shared_folds(runs: list[Path], *, need_valid: bool) -> list[Any]:
    first = folds_from_dict(artifacts.read_json(runs[0] / artifacts.SPLITS_FILE))
    for run in runs[1:]:
        other = folds_from_dict(artifacts.read_json(run / artifacts.SPLITS_FILE))
        same = [(f.name, sorted(f.test)) for f in first] == [
            (f.name, sorted(f.test)) for f in other
        ]
        if not same:
            raise ConfigError(
                f"{run} and {runs[0]} have different folds (names or test utterances); an "
                "ensemble needs runs made with the same corpus, label map and folds settings"
            )
        if need_valid and [sorted(f.valid) for f in first] != [sorted(f.valid) for f in other]:
            raise ConfigError(
                f"{run} and {runs[0]} have different validation speakers, so weights cannot be "
                "fitted on shared validation predictions; give weights or use rule 'soft'"
            )
    return first


def _shared_protocol(runs: list[Path]) -> str:
    found = {run: load_config(run / artifacts.CONFIG_FILE).features.normalization for run in runs}
    if len(set(found.values())) > 1:
        listed = ", ".join(f"{run.name}: {value}" for run, value in found.items())
        raise ConfigError(
            f"the runs use different evaluation protocols ({listed}); never mix speaker-adapted "
            "and speaker-independent results"
        )
    return next(iter(found.values()))


def _describe(run: Path) -> dict[str, Any]:
    config = load_config(run / artifacts.CONFIG_FILE)
    return {"name": config.name, "model": config.model.name, "features": config.features.name}


def _brief(summary: dict[str, Any]) -> dict[str, Any]:
    return {"mean": summary["mean"], "std": summary["std"], "pooled": {
        key: summary["pooled"][key] for key in ("ua", "wa", "macro_f1")}}  # fmt: skip


def _fixed_weights(rule: str, weights: Sequence[float] | None, count: int) -> np.ndarray | None:
    if rule == "weighted" and weights is None:
        return None  # fitted per fold on validation predictions
    try:
        return np.asarray(check_weights(rule, weights, count))
    except BundleError as error:
        raise ConfigError(str(error)) from None


def _read_predictions(path: Path) -> tuple[dict[str, tuple[str, np.ndarray]], list[str]]:
    """``{id: (label, probabilities)}`` and the label order of a ``predictions.csv``."""
    if not path.is_file():
        raise ConfigError(f"{path} is missing; the run is unfinished (resume it) or too old")
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        columns = [i for i, name in enumerate(header) if name.startswith("p_")]
        if header[:4] != ["id", "speaker", "label", "predicted"] or not columns:
            raise ConfigError(f"{path} is not a sertk predictions file")
        labels = [header[i][2:] for i in columns]
        rows = {row[0]: (row[2], np.array([float(row[i]) for i in columns])) for row in reader}
    return rows, labels


def _aligned(tables, labels: list[str], ids: Sequence[str], fold: str, runs: list[Path]):
    """Truth ``[n]`` and each run's probabilities ``[n, classes]`` in ``ids`` order."""
    probabilities = []
    for (rows, run_labels), run in zip(tables, runs, strict=True):
        if sorted(run_labels) != sorted(labels):
            raise ConfigError(
                f"{run} predicts labels {run_labels} but {runs[0]} predicts {labels}; the "
                "runs must share their classes"
            )
        if set(rows) != set(ids):
            raise ConfigError(f"{run}: predictions of fold {fold} do not match splits.json")
        order = [run_labels.index(label) for label in labels]
        probabilities.append(np.stack([rows[uid][1][order] for uid in ids]))
    truth = [labels.index(tables[0][0][uid][0]) for uid in ids]
    return truth, probabilities


def _fitted(runs: list[Path], fold: Any, labels: list[str]) -> np.ndarray:
    tables = []
    for run in runs:
        path = run / "folds" / fold.name / artifacts.VALID_PREDICTIONS_FILE
        if not path.is_file():
            raise ConfigError(
                f"{run} has no validation predictions ({path.name}; classical models train on "
                "their validation speakers); give weights or use rule 'soft'"
            )
        tables.append(_read_predictions(path))
    truth, probabilities = _aligned(tables, labels, fold.valid, fold.name, runs)
    return fit_weights(probabilities, truth)


def _report(truth: list[int], probabilities: np.ndarray, labels: list[str]) -> dict[str, Any]:
    return classification_report(truth, np.asarray(probabilities).argmax(axis=1), labels)


def write_ensemble_report(folder: Path, result: dict[str, Any]) -> None:
    """``summary.json``, ``confusion_pooled.png`` and ``report.md`` of an ensemble evaluation."""
    folder.mkdir(parents=True, exist_ok=True)
    artifacts.write_json(folder / artifacts.SUMMARY_FILE, result)
    labels = result["labels"]
    plot_confusion(result["pooled"]["confusion"], labels, folder / "confusion_pooled.png")
    mean, pooled = result["mean"], result["pooled"]
    lines = [
        f"# Ensemble of {len(result['runs'])} runs ({result['rule']})",
        "",
        f"Protocol: {result['protocol']} normalisation, as in every member run. Each fold's "
        "test probabilities of the runs are combined; weights are "
        + ("fitted per fold on the validation speakers." if result["rule"] == "weighted"
           and len({tuple(w) for w in result["weights"].values()}) > 1 else "fixed.")
        + " Per-fold weights: `summary.json`.",
        "",
        f"UA {mean['ua']:.4f} (pooled {pooled['ua']:.4f}); WA {mean['wa']:.4f}; macro-F1 "
        f"{mean['macro_f1']:.4f}.",
        "",
        "| member | model | features | UA mean ± std | UA pooled |",
        "|---|---|---|---|---|",
    ]  # fmt: skip
    for member in result["members"]:
        lines.append(
            f"| {Path(member['run']).name} | {member['model']} | {member['features']} | "
            f"{member['mean']['ua']:.4f} ± {member['std']['ua']:.4f} | "
            f"{member['pooled']['ua']:.4f} |"
        )
    reports = {name: {"report": report} for name, report in result["fold_reports"].items()}
    lines += ["", format_report_md(result, labels), *recall_table(reports, labels)]
    lines.append("![pooled confusion matrix](confusion_pooled.png)")
    artifacts.write_text_atomic(folder / artifacts.REPORT_FILE, "\n".join(lines) + "\n")
