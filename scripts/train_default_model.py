"""Select, check and package the default model (``recipes/default_model.yaml``).

Two sub-commands; nothing is trained here (``sertk train`` does that):

``robustness RUN [RUN ...]``
    A cross-validation under simulated recording conditions: each fold model of a finished run
    scores its own test speakers clean (the run's predictions) and with their raw audio at
    -20 dB and +10 dB gain and with white noise at 20 dB SNR (applied before the bundle's
    preprocessing). Prints one JSON line per run (pooled UA per condition and their mean).
    This is how the default model's robustness settings were chosen (docs/results.md).

``package --run RUN --cross REPORT... --cross-runs RUN... [--selection FILE]``
    Copies ``RUN/final/bundle`` into ``src/sertk/default_model/`` and writes the model card into
    its ``bundle.json`` (``extra.model_card``) and ``MODEL_CARD.md``, from measured numbers
    only: the run's summary and fold predictions (speaker-independent CV), ``sertk evaluate
    --output`` reports of single-corpus models (cross-corpus, with the runs they came from),
    the ``robustness`` lines of the candidates (``--selection``) and ``COMMANDS``. The run's
    summary and pooled test predictions go next to the bundle as ``cv_summary.json``, which
    tests/test_default_model.py checks the card against.

The full command sequence is in docs/results.md ("Default model").
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
DEST = REPO / "src" / "sertk" / "default_model"
LICENCES = {
    "emodb": "Berlin EmoDB (Burkhardt et al., Interspeech 2005): free for research; "
    "republished by audEERING under CC0-1.0",
    "ravdess": "RAVDESS speech (Livingstone & Russo, PLoS ONE 2018): CC BY-NC-SA 4.0",
}
MODEL_LICENCE = (
    "CC BY-NC-SA 4.0 (non-commercial, share-alike): the model is trained on RAVDESS, whose "
    "licence forbids commercial use; the EmoDB part (CC0) adds no restriction. Do not use the "
    "default model commercially; train your own bundle on data you may use."
)
# the card's "Reproduce" section (from the repository root); --commands FILE replaces it
COMMANDS = """\
# from the repository root; OMP_NUM_THREADS=1 on a shared machine; runs go to runs/<name>-<timestamp>
sertk train recipes/default_model.yaml
# the robustness check that chose the settings (candidates A and B; the shipped run is C)
sertk train recipes/default_model.yaml --set name=dm_A_speed --set preprocess.normalize=none --set train.augment.noise_p=0.0
sertk train recipes/default_model.yaml --set name=dm_B_speed_noise_gain --set preprocess.normalize=none --set train.augment.gain_p=1.0
python scripts/train_default_model.py robustness runs/dm_A_speed-* runs/dm_B_speed_noise_gain-* runs/default_model-* > build/selection.jsonl
# cross-corpus: one corpus, the 6 shared classes (add --set features.normalization=speaker for the speaker-adapted rows, names xcS_*;
# --set preprocess.normalize=none --set train.augment.noise_p=0.0 for the study-settings rows, names xcA_*)
sertk train recipes/default_model.yaml --set name=xc_ravdess --set 'data.corpora=[{corpus: ravdess, root: ../shared/corpora/ravdess}]' --set data.targets=null --set data.mapping=null --set data.labels=common
sertk train recipes/default_model.yaml --set name=xc_emodb --set 'data.corpora=[{corpus: emodb, root: ../shared/corpora/emodb}]' --set data.targets=null --set data.mapping=null --set data.labels=common
sertk corpus scan emodb ../shared/corpora/emodb -o build/emodb.csv
sertk corpus scan ravdess ../shared/corpora/ravdess -o build/ravdess.csv
sertk evaluate runs/xc_ravdess-*/final/bundle --manifest build/emodb.csv --output build/xc_ravdess_to_emodb.json
sertk evaluate runs/xc_emodb-*/final/bundle --manifest build/ravdess.csv --output build/xc_emodb_to_ravdess.json
# (the same two evaluate commands for runs/xcS_* and runs/xcA_*, outputs build/xcS_*.json and build/xcA_*.json)
python scripts/train_default_model.py package --run runs/default_model-* --cross build/xc_ravdess_to_emodb.json build/xc_emodb_to_ravdess.json build/xcS_ravdess_to_emodb.json build/xcS_emodb_to_ravdess.json build/xcA_ravdess_to_emodb.json build/xcA_emodb_to_ravdess.json --cross-runs runs/xc_ravdess-* runs/xc_emodb-* runs/xcS_ravdess-* runs/xcS_emodb-* runs/xcA_ravdess-* runs/xcA_emodb-* --selection build/selection.jsonl
"""
# recording conditions of the robustness check: (name, gain in dB, white-noise SNR in dB or None)
CONDITIONS = (
    ("gain -20 dB", -20.0, None),
    ("gain +10 dB", 10.0, None),
    ("noise 20 dB SNR", 0.0, 20.0),
)


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))


def _percent(value: float) -> float:
    return round(100.0 * value, 1)


def _ua(rows: list[dict]) -> float:
    """Mean recall over the true labels present in ``rows`` (``label``, ``predicted``)."""
    hits: dict[str, list[bool]] = defaultdict(list)
    for row in rows:
        hits[row["label"]].append(row["predicted"] == row["label"])
    return sum(sum(v) / len(v) for v in hits.values()) / len(hits)


def _fold_predictions(run: Path) -> list[tuple[Path, list[dict]]]:
    out = []
    for fold in sorted(p for p in (run / "folds").iterdir() if p.is_dir()):
        with (fold / "predictions.csv").open(newline="", encoding="utf-8") as handle:
            out.append((fold, list(csv.DictReader(handle))))
    return out


def describe(run: Path) -> str:
    """The robustness-relevant settings of a run, from its config."""
    config = _config(run)
    augment = config["train"]["augment"]
    parts = [f"normalize={config['preprocess']['normalize']}", f"{augment['copies']} copies:"]
    for step, field in (("speed", "speed"), ("noise", "noise_snr_db"), ("gain", "gain_db")):
        if augment[f"{step}_p"] > 0:
            parts.append(f"{step} p={augment[f'{step}_p']} {augment[field]}")
    return " ".join(parts)


def robustness(run: Path) -> dict:
    """Pooled UA of the run's fold models per recording condition (see the module docstring)."""
    import numpy as np

    from sertk.audio import load_audio
    from sertk.augment import add_noise
    from sertk.bundle import load_bundle
    from sertk.config import load_config
    from sertk.experiment import prepare_data

    utterances = {u.id: u for u in prepare_data(load_config(run / "config.yaml")).utterances}
    result: dict[str, list[dict]] = {"clean": [], **{name: [] for name, _, _ in CONDITIONS}}
    for fold, rows in _fold_predictions(run):
        result["clean"] += rows
        scorer = load_bundle(fold / "bundle").build_scorer()
        rate = scorer.sampling_rate
        signals = [load_audio(utterances[r["id"]].path, sampling_rate=rate)[0] for r in rows]
        for name, gain_db, snr_db in CONDITIONS:
            rng = np.random.default_rng(0)
            changed = [s * np.float32(10 ** (gain_db / 20)) for s in signals]
            if snr_db is not None:
                changed = [add_noise(s, snr_db, rng).astype(np.float32) for s in changed]
            predicted = scorer.predict_signals(changed, rate).argmax(axis=1)
            result[name] += [
                {"label": r["label"], "predicted": scorer.labels[int(k)]}
                for r, k in zip(rows, predicted, strict=True)
            ]
    scores = {name: _percent(_ua(rows)) for name, rows in result.items()}
    mean = round(sum(scores.values()) / len(scores), 1)
    return {"run": run.name, "settings": describe(run), **scores, "mean": mean}


