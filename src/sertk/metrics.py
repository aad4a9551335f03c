"""Classification metrics, fold summaries, plots and markdown reports (no torch needed).

Metric conventions, stated once:

- **WA** (weighted accuracy) is plain accuracy over all utterances.
- **UA** (unweighted accuracy) is the mean recall over the classes *present in* ``y_true``. A class
  with no true utterance in a fold has no recall; it is left out of UA and macro-F1 (and listed
  under ``"absent"``) instead of counting as 0 or 1. Its per-class recall and F1 are ``None``; its
  precision is 0.0 when it was predicted (every such prediction is wrong), else ``None``.
- **macro-F1** is the mean F1 over the same present classes; a present class never predicted has
  precision 0.0 and F1 0.0.
- The **confusion matrix** has rows = true class, columns = predicted class, in ``labels`` order.

Every report is built from its confusion matrix, so pooled metrics over folds (``summarize``) are
exactly the metrics of the concatenated predictions.

>>> report = classification_report([0, 0, 1, 2], [0, 1, 1, 2], ["neutral", "happy", "sad"])
>>> report["wa"], round(report["ua"], 3)
(0.75, 0.833)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.errors import SertkError

METRICS = ("wa", "ua", "macro_f1")
METRIC_NAMES = {"wa": "WA", "ua": "UA", "macro_f1": "macro-F1"}


def classification_report(y_true: Any, y_pred: Any, labels: Sequence[str]) -> dict[str, Any]:
    """Metrics of one prediction set. ``y_true``/``y_pred``: ``[n]`` class indices or label names.

    Returns a JSON-serialisable dict with ``labels``, ``n``, ``wa``, ``ua``, ``macro_f1``,
    ``per_class`` (label -> precision, recall, f1, support), ``confusion`` (``[classes, classes]``
    nested lists) and ``absent`` (labels with no true utterance).
    """
    labels = _check_labels(labels)
    true = _as_indices(y_true, labels, "y_true")
    pred = _as_indices(y_pred, labels, "y_pred")
    if true.shape != pred.shape:
        raise SertkError(
            f"y_true has {true.size} items but y_pred has {pred.size}; give one prediction per item"
        )
    if true.size == 0:
        raise SertkError("no predictions to score: y_true is empty")
    confusion = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(confusion, (true, pred), 1)
    return report_from_confusion(confusion, labels)


def report_from_confusion(confusion: Any, labels: Sequence[str]) -> dict[str, Any]:
    """Same dict as ``classification_report`` from a ``[classes, classes]`` count matrix."""
    labels = _check_labels(labels)
    matrix = np.asarray(confusion)
    if matrix.shape != (len(labels), len(labels)):
        raise SertkError(
            f"confusion matrix has shape {matrix.shape} but there are {len(labels)} labels"
        )
    if matrix.sum() <= 0:
        raise SertkError("the confusion matrix is empty: nothing to score")
    support, predicted, correct = matrix.sum(axis=1), matrix.sum(axis=0), np.diag(matrix)
    per_class: dict[str, dict[str, Any]] = {}
    for i, label in enumerate(labels):
        precision = correct[i] / predicted[i] if predicted[i] else (0.0 if support[i] else None)
        recall = correct[i] / support[i] if support[i] else None
        f1 = None
        if recall is not None:
            both = (precision or 0.0) + recall
            f1 = 2 * (precision or 0.0) * recall / both if both else 0.0
        per_class[label] = {
            "precision": _float(precision),
            "recall": _float(recall),
            "f1": _float(f1),
            "support": int(support[i]),
        }
    present = [label for label in labels if per_class[label]["support"] > 0]
    return {
        "labels": list(labels),
        "n": int(matrix.sum()),
        "wa": float(correct.sum() / matrix.sum()),
        "ua": float(np.mean([per_class[label]["recall"] for label in present])),
        "macro_f1": float(np.mean([per_class[label]["f1"] for label in present])),
        "per_class": per_class,
        "confusion": matrix.astype(np.int64).tolist(),
        "absent": [label for label in labels if label not in present],
    }


def summarize(fold_reports: Mapping[str, Mapping] | Sequence[Mapping]) -> dict[str, Any]:
    """Mean ± std of WA/UA/macro-F1 over folds plus pooled metrics of all predictions together.

    ``fold_reports``: reports from ``classification_report``, as a list or a fold name -> report
    mapping. ``std`` is the sample standard deviation (ddof=1; 0.0 for a single fold).
    ``pooled`` is a full report computed from the summed confusion matrices.
    """
    if isinstance(fold_reports, Mapping):
        named = dict(fold_reports)
    else:
        named = {f"fold{i + 1}": report for i, report in enumerate(fold_reports)}
    if not named:
        raise SertkError("no fold reports to summarize")
    labels = list(next(iter(named.values()))["labels"])
    for name, report in named.items():
        if list(report["labels"]) != labels:
            raise SertkError(
                f"fold {name} has labels {list(report['labels'])} but the first fold has {labels}; "
                "all folds must be scored with the same ordered labels"
            )
    values = {m: np.array([report[m] for report in named.values()], dtype=float) for m in METRICS}
    ddof = 1 if len(named) > 1 else 0
    pooled = report_from_confusion(sum(np.asarray(r["confusion"]) for r in named.values()), labels)
    return {
        "labels": labels,
        "folds": len(named),
        "mean": {m: float(v.mean()) for m, v in values.items()},
        "std": {m: float(v.std(ddof=ddof)) for m, v in values.items()},
        "per_fold": {name: {m: float(r[m]) for m in METRICS} for name, r in named.items()},
        "pooled": pooled,
    }


def format_report_md(summary: Mapping[str, Any], labels: Sequence[str]) -> str:
    """Markdown tables of a ``summarize`` result: overall, per fold, per class, confusion."""
    labels = _check_labels(labels)
    if list(summary["labels"]) != labels:
        raise SertkError(f"summary is for labels {summary['labels']}, not {labels}")
    pooled = summary["pooled"]
    lines = ["| metric | mean ± std over folds | pooled |", "|---|---|---|"]
    for m in METRICS:
        mean, std = summary["mean"][m], summary["std"][m]
        lines.append(f"| {METRIC_NAMES[m]} | {mean:.4f} ± {std:.4f} | {pooled[m]:.4f} |")
    lines += ["", "| fold | WA | UA | macro-F1 |", "|---|---|---|---|"]
    for name, row in summary["per_fold"].items():
        lines.append(f"| {name} | " + " | ".join(f"{row[m]:.4f}" for m in METRICS) + " |")
    lines += ["", "| class (pooled) | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for label in labels:
        row = pooled["per_class"][label]
        cells = [_cell(row[key]) for key in ("precision", "recall", "f1")]
        lines.append(f"| {label} | {' | '.join(cells)} | {row['support']} |")
    lines += ["", "| true \\ predicted | " + " | ".join(labels) + " |"]
    lines.append("|---" * (len(labels) + 1) + "|")
    for label, row in zip(labels, pooled["confusion"], strict=True):
        lines.append(f"| {label} | " + " | ".join(str(count) for count in row) + " |")
    return "\n".join(lines) + "\n"


# --- plots ---------------------------------------------------------------------------------


def confusion_figure(matrix: Any, labels: Sequence[str], *, normalize: bool = True) -> Any:
    """A matplotlib Figure of ``matrix`` (rows true, columns predicted, ``labels`` order).

    With ``normalize`` each row is divided by its true count (so cells are recalls; all-zero
    rows stay 0). Tick labels on both axes are ``labels``, in matrix order.
    """
    from matplotlib.figure import Figure

    labels = _check_labels(labels)
    counts = np.asarray(matrix, dtype=float)
    if counts.shape != (len(labels), len(labels)):
        raise SertkError(
            f"confusion matrix has shape {counts.shape} but there are {len(labels)} labels"
        )
    values = counts
    if normalize:
        totals = counts.sum(axis=1, keepdims=True)
        values = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    size = 1.5 + 0.6 * len(labels)
    figure = Figure(figsize=(size + 1.5, size), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(values, cmap="Blues", vmin=0.0, vmax=1.0 if normalize else None)
    figure.colorbar(image, ax=axes)
    ticks = np.arange(len(labels))
    axes.set_xticks(ticks, labels=labels, rotation=45, ha="right")
    axes.set_yticks(ticks, labels=labels)
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    threshold = (values.max() or 1.0) / 2
    for i in range(len(labels)):
        for j in range(len(labels)):
            text = f"{values[i, j]:.2f}" if normalize else f"{int(counts[i, j])}"
            color = "white" if values[i, j] > threshold else "black"
            axes.text(j, i, text, ha="center", va="center", color=color, fontsize=8)
    return figure


def plot_confusion(
    matrix: Any, labels: Sequence[str], path: str | Path, *, normalize: bool = True
) -> Path:
    """Save ``confusion_figure(matrix, labels)`` to ``path`` (format from the suffix)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    confusion_figure(matrix, labels, normalize=normalize).savefig(path, dpi=120)
    return path


