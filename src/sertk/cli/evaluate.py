"""``sertk evaluate``: score a model bundle on a labelled manifest it never saw (cross-corpus).

    sertk evaluate runs/x/final/bundle --manifest build/ravdess.csv --map calm=neutral \\
        --output ravdess_report.json

Labels map into the bundle's classes by name, through the bundle's own label map, and through
``--map SRC=DST``; labels that map nowhere are excluded and listed with their counts.
``--adapt speaker`` normalises each speaker's features with all of that speaker's utterances in
the manifest (its ``speaker`` column; the speaker-adapted protocol): what a speaker-adapted
bundle needs (and gets by default) and what an adaptive bundle uses instead of its global model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sertk.cli import options
from sertk.errors import ConfigError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate", help="score a model bundle on a labelled manifest (cross-corpus)"
    )
    parser.add_argument(
        "bundle", metavar="BUNDLE",
        help="model bundle folder, run folder, or 'default' (the shipped model)",
    )  # fmt: skip
    parser.add_argument("--manifest", required=True, help="labelled manifest CSV to score")
    parser.add_argument(
        "--map",
        action="append",
        default=[],
        metavar="SRC=DST",
        help="map the manifest's label SRC to the model's label DST (repeatable)",
    )
    parser.add_argument(
        "--adapt", choices=("speaker", "none"), default=None,
        help="speaker: normalise each speaker's features with all of that speaker's utterances "
        "(the manifest's speaker column; unlabelled); default: when the bundle is speaker-adapted",
    )  # fmt: skip
    parser.add_argument("--output", metavar="FILE.json", help="also save the full report here")
    parser.add_argument(
        "--cache", metavar="DIR", help="feature cache folder ($SERTK_CACHE or ~/.cache/...)"
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    options.add_jobs(parser)
    options.add_model_pin(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def parse_mapping(items: list[str]) -> dict[str, str]:
    """``["calm=neutral"]`` -> ``{"calm": "neutral"}``; ConfigError for a malformed item."""

    mapping: dict[str, str] = {}
    for item in items:
        source, sep, target = (part.strip() for part in item.partition("="))
        if not sep or not source or not target:
            raise ConfigError(f"--map expects SRC=DST (e.g. calm=neutral), got {item!r}")
        if source in mapping and mapping[source] != target:
            raise ConfigError(f"--map gives {source!r} two targets: {mapping[source]}, {target}")
        mapping[source] = target
    return mapping


def run(args: argparse.Namespace) -> int:
    from sertk.bundle import pin_bundle
    from sertk.corpora import read_manifest
    from sertk.experiment import evaluate_bundle, format_evaluation
    from sertk.experiment.artifacts import write_json
    from sertk.features.cache import FeatureCache

    jobs = options.check_jobs(args)
    mapping = parse_mapping(args.map)
    result = evaluate_bundle(
        pin_bundle(args.bundle, args.model_sha256),
        read_manifest(args.manifest),
        mapping=mapping,
        cache=FeatureCache(args.cache),
        device=args.device,
        progress=not args.no_progress,
        jobs=jobs,
        adapt=None if args.adapt is None else args.adapt == "speaker",
    )
    print(format_evaluation(result))
    if args.output:
        write_json(Path(args.output), {"manifest": str(Path(args.manifest).resolve()), **result})
        print(f"report: {args.output}")
    return 0
