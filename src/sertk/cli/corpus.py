"""``sertk corpus``: scan an official corpus folder into a manifest; list adapters and presets.

    sertk corpus scan emodb ../shared/corpora/emodb -o build/emodb.csv --check-audio
    sertk corpus list

Problems (unknown codes, missing audio, duplicates) are warnings on stderr; the exit status is
non-zero only when the root is missing or nothing usable was found.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections import Counter

from sertk.errors import CorpusError

WIDTH = 96


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("corpus", help="scan corpora into manifests; list adapters")
    commands = parser.add_subparsers(dest="corpus_command", metavar="ACTION", required=True)

    scan = commands.add_parser("scan", help="scan a corpus folder and write a CSV manifest")
    scan.add_argument("name", metavar="NAME", help="corpus adapter (see `sertk corpus list`)")
    scan.add_argument("root", metavar="ROOT", help="corpus folder (or CSV file for generic)")
    scan.add_argument("-o", "--output", required=True, help="manifest CSV to write")
    scan.add_argument("--check-audio", action="store_true", help="open every file, drop unreadable")
    scan.add_argument("--labels", metavar="PRESET", help="map labels with a preset, drop the rest")
    scan.add_argument("--speaker-pattern", metavar="REGEX", help="generic: speaker from the path")
    scan.add_argument("--include-song", action="store_true", help="ravdess: keep song files too")
    scan.add_argument(
        "--max-problems", type=int, default=10, metavar="N", help="problems to show (0: all)"
    )
    scan.set_defaults(run=run_scan)

    listing = commands.add_parser("list", help="list corpus adapters and label presets")
    listing.set_defaults(run=run_list)


def run_scan(args: argparse.Namespace) -> int:
    from sertk.corpora import LabelMap, scan_corpus, write_manifest

    label_map = LabelMap.preset(args.labels) if args.labels else None
    options = {}
    if args.speaker_pattern is not None:
        options["speaker_pattern"] = args.speaker_pattern
    if args.include_song:
        options["include_song"] = True
    result = scan_corpus(args.name, args.root, check_audio=args.check_audio, **options)
    utterances = result.utterances
    if label_map is not None:
        utterances, dropped = label_map.apply(utterances)
        merged = Counter(
            f"{u.fields['source_label']} -> {u.label}"
            for u in utterances
            if "source_label" in u.fields
        )
        if merged:
            shown = ", ".join(f"{pair} {n}" for pair, n in sorted(merged.items()))
            print(f"labels: preset {args.labels} merged {sum(merged.values())} ({shown})")
        if dropped:
            shown = ", ".join(f"{label} {n}" for label, n in dropped.items())
            print(f"labels: preset {args.labels} dropped {sum(dropped.values())} ({shown})")
        if not utterances:
            raise CorpusError(f"preset {args.labels!r} keeps none of the {args.name} labels")
    path = write_manifest(utterances, args.output)
    speakers = Counter(u.speaker for u in utterances)
    print(f"{args.name}: {len(utterances)} utterances, {len(speakers)} speakers -> {path}")
    order = label_map.labels if label_map is not None else None
    print(_label_table(Counter(u.label for u in utterances), order))
    print(_speaker_table(speakers))
    _print_problems(result.problems, args.max_problems)
    return 0


def _label_table(counts: Counter, order: tuple[str, ...] | None) -> str:
    from sertk.corpora.labels import canonical_order

    labels = [label for label in order if label in counts] if order else canonical_order(counts)
    total = sum(counts.values())
    width = max(len("label"), *(len(label) for label in labels))
    lines = [f"{'label':<{width}}  {'count':>6}  {'%':>5}"]
    for label in labels:
        lines.append(f"{label:<{width}}  {counts[label]:>6}  {100 * counts[label] / total:>5.1f}")
    return "\n".join(lines)


def _speaker_table(counts: Counter) -> str:
    from sertk.corpora.base import natural_key

    if len(counts) > 200:
        values = sorted(counts.values())
        return (
            f"speakers: {len(counts)} (utterances each: min {values[0]}, "
            f"median {statistics.median(values):g}, max {values[-1]})"
        )
    cells = [f"{speaker} {counts[speaker]}" for speaker in sorted(counts, key=natural_key)]
    cell_width = max(len(cell) for cell in cells) + 2
    per_line = max(1, WIDTH // cell_width)
    lines = ["speakers (utterances each):"]
    for start in range(0, len(cells), per_line):
        lines.append("  " + "".join(f"{c:<{cell_width}}" for c in cells[start : start + per_line]))
    return "\n".join(line.rstrip() for line in lines)


def _print_problems(problems: list[str], limit: int) -> None:
    if not problems:
        return
    shown = problems if limit <= 0 else problems[:limit]
    print(f"warning: {len(problems)} problem(s) while scanning:", file=sys.stderr)
    for problem in shown:
        print(f"  - {problem}", file=sys.stderr)
    if len(shown) < len(problems):
        rest = len(problems) - len(shown)
        print(f"  ... and {rest} more (--max-problems 0 shows all)", file=sys.stderr)


def run_list(args: argparse.Namespace) -> int:
    from sertk.corpora import CORPORA, PRESETS, LabelMap

    print("corpora:")
    for name, adapter in CORPORA.items():
        options = f" [options: {', '.join(adapter.options)}]" if adapter.options else ""
        print(f"  {name:<9} {adapter.summary}{options}")
        print(f"  {'':<9} layout: {adapter.layout}")
        print(f"  {'':<9} default labels: {adapter.preset or 'the labels found'}")
    print("label presets (--labels):")
    for name, (_, _, summary) in PRESETS.items():
        print(f"  {name:<11} {LabelMap.preset(name).describe()}")
        print(f"  {'':<11} {summary}")
    return 0