def curves_figure(history: Mapping[str, Sequence[Any]], *, best_epoch: int | None = None) -> Any:
    """Figure of ``train_loss``/``valid_loss`` and ``valid_ua``/``valid_wa`` per epoch.

    ``history`` maps those keys (and optionally ``epoch``) to per-epoch lists, as in
    ``TrainResult.history``; missing keys and None values are skipped. ``best_epoch`` draws a
    marker at the chosen checkpoint.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    n = len(history.get("train_loss", []))
    if n == 0:
        raise SertkError("history has no 'train_loss' values to plot")
    epochs = list(history.get("epoch", range(1, n + 1)))
    figure = Figure(figsize=(9, 3.5), layout="constrained")
    loss_axes, metric_axes = figure.subplots(1, 2)
    for key, axes in [
        ("train_loss", loss_axes),
        ("valid_loss", loss_axes),
        ("valid_ua", metric_axes),
        ("valid_wa", metric_axes),
    ]:
        values = [math.nan if v is None else v for v in history.get(key, [])]
        if values and not all(math.isnan(v) for v in values):
            axes.plot(epochs[: len(values)], values, marker=".", label=key)
    loss_axes.set(xlabel="epoch", ylabel="loss", title="loss")
    metric_axes.set(xlabel="epoch", ylabel="score", title="validation", ylim=(0, 1))
    if best_epoch is not None:
        metric_axes.axvline(best_epoch, color="grey", linestyle="--", label="best epoch")
    for axes in (loss_axes, metric_axes):
        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        if axes.get_legend_handles_labels()[0]:
            axes.legend()
    return figure


def plot_curves(
    history: Mapping[str, Sequence[Any]], path: str | Path, *, best_epoch: int | None = None
) -> Path:
    """Save ``curves_figure(history, best_epoch=...)`` to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    curves_figure(history, best_epoch=best_epoch).savefig(path, dpi=120)
    return path


