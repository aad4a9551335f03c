"""``summary.json``, ``report.md`` and ``confusion_pooled.png`` of a finished run."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sertk.classical import KINDS as CLASSICAL_KINDS
from sertk.experiment import artifacts
from sertk.experiment.context import PROTOCOLS
from sertk.metrics import format_report_md, plot_confusion, summarize

_PROTOCOL_TEXT = {
    "global": (
        "**Protocol: speaker-independent.** Test speakers are never seen in training. Feature "
        "normalisation is fitted on each fold's training utterances only; early stopping and "
        "the checkpoint are chosen on validation speakers held out of the training speakers, "
        "never on the test fold."
    ),
    "speaker": (
        "**Protocol: SPEAKER-ADAPTED (per-speaker feature normalisation).** Every speaker's "
        "features are z-normalised with statistics of all of that speaker's utterances, test "
        "speakers included (their labels are not used). These scores assume several utterances "
        "per speaker at test time: do not compare or mix them with speaker-independent "
        "results."
    ),
}


def write_summary(
    folder: Path, config: Any, data: Any, fold_metrics: dict[str, dict], final: dict | None
) -> dict[str, Any]:
    """Write ``summary.json``, ``confusion_pooled.png`` and ``report.md``; returns the summary."""
    summary = summarize({name: m["report"] for name, m in fold_metrics.items()})
    labels = summary["labels"]
    normalization = config.features.normalization
    for name, metrics in fold_metrics.items():
        summary["per_fold"][name].update(
            best_epoch=metrics["training"]["best_epoch"],
            epochs_run=metrics["training"]["epochs_run"],
            n=metrics["report"]["n"],
        )
    document = {
        "name": config.name,
        "protocol": PROTOCOLS[normalization],
        "normalization": normalization,
        "source": data.source,
        "utterances": len(data.utterances),
        "speakers": len({u.speaker for u in data.utterances}),
        "label_map": data.label_map.to_dict(),
        "dropped": data.dropped,
        "folds_strategy": {
            "strategy": config.folds.strategy,
            "group": config.folds.group,
            "count": len(fold_metrics),
        },
        **summary,
        "final_model": final,
    }
    artifacts.write_json(folder / artifacts.SUMMARY_FILE, document)
    plot_confusion(summary["pooled"]["confusion"], labels, folder / "confusion_pooled.png")
    text = report_markdown(document, config, data, fold_metrics)
    artifacts.write_text_atomic(folder / artifacts.REPORT_FILE, text)
    return document


def report_markdown(
    summary: dict[str, Any], config: Any, data: Any, fold_metrics: dict[str, dict]
) -> str:
    """The run's ``report.md``: protocol first, then metrics, data, folds, setup, files."""
    mean, std, pooled = summary["mean"], summary["std"], summary["pooled"]
    lines = [
        f"# {config.name}",
        "",
        _protocol_text(summary["normalization"], bool(_classical_note(config))),
        "",
        *_classical_note(config),
        f"UA {mean['ua']:.4f} ± {std['ua']:.4f} over {summary['folds']} folds "
        f"(pooled {pooled['ua']:.4f}); WA {mean['wa']:.4f} ± {std['wa']:.4f} "
        f"(pooled {pooled['wa']:.4f}); macro-F1 {mean['macro_f1']:.4f} ± "
        f"{std['macro_f1']:.4f} (pooled {pooled['macro_f1']:.4f}).",
        "",
        "## Metrics",
        "",
        "Class names come from the fold bundles' label list. UA is the mean recall over the "
        "classes present in a fold; std is over folds (ddof=1); pooled scores all test "
        "predictions together.",
        "",
        format_report_md(summary, summary["labels"]),
        *recall_table(fold_metrics, summary["labels"]),
        "![pooled confusion matrix](confusion_pooled.png)",
        "",
        *_data_section(summary, data),
        *_folds_section(config, data, fold_metrics),
        *_setup_section(config, summary),
    ]
    return "\n".join(lines) + "\n"


def _protocol_text(normalization: str, classical: bool) -> str:
    text = _PROTOCOL_TEXT[normalization]
    if classical and normalization == "global":
        text = (
            "**Protocol: speaker-independent.** Test speakers are never seen in training. "
            "Standardisation is fitted on each fold's training rows only; hyper-parameters are "
            "chosen by an inner cross-validation grouped by speaker over the training speakers, "
            "never on the test fold."
        )
    return text


def _classical_note(config: Any) -> list[str]:
    if config.model.name not in CLASSICAL_KINDS:
        return []
    return [
        f"Classical model `{config.model.name}`: it has no epochs, so each fold's validation "
        "speakers join its training rows; hyper-parameters come from an inner cross-validation "
        "grouped by speaker over the fold's training-side speakers only (never the test fold), "
        "scored on their original recordings (augmented copies train but are not scored), "
        "and standardisation is fitted on the training rows.",
        "",
    ]


