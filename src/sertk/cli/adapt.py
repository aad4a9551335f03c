"""``--adapt``: test-time adaptation options of ``sertk predict`` (and whose files are whose).

    sertk predict actor01/ --adapt all                            # the files are one speaker
    sertk predict corpus/ --recursive --adapt speaker --speaker-pattern 'Actor_(\\d+)'
    sertk predict clips/ --adapt speaker --speakers speakers.csv  # columns: path,speaker
    sertk predict talk.wav --timeline --adapt session             # the recording's own speech

Each speaker's statistics come from the speech in all of that speaker's files in the call (no
labels needed); a bundle that can adapt (speaker-adapted, or ``adaptive``: global until enough
speech, then adapted) uses them. ``--speaker ID`` (all files one named speaker) is
``--adapt all`` with a name.
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

from sertk.errors import ConfigError, SertkError

MODES = ("speaker", "all", "session")


def add_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--adapt", choices=MODES, default=None,
        help="test-time adaptation to each speaker's speech: speaker (--speaker-pattern or "
        "--speakers), all (the files are one speaker), session (--timeline: each recording's "
        "own speech); needs a speaker-adapted or adaptive bundle",
    )  # fmt: skip
    parser.add_argument("--speaker-pattern", metavar="REGEX",
                        help="the speaker of each file: REGEX's first group (or its whole "
                        "match) searched in the file's path")  # fmt: skip
    parser.add_argument("--speakers", metavar="FILE.csv", type=Path,
                        help="the speaker of each file: a CSV with columns path,speaker")  # fmt: skip
    parser.add_argument("--speaker", metavar="ID", help="all files are this speaker's "
                        "(--adapt all with a name)")  # fmt: skip
    parser.add_argument("--adapt-min-seconds", type=float, metavar="S",
                        help="speech a speaker needs before adapting (default: the bundle's)")  # fmt: skip


def check_options(args: argparse.Namespace, recognizer) -> str | None:
    """The adaptation mode (None: none); ConfigError/SertkError for options that do not fit
    each other or the bundle."""
    mode = args.adapt
    if args.speaker is not None:
        if mode not in (None, "all", "session"):
            raise ConfigError("--speaker ID names the one speaker of all files; with --adapt "
                              "speaker give --speaker-pattern or --speakers instead")  # fmt: skip
        mode = mode or ("session" if args.timeline else "all")
    given = [name for name, value in (("--speaker-pattern", args.speaker_pattern),
                                      ("--speakers", args.speakers)) if value is not None]  # fmt: skip
    if mode == "speaker" and len(given) != 1:
        raise ConfigError("--adapt speaker needs the speaker of each file: --speaker-pattern "
                          "REGEX or --speakers FILE.csv (one of them)")  # fmt: skip
    if mode != "speaker" and given:
        raise ConfigError(f"{given[0]} applies to --adapt speaker")
    if args.timeline and mode in ("speaker", "all"):
        raise ConfigError(f"--timeline adapts each recording to its own speech: use --adapt "
                          f"session, not --adapt {mode}")  # fmt: skip
    if mode == "session" and not args.timeline:
        raise ConfigError("--adapt session adapts a recording to its own speech: it needs "
                          "--timeline (for files, --adapt all or --adapt speaker)")  # fmt: skip
    if args.adapt_min_seconds is not None and not args.adapt_min_seconds >= 0:
        raise ConfigError(f"--adapt-min-seconds must be >= 0, got {args.adapt_min_seconds}")
    if mode is None and recognizer.speaker_adapted:
        raise SertkError(
            f"{recognizer.bundle.path} is speaker-adapted: give --adapt all (or --speaker ID: "
            "the files are one speaker), --adapt speaker with --speaker-pattern/--speakers, or "
            "--timeline --adapt session"
        )
    if mode is not None and not recognizer.adaptive:
        raise SertkError(
            f"--adapt: {recognizer.bundle.path} has no speaker-adapted model to adapt; use a "
            "speaker-adapted bundle or an adaptive one (sertk bundle pair GLOBAL ADAPTED -o OUT)"
        )
    return mode


def speakers_of(files: list[Path], args: argparse.Namespace, mode: str | None) -> list[str] | None:
    """The speaker of each file for ``mode`` (None: no adaptation or a timeline)."""
    if mode not in ("speaker", "all"):
        return None
    if mode == "all":
        return [args.speaker or "all"] * len(files)
    if args.speaker_pattern is not None:
        return from_pattern(files, args.speaker_pattern)
    return from_table(files, args.speakers)


def from_pattern(files: list[Path], pattern: str) -> list[str]:
    """``pattern``'s first group (or whole match) in each path; ConfigError naming the files
    it does not match."""
    try:
        regex = re.compile(pattern)
    except re.error as error:
        raise ConfigError(
            f"--speaker-pattern {pattern!r} is not a regular expression: {error}"
        ) from None
    found, missing = [], []
    for file in files:
        match = regex.search(str(file))
        speaker = None if match is None else (match.group(1) if regex.groups else match.group(0))
        if not speaker:
            missing.append(str(file))
        found.append(speaker)
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise ConfigError(
            f"--speaker-pattern {pattern!r} finds no speaker in {len(missing)} of {len(files)} "
            f"files: {shown}; every file needs one (e.g. 'Actor_(\\d+)' takes the digits)"
        )
    return found


def from_table(files: list[Path], table: Path) -> list[str]:
    """Each file's speaker from a ``path,speaker`` CSV (paths as given or relative to the
    CSV's folder); ConfigError for a bad table or files it does not list."""
    try:
        with open(table, newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise ConfigError(f"cannot read --speakers {table}: {error}") from None
    if not rows or not {"path", "speaker"} <= set(rows[0]):
        raise ConfigError(f"--speakers {table} needs a header with the columns path,speaker")
    known: dict[Path, str] = {}
    for row in rows:
        path = Path(row["path"])
        for candidate in (path, table.parent / path):
            known[candidate.resolve()] = row["speaker"].strip()
    speakers = [known.get(file.resolve()) for file in files]
    missing = [str(f) for f, s in zip(files, speakers, strict=True) if not s]
    if missing:
        raise ConfigError(
            f"--speakers {table} gives no speaker for {len(missing)} of {len(files)} files: "
            f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}"
        )
    return speakers


def report(summaries: dict, *, stream=None) -> None:
    """Print which speakers were adapted, with how many files and seconds (stderr)."""
    stream = stream or sys.stderr
    rows = list(summaries.values())
    if not rows:
        return
    adapted = sum(1 for s in rows if s.adapted)
    print(
        f"sertk predict: adapting to {len(rows)} speaker{'s' if len(rows) != 1 else ''} "
        f"({adapted} adapted; needs {rows[0].min_seconds:g} s of speech each):",
        file=stream,
    )
    for summary in rows:
        print(f"  {summary.describe()}", file=stream)
