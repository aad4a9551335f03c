"""The ``sertk`` command line: a thin adapter over the library.

Each sub-command lives in its own module with ``add_parser(subparsers)`` and
``run(args) -> int``. Modules are imported only to build the parser; heavy
imports belong inside ``run``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from sertk._version import __version__
from sertk.errors import SertkError

# sub-command modules, in the order `sertk --help` lists them
COMMANDS = [
    "info",
    "corpus",
    "extract",
    "train",
    "benchmark",
    "evaluate",
    "ensemble",
    "predict",
    "listen",
    "gui",
    "serve",
    "export",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sertk", description="Speech emotion recognition toolkit."
    )
    parser.add_argument("--version", action="version", version=f"sertk {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"sertk.cli.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
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