def cv_evidence(run: Path) -> dict:
    """What the card's speaker-independent figures come from, stored next to the bundle as
    ``cv_summary.json``: the run's ``summary.json`` and its pooled test predictions."""
    rows = [
        [fold.name, row["id"], row["label"], row["predicted"]]
        for fold, fold_rows in _fold_predictions(run)
        for row in fold_rows
    ]
    return {
        "run": run.name,
        "summary": _read_json(run / "summary.json"),
        "predictions": {"columns": ["fold", "id", "label", "predicted"], "rows": rows},
    }


def cross_validation(run: Path) -> dict:
    """Speaker-independent CV numbers of the run, overall and per corpus (pooled predictions)."""
    summary = _read_json(run / "summary.json")
    rows = [row for _, fold_rows in _fold_predictions(run) for row in fold_rows]
    per_corpus = {}
    for corpus in sorted({row["id"].split(":", 1)[0] for row in rows}):
        mine = [row for row in rows if row["id"].startswith(corpus + ":")]
        correct = sum(r["predicted"] == r["label"] for r in mine)
        per_corpus[corpus] = {
            "utterances": len(mine),
            "ua": _percent(_ua(mine)),
            "wa": _percent(correct / len(mine)),
        }
    pooled = summary["pooled"]
    return {
        "protocol": f"{summary['folds']}-fold cross-validation grouped by speaker over all "
        f"{summary['speakers']} speakers (test speakers never heard in training)",
        "ua_mean": _percent(summary["mean"]["ua"]),
        "ua_std": _percent(summary["std"]["ua"]),
        "ua_pooled": _percent(pooled["ua"]),
        "wa_pooled": _percent(pooled["wa"]),
        "macro_f1_pooled": _percent(pooled["macro_f1"]),
        "recall_per_class": {k: _percent(v["recall"]) for k, v in pooled["per_class"].items()},
        "per_corpus": per_corpus,
    }


