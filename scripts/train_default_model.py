"""Select, check and package the default model (``recipes/default_model.yaml``).

Two sub-commands; nothing is trained here (``sertk train`` does that):

``robustness RUN [RUN ...]``
    A cross-validation under simulated recording conditions: each fold model of a finished run
    scores its own test speakers clean (the run's predictions) and with their raw audio at
    -20 dB and +10 dB gain and with white noise at 20 dB SNR (applied before the bundle's
    preprocessing). Prints one JSON line per run (pooled UA per condition and their mean).
    This is how the first default model's robustness settings were chosen (docs/results.md).

``package --run RUN --adapted-run RUN --loco BASELINE FINAL --adaptation FILE``
    Makes the default model an adaptive bundle (``sertk bundle pair``): the global model of
    ``RUN/final/bundle`` answers until a speaker's statistics hold ``--min-seconds`` of speech,
    then the speaker-adapted model of the adapted run, which adapts by shrinkage towards the
    training speakers' prior (``--prior-seconds``; the prior is computed here from the adapted
    run's training speakers and written into its bundle). The card goes into ``bundle.json``
    (``extra.model_card``) and ``MODEL_CARD.md``, from measured numbers only
    (``default_model_card.py``): both runs' summaries and fold predictions (speaker-independent
    CV), the ``summary.json`` of two ``sertk benchmark loco`` runs (the recipe's baseline and
    final leave-one-corpus-out figures), ``benchmarks/bench_adaptation.py --json`` on the two
    runs, and ``COMMANDS``. Both runs' summaries and pooled test predictions go next to the
    bundle as ``cv_summary.json``, which tests/test_default_model.py checks the card against.

The full command sequence is in docs/results.md ("Default model").
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from default_model_card import (  # noqa: E402
    _ua,
    card,
    evidence,
    fold_predictions,
    markdown,
    percent,
    read_json,
)

__all__ = ["markdown"]
REPO = Path(__file__).resolve().parents[1]
DEST = REPO / "src" / "sertk" / "default_model"
# the card's "Reproduce" section (from the repository root); --commands FILE replaces it
COMMANDS = """\
# from the repository root; OMP_NUM_THREADS=1 on a shared machine; runs go to runs/<name>-<timestamp>
sertk train recipes/default_model.yaml
sertk train recipes/default_model.yaml --set name=default_model_adapted --set features.normalization=speaker --set 'model.hparams.block_weights=[1, 1, 1]'
# the leave-one-corpus-out figures: the baseline (the first default model's recipe) and this model's
sertk benchmark loco recipes/loco_default.yaml
sertk benchmark loco recipes/loco_final.yaml
python benchmarks/bench_adaptation.py runs/default_model_adapted-* runs/default_model-* --repeats 1 --priors 15,240 --json build/adaptation.json
python scripts/train_default_model.py package --run runs/default_model-* --adapted-run runs/default_model_adapted-* --loco runs/loco_default-loco-* runs/loco_final-loco-* --adaptation build/adaptation.json --prior-seconds 240
"""

# recording conditions of the robustness check: (name, gain in dB, white-noise SNR in dB or None)
CONDITIONS = (
    ("gain -20 dB", -20.0, None),
    ("gain +10 dB", 10.0, None),
    ("noise 20 dB SNR", 0.0, 20.0),
)


def _config(run: Path) -> dict:
    return yaml.safe_load((run / "config.yaml").read_text(encoding="utf-8"))


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
    for fold, rows in fold_predictions(run):
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
    scores = {name: percent(_ua(rows)) for name, rows in result.items()}
    mean = round(sum(scores.values()) / len(scores), 1)
    return {"run": run.name, "settings": describe(run), **scores, "mean": mean}


def shrinkage_bundle(run: Path, target: Path, *, prior_seconds: float) -> Path:
    """``run``'s final speaker-adapted bundle copied to ``target``, adapting by shrinkage
    towards the prior of the run's training speakers (their raw features, from the cache)."""
    import dataclasses

    from sertk.bundle import load_bundle
    from sertk.bundle.files import write_document
    from sertk.bundle.population import write_population
    from sertk.config import load_config
    from sertk.experiment import prepare_data
    from sertk.experiment.evaluate import request_features
    from sertk.features.cache import FeatureCache
    from sertk.features.normalization import (
        Adaptation,
        FeatureStatistics,
        group_by_speaker,
        population_prior,
    )

    source = run / "final" / "bundle"
    bundle = load_bundle(source)
    if not bundle.speaker_adapted:
        raise SystemExit(f"{run}: not a speaker-adapted run (features.normalization: speaker)")
    utterances = prepare_data(load_config(run / "config.yaml")).utterances
    key = (0, None)
    raw = [f[key] for f in request_features(bundle.build_scorer(), utterances,
                                            cache=FeatureCache(None))]  # fmt: skip
    groups = group_by_speaker([u.speaker for u in utterances])
    prior = population_prior(
        FeatureStatistics.of([raw[r] for r in rows]) for rows in groups.values()
    )
    shutil.copytree(source, target)
    document = read_json(target / "bundle.json")
    adaptation = Adaptation("shrinkage", prior_seconds=prior_seconds)
    document["adaptation"] = adaptation.to_dict()
    document["files"]["population"] = write_population({key: prior}, target)
    write_document(target, document)
    loaded = load_bundle(target)  # the contract reads back as written
    assert dataclasses.asdict(loaded.contract.adaptation) == adaptation.to_dict()
    return target