# --- helpers -------------------------------------------------------------------------------


def _check_labels(labels: Sequence[str]) -> list[str]:
    labels = list(labels)
    if not labels or not all(isinstance(label, str) for label in labels):
        raise SertkError(f"labels must be a non-empty list of class names; got {labels!r}")
    if len(set(labels)) != len(labels):
        raise SertkError(f"labels must be unique; got {labels}")
    return labels


def _as_indices(values: Any, labels: list[str], name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise SertkError(f"{name} must be 1-D ([n]); got shape {array.shape}")
    if array.size == 0:
        return array.astype(np.int64)
    if array.dtype.kind in "US" or (array.dtype.kind == "O" and isinstance(array[0], str)):
        index = {label: i for i, label in enumerate(labels)}
        unknown = sorted({str(v) for v in array.tolist() if v not in index})
        if unknown:
            raise SertkError(f"{name} has labels {unknown} that are not among {labels}")
        return np.array([index[v] for v in array.tolist()], dtype=np.int64)
    if array.dtype.kind not in "iu":
        raise SertkError(
            f"{name} must hold class indices (integers) or label names; got {array.dtype}"
        )
    bad = array[(array < 0) | (array >= len(labels))]
    if bad.size:
        raise SertkError(
            f"{name} has class index {int(bad[0])}, outside 0..{len(labels) - 1} for {len(labels)} labels"
        )
    return array.astype(np.int64)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"