def cross_corpus(report_path: Path, train_run: Path) -> dict:
    """One ``sertk evaluate --output`` report of a bundle from ``train_run``, as card entry."""
    report = _read_json(report_path)
    config = _config(train_run)
    data = config["data"]
    corpora = [c["corpus"] for c in data["corpora"]] if data.get("corpora") else [data["corpus"]]
    result = report["report"]
    return {
        "trained_on": "+".join(corpora),
        "evaluated_on": Path(report["manifest"]).stem,
        "protocol": config["features"]["normalization"],
        "settings": describe(train_run),
        "labels": report["labels"],
        "utterances": report["evaluated"],
        "excluded": report["unmapped"],
        "ua": _percent(result["ua"]),
        "wa": _percent(result["wa"]),
        "macro_f1": _percent(result["macro_f1"]),
        # the same pipeline's cross-validation inside its training corpus, for the gap
        "in_corpus_cv_ua": _percent(_read_json(train_run / "summary.json")["pooled"]["ua"]),
    }


def model_card(run: Path, cross: list[dict], selection: list[dict], commands: list[str]) -> dict:
    """The card as plain JSON (see ``markdown`` for its text form)."""
    bundle = _read_json(run / "final" / "bundle" / "bundle.json")
    summary = _read_json(run / "summary.json")
    meta = bundle["model"]["meta"]
    corpora = [c["corpus"] for c in _config(run)["data"]["corpora"]]
    return {
        "name": "sertk default model",
        "task": "speech emotion recognition, one label per utterance (acted adult speech)",
        "labels": bundle["labels"],
        "label_mapping": {
            "neutral": "neutral and RAVDESS 'calm'",
            "surprised": "RAVDESS only (EmoDB has no surprised class)",
            "dropped": "EmoDB 'boredom' (RAVDESS has none)",
        },
        "training_data": {
            "corpora": {c: LICENCES.get(c, "") for c in corpora},
            "utterances": summary["utterances"],
            "speakers": summary["speakers"],
            "dropped": summary["dropped"],
            "caveat": "the shipped model is trained on every utterance of both corpora, so any "
            "EmoDB or RAVDESS clip (the examples/ clips included) is training data",
        },
        "licence": MODEL_LICENCE,
        "pipeline": {
            "preprocess": bundle["preprocess"],
            "features": bundle["features"],
            "model": f"ridge, C={bundle['model']['hparams']['C']} (inner CV), clip "
            f"{meta.get('clip')}, softmax temperature {meta['calibration']['temperature']:.3f}",
            "augmentation": describe(run),
        },
        "speaker_independent": cross_validation(run),
        "selection": {
            "criterion": "mean pooled UA of the 34-speaker cross-validation over clean audio and "
            "three simulated recording conditions (scripts/train_default_model.py robustness), "
            "fixed before any robustness number was measured; the cross-corpus tests were not "
            "used for any choice",
            "candidates": selection,
        },
        "cross_corpus": cross,
        "commands": commands,
    }


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]