def package(args: argparse.Namespace) -> None:
    from sertk.bundle import load_bundle, save_adaptive_bundle
    from sertk.bundle.files import write_document

    runs = {"global": args.run, "adapted": args.adapted_run}
    documents = {k: read_json(r / "final" / "bundle" / "bundle.json") for k, r in runs.items()}
    commands = (
        args.commands.read_text(encoding="utf-8") if args.commands else COMMANDS
    ).splitlines()
    settings = {"min_seconds": args.min_seconds, "prior_seconds": args.prior_seconds}
    if len(args.loco) > 2:
        raise SystemExit("--loco takes the baseline run and at most the final recipe's")
    loco_runs = dict(zip(("baseline", "final"), args.loco, strict=False))
    the_card = card(runs, documents, loco_runs, read_json(args.adaptation), settings, commands)
    with tempfile.TemporaryDirectory() as folder:
        adapted = shrinkage_bundle(args.adapted_run, Path(folder) / "adapted",
                                   prior_seconds=args.prior_seconds)  # fmt: skip
        save_adaptive_bundle(
            args.dest, args.run / "final" / "bundle", adapted, min_seconds=args.min_seconds,
            extra={"model_card": the_card},
        )  # fmt: skip
    document = read_json(args.dest / "bundle.json")
    for member, run in zip(document["members"], runs.values(), strict=True):
        member["source"] = f"runs/{run.name}/final/bundle"  # not this machine's path
    write_document(args.dest, document)
    (args.dest / "MODEL_CARD.md").write_text(markdown(the_card), encoding="utf-8")
    stored = {role: evidence(run) for role, run in runs.items()}
    text = json.dumps(stored, separators=(",", ":"))
    (args.dest / "cv_summary.json").write_text(text + "\n", encoding="utf-8")
    size = sum(f.stat().st_size for f in args.dest.rglob("*") if f.is_file())
    print(f"default model: {args.dest} ({size} bytes), {load_bundle(args.dest).kind}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("robustness", help="CV under simulated recording conditions")
    check.add_argument("runs", nargs="+", type=Path, help="finished run folders")
    pack = commands.add_parser("package", help="pair the two runs' bundles, write the card")
    pack.add_argument("--run", required=True, type=Path, help="finished default_model run")
    pack.add_argument("--adapted-run", required=True, type=Path,
                      help="the same recipe with features.normalization=speaker")  # fmt: skip
    pack.add_argument("--loco", nargs="+", required=True, type=Path, metavar="RUN",
                      help="sertk benchmark loco run folders: the baseline, then the final "
                      "recipe's when it is there")  # fmt: skip
    pack.add_argument("--adaptation", required=True, type=Path,
                      help="benchmarks/bench_adaptation.py --json output on the two runs")  # fmt: skip
    pack.add_argument("--min-seconds", type=float, default=20.0, help="speech before adapting")
    pack.add_argument("--prior-seconds", type=float, default=240.0, help="shrinkage prior")
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
