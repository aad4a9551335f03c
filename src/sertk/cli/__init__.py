"""The ``sertk`` command line: a thin adapter over the library.

Each sub-command lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``; heavy imports belong inside ``run``. ``sertk`` builds the parser of the
command it runs alone (the others are listed by their one-line help, from :data:`COMMANDS`),
so ``sertk --help`` imports no command module and ``sertk predict`` only ``sertk.cli.predict``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable

from sertk._version import __version__
from sertk.errors import SertkError

# sub-command -> its one-line help, in the order `sertk --help` lists them (each module's
# add_parser gives the same help; tests/test_cli_options.py checks that they agree)
COMMANDS = {
    "info": "show versions, compute device and installed extras (or a bundle's details)",
    "corpus": "scan corpora into manifests; list adapters",
    "extract": "extract features of a manifest into the cache",
    "train": "cross-validate a recipe (speaker-independent folds) into a run folder",
    "benchmark": "leave-one-corpus-out (loco) or per-corpus CV (within) of a recipe",
    "evaluate": "score a model bundle on a labelled manifest (cross-corpus)",
    "ensemble": "combine bundles into an ensemble bundle (or --cv: evaluate runs)",
    "bundle": "make bundles out of bundles (pair)",
    "predict": "predict the emotion of audio files (or a timeline of a long recording)",
    "listen": "show the emotion of live speech (microphone, or a file played in real time)",
    "gui": "desktop app: live emotion from a microphone, timelines of recordings",
    "serve": "serve a model over HTTP: REST API + web page (needs the 'serve' extra)",
    "export": "export a model bundle to ONNX (optionally int8), verified against its source",
}


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``sertk`` parser with the options of ``commands`` (None: of every command); the
    other commands are listed with their help only."""
    full = set(COMMANDS if commands is None else commands)
    parser = argparse.ArgumentParser(
        prog="sertk", description="Speech emotion recognition toolkit."
    )
    parser.add_argument("--version", action="version", version=f"sertk {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, summary in COMMANDS.items():
        if name in full:
            importlib.import_module(f"sertk.cli.{name}").add_parser(subparsers)
        else:
            subparsers.add_parser(name, help=summary)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    # sertk's own options take no value: the first other word names the command
    command = next((word for word in argv if not word.startswith("-")), None)
    parser = build_parser([command] if command in COMMANDS else [])
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except SertkError as error:
        print(f"sertk {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sertk {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # output piped into `head` and the like: stop quietly, as Unix tools do
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