def markdown(card: dict) -> str:
    """``MODEL_CARD.md``: the card as text."""
    parts = (_md_summary, _md_data, _md_unseen_speakers, _md_robustness, _md_cross, _md_rest)
    return "\n".join(line for part in parts for line in part(card))


def _md_summary(card: dict) -> list[str]:
    cv = card["speaker_independent"]
    own = card["pipeline"]["augmentation"]  # the shipped model's settings
    cross = [c for c in card["cross_corpus"] if c["protocol"] == "global" and c["settings"] == own]
    spread = ", ".join(f"{c['trained_on']} -> {c['evaluated_on']} {c['ua']}" for c in cross)
    adapted = ", ".join(
        f"{c['trained_on']} -> {c['evaluated_on']} {c['ua']}"
        for c in card["cross_corpus"]
        if c["protocol"] == "speaker" and c["settings"] == own
    )
    return [
        "# sertk default model",
        "",
        f"{card['task'].capitalize()}. Labels: {', '.join(card['labels'])}.",
        'Load it with `Recognizer.load("default")` or `sertk predict FILE`.',
        "",
        f"In short: on speakers it never heard, from the two corpora it was trained on, UA "
        f"{cv['ua_pooled']} (chance {100 / len(card['labels']):.1f}). The same recipe trained "
        f"on one corpus and tested on the other (another language and studio) reaches UA "
        f"{spread} (chance 16.7): do not expect it to work on a new language or recording "
        "setup without retraining or adapting."
        + (
            f" A speaker-adapted model of the same recipe (features normalised per speaker, "
            f"several utterances per speaker needed) transfers better: UA {adapted}."
            if adapted
            else ""
        ),
        "",
        "## Licence",
        "",
        card["licence"],
        "",
    ]


def _md_data(card: dict) -> list[str]:
    data, pipeline = card["training_data"], card["pipeline"]
    dropped = ", ".join(f"{k} ({v})" for k, v in data["dropped"].items())
    return [
        "## Training data",
        "",
        *[f"- {name}: {text}" for name, text in data["corpora"].items()],
        f"- {data['utterances']} utterances of {data['speakers']} speakers; dropped: {dropped}",
        "- labels: " + "; ".join(f"{k}: {v}" for k, v in card["label_mapping"].items()),
        f"- note: {data['caveat']}",
        "",
        "## Pipeline",
        "",
        f"- preprocess: `{json.dumps(pipeline['preprocess'])}`",
        f"- features: `{json.dumps(pipeline['features'])}` (2798 dims per utterance)",
        f"- model: {pipeline['model']}",
        f"- training augmentation: {pipeline['augmentation']}",
        "",
    ]


def _md_unseen_speakers(card: dict) -> list[str]:
    cv = card["speaker_independent"]
    row = [f"{cv['ua_mean']} ± {cv['ua_std']}", cv["ua_pooled"], cv["wa_pooled"]]
    corpora = "; ".join(
        f"{name} UA {v['ua']}, WA {v['wa']} (n={v['utterances']})"
        for name, v in cv["per_corpus"].items()
    )
    recall = ", ".join(f"{k} {v}" for k, v in cv["recall_per_class"].items())
    return [
        "## Accuracy on unseen speakers",
        "",
        f"{cv['protocol']}; UA = unweighted average recall.",
        "",
        *_table(
            ["UA fold mean ± std", "UA pooled", "WA pooled", "macro-F1 pooled"],
            [[*row, cv["macro_f1_pooled"]]],
        ),
        "",
        f"Per corpus (the same folds' test predictions): {corpora}.",
        f"Recall per class: {recall}.",
        "",
    ]


def _md_robustness(card: dict) -> list[str]:
    conditions = ["clean", *(name for name, _, _ in CONDITIONS), "mean"]
    rows = [[c["settings"], *(c[k] for k in conditions)] for c in card["selection"]["candidates"]]
    return [
        "## Robustness (how the settings were chosen)",
        "",
        f"Criterion: {card['selection']['criterion']}. Pooled UA of each candidate (the last "
        "row is the shipped model's run):",
        "",
        *_table(["settings", *conditions], rows),
        "",
    ]


