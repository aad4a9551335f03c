"""``sertk ensemble``: combine model bundles into one ensemble bundle, or evaluate runs together.

    sertk ensemble runs/svm/final/bundle runs/cnn/final/bundle -o models/mix
    sertk ensemble A B -o models/mix --rule weighted --weights 0.3,0.7
    sertk ensemble A B -o models/mix --rule weighted --fit-weights dev.csv
    sertk ensemble A B -o models/mix --map calm=neutral --labels neutral,happy,sad,angry
    sertk ensemble --cv runs/svm-20261121-1015 runs/cnn-20261121-1120 -o runs/mix-report

The bundle is loaded like any other (``sertk evaluate``, the Recognizer). With ``--cv`` the
arguments are run folders with the same folds: their per-fold test probabilities are combined
and scored like a run (``summary.json``, ``report.md`` in ``-o``).
"""

from __future__ import annotations

import argparse

from sertk.cli import options
from sertk.cli.evaluate import parse_mapping
from sertk.errors import ConfigError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "ensemble", help="combine bundles into an ensemble bundle (or --cv: evaluate runs)"
    )
    parser.add_argument("inputs", nargs="+", metavar="BUNDLE",
                        help="member bundles: bundle folders, run folders or 'default' (with "
                        "--cv: run folders)")  # fmt: skip
    parser.add_argument("-o", "--output", required=True, metavar="OUT", help="folder to write")
    parser.add_argument("--rule", choices=("soft", "weighted"), default=None,
                        help="soft: mean probability (default); weighted: --weights or "
                        "--fit-weights")  # fmt: skip
    parser.add_argument("--weights", metavar="W1,W2,...", help="one weight per member")
    parser.add_argument("--fit-weights", metavar="MANIFEST",
                        help="fit the weights on this labelled manifest (held-out data)")  # fmt: skip
    parser.add_argument("--labels", metavar="A,B,...", help="ensemble label order")
    parser.add_argument("--map", action="append", default=[], metavar="SRC=DST",
                        help="map member label SRC to ensemble label DST (repeatable)")  # fmt: skip
    parser.add_argument("--cv", action="store_true",
                        help="inputs are run folders: evaluate their fold models together")  # fmt: skip
    parser.add_argument("--cache", metavar="DIR", help="feature cache folder (--fit-weights)")
    options.add_model_pin(parser, repeat=True)
    parser.set_defaults(run=run)


def parse_weights(text: str | None) -> list[float] | None:
    """``"0.3,0.7"`` -> ``[0.3, 0.7]``; ConfigError for anything else."""
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise ConfigError(f"--weights expects numbers separated by commas, got {text!r}") from None


def run(args: argparse.Namespace) -> int:
    from sertk.bundle import load_bundle, pin_bundle
    from sertk.corpora import read_manifest
    from sertk.ensemble import build_ensemble
    from sertk.features.cache import FeatureCache

    weights = parse_weights(args.weights)
    rule = args.rule or ("weighted" if weights is not None or args.fit_weights else "soft")
    if args.cv:
        if args.map or args.labels or args.fit_weights:
            raise ConfigError("--cv combines runs as they are: --map, --labels and --fit-weights "
                              "do not apply (weighted runs fit weights on validation speakers)")  # fmt: skip
        if args.model_sha256:
            raise ConfigError("--model-sha256 pins member bundles; --cv reads runs' fold results")
        return _run_cv(args.inputs, args.output, rule, weights)
    pins = args.model_sha256 or []
    if pins and len(pins) != len(args.inputs):
        raise ConfigError(
            f"give --model-sha256 once per member, in order: {len(args.inputs)} members, "
            f"{len(pins)} hashes"
        )
    for member, pin in zip(args.inputs, pins, strict=False):
        pin_bundle(member, pin)
    fit_on = read_manifest(args.fit_weights) if args.fit_weights else None
    cache = FeatureCache(args.cache) if args.cache else None
    labels = None if args.labels is None else [x.strip() for x in args.labels.split(",")]
    path = build_ensemble(
        args.inputs, args.output, rule=rule, weights=weights, labels=labels,
        mapping=parse_mapping(args.map) or None, fit_on=fit_on, cache=cache,
    )  # fmt: skip
    bundle = load_bundle(path)
    shown = ", ".join(f"{m.weight:.3f}" for m in bundle.members)
    print(f"ensemble of {len(bundle.members)} bundles ({rule}; weights {shown}); labels "
          f"{' '.join(bundle.labels)}")  # fmt: skip
    print(f"bundle: {path}")
    return 0


def _run_cv(runs: list[str], output: str, rule: str, weights: list[float] | None) -> int:
    from sertk.ensemble import evaluate_ensemble_cv

    result = evaluate_ensemble_cv(runs, rule=rule, weights=weights, out_dir=output)
    for member in result["members"]:
        print(f"member {member['name']} ({member['model']}): UA {member['mean']['ua']:.4f} "
              f"(pooled {member['pooled']['ua']:.4f})")  # fmt: skip
    mean, pooled = result["mean"], result["pooled"]
    print(f"ensemble ({rule}, {result['folds']} folds): UA {mean['ua']:.4f} ± "
          f"{result['std']['ua']:.4f} (pooled {pooled['ua']:.4f})")  # fmt: skip
    print(f"report: {output}")
    return 0
