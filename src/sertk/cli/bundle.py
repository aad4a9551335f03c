"""``sertk bundle``: make bundles out of bundles.

    sertk bundle pair runs/dm/final/bundle runs/dm_adapted/final/bundle -o models/pair
    sertk bundle pair GLOBAL ADAPTED -o OUT --min-seconds 30 --map calm=neutral

``pair`` writes an adaptive bundle (``sertk.bundle.save_adaptive_bundle``): the global model
answers until a speaker's (or a session's) statistics hold ``--min-seconds`` of speech, then the
speaker-adapted one. Every command that takes a model takes the result.
"""

from __future__ import annotations

import argparse

from sertk.errors import ConfigError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bundle", help="make bundles out of bundles (pair)")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    pair = actions.add_parser(
        "pair",
        help="a global and a speaker-adapted bundle in one adaptive bundle",
        description="The global model answers until a speaker's statistics hold --min-seconds "
        "of speech (sertk predict --adapt, --timeline --adapt session, listen, gui, serve "
        "sessions), then the speaker-adapted one.",
    )
    pair.add_argument("global_bundle", metavar="GLOBAL", help="a global bundle (or run folder)")
    pair.add_argument("adapted_bundle", metavar="ADAPTED",
                      help="a speaker-adapted bundle (features.normalization: speaker)")  # fmt: skip
    pair.add_argument("-o", "--output", required=True, metavar="OUT", help="folder to write")
    pair.add_argument("--min-seconds", type=float, metavar="S",
                      help="speech needed before adapting (default: the adapted bundle's, else "
                      "20)")  # fmt: skip
    pair.add_argument("--map", action="append", default=[], metavar="SRC=DST",
                      help="map the adapted bundle's label SRC to the global label DST")  # fmt: skip
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sertk.bundle import load_bundle, save_adaptive_bundle
    from sertk.cli.evaluate import parse_mapping

    if args.min_seconds is not None and not args.min_seconds >= 0:
        raise ConfigError(f"--min-seconds must be >= 0, got {args.min_seconds}")
    path = save_adaptive_bundle(
        args.output, args.global_bundle, args.adapted_bundle, min_seconds=args.min_seconds,
        mapping=parse_mapping(args.map) or None,
    )  # fmt: skip
    bundle = load_bundle(path)
    print(
        f"wrote {path}: adaptive bundle, labels {', '.join(bundle.labels)}; the global model "
        f"answers until {bundle.min_seconds:g} s of a speaker's speech, then the adapted one "
        f"({bundle.members[1].contract.adaptation or 'z-score'})"
    )
    return 0