def recall_table(fold_metrics: dict[str, dict], labels: list[str]) -> list[str]:
    """Markdown table of every fold's per-class recall (— where a class is absent)."""
    lines = ["", "| fold | " + " | ".join(f"recall {label}" for label in labels) + " |"]
    lines.append("|---" * (len(labels) + 1) + "|")
    for name, metrics in fold_metrics.items():
        per_class = metrics["report"]["per_class"]
        cells = [
            "—" if per_class[label]["recall"] is None else f"{per_class[label]['recall']:.4f}"
            for label in labels
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _chosen(training: dict[str, Any]) -> str:
    """The fold's model selection: best epoch (neural) or the searched parameters (classical)."""
    if training.get("best_epoch") is not None:
        return f"{training['best_epoch']} of {training['epochs_run']}"
    best = (training.get("search") or {}).get("best")
    if not best:
        return "fixed parameters"
    return ", ".join(f"{key}={value}" for key, value in best.items())


def _data_section(summary: dict[str, Any], data: Any) -> list[str]:
    label_map = data.label_map
    lines = [
        "## Data",
        "",
        f"- source: {summary['source']}",
        f"- {summary['utterances']} utterances of {summary['speakers']} speakers after the label map",
        f"- classes ({label_map.name or 'explicit label map'}): {label_map.describe()}",
    ]
    dropped = ", ".join(f"{label} {count}" for label, count in data.dropped.items())
    lines.append(f"- dropped (label not in the map): {dropped or 'none'}")
    for problem in data.problems[:10]:
        lines.append(f"- scan problem: {problem}")
    if len(data.problems) > 10:
        lines.append(f"- ... {len(data.problems) - 10} more scan problems")
    return [*lines, ""]


def _folds_section(config: Any, data: Any, fold_metrics: dict[str, dict]) -> list[str]:
    folds = config.folds
    group = folds.group
    groups = {
        u.id: (u.speaker if group == "speaker" else u.fields.get(group, "?"))
        for u in data.utterances
    }
    lines = [
        "## Folds",
        "",
        f"Strategy `{folds.strategy}` grouped by `{group}`; validation: whole training speakers "
        + (
            f"({folds.valid_speakers})"
            if folds.valid_speakers is not None
            else f"(about {folds.valid_fraction:.0%} of the training utterances, seed {folds.seed})"
        )
        + ". Exact utterance ids per side: `splits.json`.",
        "",
        f"| fold | test {group} | validation speakers | train / valid / test | best epoch "
        "(neural) or inner-CV choice (classical) | UA |",
        "|---|---|---|---|---|---|",
    ]
    for fold in data.folds:
        metrics = fold_metrics[fold.name]
        training = metrics["training"]
        tested = " ".join(sorted({groups[uid] for uid in fold.test}))
        if group != "speaker":
            tested += f" ({' '.join(metrics['test_speakers'])})"
        lines.append(
            f"| {fold.name} | {tested} | {' '.join(training['valid_speakers'])} | "
            f"{len(fold.train)} / {len(fold.valid)} / {len(fold.test)} | "
            f"{_chosen(training)} | {metrics['report']['ua']:.4f} |"
        )
    files = (
        "the bundle, predictions.csv and confusion.png"
        if _classical_note(config)
        else "the bundle, predictions.csv, valid_predictions.csv, curves.png and confusion.png"
    )
    return [*lines, "", f"Per fold: `folds/<fold>/` holds {files}.", ""]


def _setup_section(config: Any, summary: dict[str, Any]) -> list[str]:
    train, model = config.train, config.model
    lines = [
        "## Setup",
        "",
        f"- features: `{config.features.name}` {config.features.params or ''}; normalisation "
        f"`{config.features.normalization}` ({summary['protocol']})",
        "- preprocessing: "
        + ", ".join(f"{k} {v}" for k, v in dataclasses.asdict(config.preprocess).items()),
        f"- model: `{model.name}` {model.hparams or ''}"
        + (f"; inner-CV grid {_grid(model.search)}" if model.search else ""),
    ]
    if _classical_note(config):
        lines.append(f"- classical fit: seed {train.seed}; validation speakers join training")
    else:
        lines.append(
            f"- training: AdamW lr {train.lr:g}, batch {train.batch_size}, up to {train.epochs} "
            f"epochs, patience {train.patience}, scheduler {train.scheduler}, seed {train.seed}"
        )
    imbalance = (
        "class-weighted loss / class_weight='balanced'" if train.class_weights
        else "class-balanced sampling" if train.balanced_sampling else "none"
    )  # fmt: skip
    lines.append(f"- imbalance correction: {imbalance}")
    lines.append(f"- augmentation (training utterances only): {_augment_text(train.augment)}")
    views = [f"speed {v:g}" for v in config.features.tta_speeds] + [
        f"its {length:g} from {start:g}" for start, length in config.features.tta_crops
    ]
    if views:
        lines.append(
            f"- test-time augmentation: every test utterance also scored as {', '.join(views)} "
            "(crops: fractions of its length); probabilities = normalised geometric mean over "
            "the versions (stored in the bundles)"
        )
    lines.append("- resolved config: `config.yaml`; versions and machine: `env.json`")
    final = summary.get("final_model")
    if final:
        text = final.get("description") or (
            f"`{final['bundle']}`, {final['epochs']} epochs ({final['epochs_rule']})"
        )
        lines.append(f"- final model: {text}; it has no held-out score")
    return [*lines]


def _grid(search: dict[str, Any]) -> str:
    return ", ".join(f"{key} in {list(values)}" for key, values in search.items())


def _augment_text(augment: Any) -> str:
    if not (augment.waveform_copies or augment.features_enabled or augment.crops):
        return "none"
    steps = [
        f"{step} p={getattr(augment, step + '_p')}"
        for step in ("noise", "gain", "speed", "time_stretch", "pitch_shift", "mask")
        if getattr(augment, step + "_p") > 0
    ]
    if augment.speed_factors:
        steps.insert(0, f"speed copies at {', '.join(f'{v:g}' for v in augment.speed_factors)}")
    if augment.crops:
        crops = ", ".join(f"{length:g} from {start:g}" for start, length in augment.crops)
        steps.append(f"crop copies ({crops} of each utterance)")
    return ", ".join(steps) + " (config.yaml: train.augment)"