def _md_cross(card: dict) -> list[str]:
    keys = ("trained_on", "evaluated_on", "protocol", "settings", "utterances", "ua", "wa")
    rows = [
        [*(c[k] for k in keys), c["macro_f1"], c["in_corpus_cv_ua"]] for c in card["cross_corpus"]
    ]
    header = ["trained on", "evaluated on", "protocol", "settings", "n", "UA", "WA", "macro-F1"]
    return [
        "## Accuracy on an unseen corpus and language",
        "",
        "The default model's recipe trained on one corpus only, over the 6 classes both corpora "
        "share (chance UA 16.7), then scored with `sertk evaluate` on the other corpus (another "
        "language, other speakers, another studio). Protocol `global` is the default model's "
        "(one utterance at a time); `speaker` first z-normalises each speaker's features with "
        "that speaker's own statistics (needs several utterances per speaker: "
        "`predict_batch(..., speakers=...)`). The last column is the same model's "
        "cross-validation inside its own corpus.",
        "",
        *_table([*header, "in-corpus CV UA"], rows),
        "",
    ]


def _md_rest(card: dict) -> list[str]:
    return [
        "## Limitations",
        "",
        "- Acted emotions of 34 adult actors (10 German, 24 North-American English) in studios; "
        "spontaneous speech, children, other languages and telephone or far-field audio differ.",
        "- One label per utterance of a few seconds; for longer audio use `Recognizer.timeline`.",
        "- 'surprised' is learned from RAVDESS only.",
        "- Probabilities are calibrated on held-out speakers of the training corpora; on other "
        "data the model can be confidently wrong.",
        "",
        "## Reproduce",
        "",
        "```",
        *card["commands"],
        "```",
        "",
    ]


def package(args: argparse.Namespace) -> None:
    if len(args.cross_runs) != len(args.cross):
        raise SystemExit("give one --cross-runs folder per --cross report, in the same order")
    cross = [cross_corpus(p, r) for p, r in zip(args.cross, args.cross_runs, strict=True)]
    selection = []
    if args.selection:
        lines = args.selection.read_text(encoding="utf-8").splitlines()
        selection = [json.loads(line) for line in lines if line.strip()]
    commands = (
        args.commands.read_text(encoding="utf-8") if args.commands else COMMANDS
    ).splitlines()
    card = model_card(args.run, cross, selection, commands)
    text = markdown(card)
    if args.dest.exists():
        shutil.rmtree(args.dest)
    shutil.copytree(args.run / "final" / "bundle", args.dest)
    document = _read_json(args.dest / "bundle.json")
    document["extra"] = {**(document.get("extra") or {}), "model_card": card}
    (args.dest / "bundle.json").write_text(json.dumps(document, indent=2) + "\n", "utf-8")
    (args.dest / "MODEL_CARD.md").write_text(text, encoding="utf-8")
    evidence = json.dumps(cv_evidence(args.run), separators=(",", ":"))
    (args.dest / "cv_summary.json").write_text(evidence + "\n", encoding="utf-8")
    size = sum(f.stat().st_size for f in args.dest.iterdir())
    print(f"default model: {args.dest} ({size} bytes)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("robustness", help="CV under simulated recording conditions")
    check.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    pack = commands.add_parser("package", help="copy the bundle and write the model card")
    pack.add_argument("--run", required=True, type=Path, help="finished default_model run")
    pack.add_argument("--cross", nargs="*", type=Path, default=[], help="evaluate reports")
    pack.add_argument("--cross-runs", nargs="*", type=Path, default=[], help="their runs")
    pack.add_argument("--selection", type=Path, help="robustness JSON lines of the candidates")
    pack.add_argument("--commands", type=Path, help="text file replacing COMMANDS")
    pack.add_argument("--dest", type=Path, default=DEST, help="default: src/sertk/default_model")
    args = parser.parse_args()
    if args.command == "robustness":
        for run in args.runs:
            print(json.dumps(robustness(run)), flush=True)
    else:
        package(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
