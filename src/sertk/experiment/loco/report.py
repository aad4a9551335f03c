"""Metrics, files and the report of a benchmark run (see :mod:`.run` for the layout)."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from sertk.experiment import artifacts
from sertk.metrics import classification_report, plot_confusion, report_from_confusion, summarize

PROTOCOL_TEXT = {
    "global": "global (speaker-independent: nothing is estimated from test audio)",
    "speaker": "SPEAKER-ADAPTED (each test unit's features normalised with that unit's own "
    "unlabelled audio; several utterances per unit needed)",
}
ASED_CAVEAT = (
    "ASED: 25 of its 27 sentences are each spoken in one emotion only, so sentence identity "
    "predicts the label; its numbers may overstate what the acoustics carry."
)
METRICS = ("ua", "wa", "macro_f1")


def _reports(labels_all, labels, shared, rows, probabilities) -> dict[str, Any]:
    """Restricted (argmax over ``shared``) and open (argmax over ``labels``) reports."""
    truth = labels_all[rows]
    index = [labels.index(label) for label in shared]
    restricted = [shared[i] for i in probabilities[:, index].argmax(axis=1)]
    opened = [labels[i] for i in probabilities.argmax(axis=1)]
    return {
        "restricted": classification_report(truth, restricted, shared),
        "open": classification_report(truth, opened, labels),
    }


def split_metrics(data: Any, scored: Any, split: Any, seconds: float) -> dict[str, Any]:
    """The ``metrics.json`` document of one split."""
    labels_all = data.column("label")
    metrics = {
        "split": split.name,
        "corpus": split.corpus,
        **_reports(labels_all, scored.labels, scored.shared, scored.rows, scored.probabilities),
        "classes": scored.labels,
        "shared": scored.shared,
        "excluded": scored.excluded,
        "test_utterances": int(scored.rows.size),
        "training": scored.training,
        "seconds": round(seconds, 1),
    }
    one_sided = {}
    for share, found in scored.one_sided.items():
        reports = _reports(
            labels_all, scored.labels, scored.shared, found["rows"], found["probabilities"]
        )
        one_sided[share] = {"subsets": found["subsets"], **reports}
    if one_sided:
        metrics["one_sided"] = one_sided
    return metrics


def write_split(where: Path, data: Any, scored: Any, metrics: dict[str, Any]) -> None:
    """``predictions.csv``, both confusion plots, then ``metrics.json`` (marks it complete)."""
    where.mkdir(parents=True, exist_ok=True)
    ids, corpus = data.column("id"), data.column("corpus")
    speaker, labels_all = data.column("speaker"), data.column("label")
    index = [scored.labels.index(label) for label in scored.shared]
    header = ["id", "corpus", "speaker", "label", "restricted", "open"]
    rows = [header + [f"p_{label}" for label in scored.labels]]
    for row, p in zip(scored.rows, scored.probabilities, strict=True):
        restricted = scored.shared[int(np.argmax(p[index]))]
        rows.append(
            [ids[row], corpus[row], speaker[row], labels_all[row], restricted,
             scored.labels[int(np.argmax(p))], *(f"{v:.6f}" for v in p)]
        )  # fmt: skip
    with (where / artifacts.PREDICTIONS_FILE).open("w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows(rows)
    for kind in ("restricted", "open"):
        report = metrics[kind]
        plot_confusion(report["confusion"], report["labels"], where / f"confusion_{kind}.png")
    artifacts.write_json(where / artifacts.METRICS_FILE, metrics)


def summarise_protocol(results: dict[str, dict]) -> dict[str, Any]:
    """Per tested corpus (one split in ``loco``; in ``within`` mean ± std over its folds and
    pooled) the restricted and open UA/WA/macro-F1, and their mean over corpora."""
    groups: dict[str, dict[str, dict]] = {}
    for name, metrics in results.items():
        groups.setdefault(metrics["corpus"], {})[name] = metrics
    per_corpus = {}
    for corpus, folds in groups.items():
        entry: dict[str, Any] = {}
        shared = _union(
            [m["shared"] for m in folds.values()], next(iter(folds.values()))["classes"]
        )
        for kind in ("restricted", "open"):
            labels = _union([m[kind]["labels"] for m in folds.values()], shared)
            summary = summarize({name: _on_labels(m[kind], labels) for name, m in folds.items()})
            entry[kind] = {
                **{m: summary["pooled"][m] for m in METRICS},
                "fold_mean": summary["mean"], "fold_std": summary["std"],
                "recall": {k: v["recall"] for k, v in summary["pooled"]["per_class"].items()
                           if v["support"]},
            }  # fmt: skip
        first = next(iter(folds.values()))
        entry.update(
            n=sum(m["test_utterances"] for m in folds.values()), folds=len(folds),
            shared=shared, classes=first["classes"],
            excluded=dict(sum((Counter(m["excluded"]) for m in folds.values()), Counter())),
        )  # fmt: skip
        if "one_sided" in first:
            entry["one_sided"] = _one_sided(folds)
        per_corpus[corpus] = entry
    mean = {
        kind: {m: float(np.mean([c[kind][m] for c in per_corpus.values()])) for m in METRICS}
        for kind in ("restricted", "open")
    }
    return {"per_corpus": per_corpus, "mean": mean}


def _union(label_lists: list[list[str]], order: list[str]) -> list[str]:
    """Every label of ``label_lists``, those of ``order`` first in its order, then the rest."""
    found = {label for labels in label_lists for label in labels}
    rest = [label for labels in label_lists for label in labels if label not in order]
    return [label for label in order if label in found] + list(dict.fromkeys(rest))


def _on_labels(report: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """``report`` re-expressed over ``labels`` (a superset of its own, e.g. every fold's
    restricted classes when a fold's test speakers lack some emotions): its confusion matrix
    padded with zeros, so that folds can be pooled; its own UA/WA/F1 are unchanged (absent
    classes do not count)."""
    if list(report["labels"]) == labels:
        return report
    where = [labels.index(label) for label in report["labels"]]
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    matrix[np.ix_(where, where)] = np.asarray(report["confusion"])
    return report_from_confusion(matrix, labels)


def _one_sided(folds: dict[str, dict]) -> dict[str, Any]:
    out, first = {}, next(iter(folds.values()))
    for share in first["one_sided"]:
        out[share] = {}
        for kind in ("restricted", "open"):
            reports = {n: f["one_sided"][share][kind] for n, f in folds.items()}
            labels = _union([r["labels"] for r in reports.values()], first["classes"])
            pooled = summarize({n: _on_labels(r, labels) for n, r in reports.items()})["pooled"]
            out[share][kind] = {m: pooled[m] for m in METRICS}
    return out


def write_outputs(folder: Path, config: Any, mode: str, data: Any, results: dict) -> dict:
    """``labels.json``, ``summary.json``, ``ua.png`` and ``report.md`` of a finished run."""
    counts = Counter(
        zip(data.column("corpus").tolist(), data.column("label").tolist(), strict=True)
    )
    labels_doc = {
        "label_map": data.label_map.to_dict(),
        "per_corpus": {
            corpus: {
                "kept": {label: n for (c, label), n in counts.items() if c == corpus},
                "merged": data.merged.get(corpus, {}),
                "dropped": data.dropped.get(corpus, {}),
            }
            for corpus in data.corpora
        },
    }
    artifacts.write_json(folder / "labels.json", labels_doc)
    summary = {
        "name": config.name,
        "mode": mode,
        "corpora": data.corpora,
        "utterances": len(data.utterances),
        "protocols": {p: summarise_protocol(r) for p, r in results.items()},
        "labels": labels_doc["per_corpus"],
    }
    artifacts.write_json(folder / artifacts.SUMMARY_FILE, summary)
    _plot(summary, folder / "ua.png")
    artifacts.write_text_atomic(folder / artifacts.REPORT_FILE, report_markdown(summary))
    return summary


def _plot(summary: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.5), layout="constrained")
    axes = figure.add_subplot()
    corpora = summary["corpora"]
    bars = [(p, k) for p in summary["protocols"] for k in ("restricted", "open")]
    width = 0.8 / len(bars)
    for i, (protocol, kind) in enumerate(bars):
        values = [summary["protocols"][protocol]["per_corpus"][c][kind]["ua"] for c in corpora]
        axes.bar(np.arange(len(corpora)) + i * width, values, width, label=f"{protocol} {kind}")
    axes.set_xticks(np.arange(len(corpora)) + 0.4 - width / 2, labels=corpora)
    axes.set_ylabel("UA")
    axes.set_ylim(0, 1)
    axes.legend(fontsize=7)
    figure.savefig(path, dpi=120)


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def report_markdown(summary: dict) -> str:
    """The run's ``report.md``: per protocol, per corpus, restricted and open, and the mean."""
    mode = summary["mode"]
    what = "leave-one-corpus-out" if mode == "loco" else "speaker-independent CV in each corpus"
    lines = [f"# {summary['name']}: {what}", "", f"Corpora: {', '.join(summary['corpora'])} "
             f"({summary['utterances']} utterances).", ""]  # fmt: skip
    for protocol, result in summary["protocols"].items():
        lines += [f"## Protocol: {PROTOCOL_TEXT[protocol]}", ""]
        lines += ["| corpus | n | classes | restricted UA | WA | F1 | open UA | WA | F1 |",
                  "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for corpus, entry in result["per_corpus"].items():
            cells = [_pct(entry[k][m]) for k in ("restricted", "open") for m in METRICS]
            lines.append(f"| {corpus} | {entry['n']} | {len(entry['shared'])} | "
                         + " | ".join(cells) + " |")  # fmt: skip
        mean = [_pct(result["mean"][k][m]) for k in ("restricted", "open") for m in METRICS]
        lines += ["| **mean** | | | " + " | ".join(mean) + " |", ""]
        lines += _one_sided_lines(result)
        excluded = {c: e["excluded"] for c, e in result["per_corpus"].items() if e["excluded"]}
        if excluded:
            shown = "; ".join(f"{c}: {', '.join(f'{k} {v}' for k, v in e.items())}"
                              for c, e in excluded.items())  # fmt: skip
            lines += [f"Test utterances of classes the training set lacks (excluded): {shown}.", ""]
    lines += _label_lines(summary["labels"])
    if "ased" in summary["corpora"]:
        lines += [f"Caveat — {ASED_CAVEAT}", ""]
    return "\n".join(lines)


def _one_sided_lines(result: dict) -> list[str]:
    rows = [(c, e["one_sided"]) for c, e in result["per_corpus"].items() if "one_sided" in e]
    if not rows:
        return []
    shares = list(rows[0][1])
    lines = ["One-sided test units (statistics from a subset dominated by one emotion; "
             "restricted UA):", "", "| corpus | all audio | " + " | ".join(
                 f"{float(s):.0%} one emotion" for s in shares) + " |",
             "|---" * (2 + len(shares)) + "|"]  # fmt: skip
    for corpus, found in rows:
        full = result["per_corpus"][corpus]["restricted"]["ua"]
        cells = [_pct(found[s]["restricted"]["ua"]) for s in shares]
        lines.append(f"| {corpus} | {_pct(full)} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _label_lines(labels: dict) -> list[str]:
    lines = ["Labels per corpus (shared set; merged and unmappable labels counted):", ""]
    for corpus, entry in labels.items():
        kept = ", ".join(f"{k} {v}" for k, v in entry["kept"].items())
        extra = "".join(
            f"; {what}: " + ", ".join(f"{k} {v}" for k, v in entry[what].items())
            for what in ("merged", "dropped") if entry[what]
        )  # fmt: skip
        lines.append(f"- {corpus}: {kept}{extra}")
    return [*lines, ""]
