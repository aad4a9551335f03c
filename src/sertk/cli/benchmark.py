"""``sertk benchmark``: leave-one-corpus-out, and each corpus's own CV, from one recipe.

    sertk benchmark loco recipes/loco_default.yaml --corpora emodb,ravdess,ased,urdu,turev
    sertk benchmark within recipes/loco_default.yaml --corpora ased,urdu,turev
    sertk benchmark loco --resume runs/loco_default-loco-20261206-120000

The recipe is an experiment YAML whose ``data.corpora`` lists the corpora, plus an optional
``benchmark:`` section (protocols, inner CV groups, adaptation statistics; see
``sertk.experiment.loco.settings``). Prints one line per split, then per protocol the
restricted and open UA of every corpus and their mean, and the run folder.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "benchmark", help="leave-one-corpus-out (loco) or per-corpus CV (within) of a recipe"
    )
    modes = parser.add_subparsers(dest="benchmark_mode", metavar="MODE", required=True)
    for mode, text in (
        ("loco", "train on all corpora but one, test on that one; for each corpus"),
        ("within", "each corpus's own speaker-independent cross-validation"),
    ):
        sub = modes.add_parser(mode, help=text)
        sub.add_argument("recipe", nargs="?", metavar="RECIPE.yaml", help="benchmark recipe")
        sub.add_argument(
            "--corpora",
            metavar="A,B,...",
            help="names from the recipe's data.corpora (default all)",
        )
        sub.add_argument(
            "--set", action="append", default=[], metavar="KEY=VALUE",
            help="override a recipe value, e.g. benchmark.adapt.shrink=10 (repeatable)",
        )  # fmt: skip
        sub.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run")
        sub.add_argument("--output-dir", metavar="DIR", help="parent folder of new run folders")
        sub.add_argument("--cache", metavar="DIR", help="feature cache folder")
        sub.add_argument("--progress", action="store_true", help="progress bars for extraction")
        sub.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sertk.errors import ConfigError
    from sertk.experiment.loco import load_benchmark_config, run_benchmark

    if args.recipe is None and args.resume is None:
        raise ConfigError("give a RECIPE.yaml to start a benchmark, or --resume RUN_DIR")
    config = None
    if args.resume is None:
        overrides = list(args.set)
        if args.output_dir is not None:
            overrides.append(f"output_dir={args.output_dir}")
        config = load_benchmark_config(args.recipe, overrides)
    elif args.recipe is not None or args.set or args.corpora:
        raise ConfigError("--resume continues a run with its stored recipe and corpora; give "
                          "no RECIPE, --set or --corpora with it")  # fmt: skip
    corpora = [name.strip() for name in args.corpora.split(",")] if args.corpora else None
    folder = run_benchmark(
        config, mode=args.benchmark_mode, corpora=corpora, resume=args.resume is not None,
        run_dir=args.resume, cache_dir=args.cache, progress=args.progress,
        log=lambda line: print(line, flush=True),
    )  # fmt: skip
    print(summary_lines(folder / "summary.json"))
    print(f"run folder: {folder}")
    return 0


def summary_lines(path: Path) -> str:
    """Per protocol: restricted / open UA of each corpus and the mean, from ``summary.json``."""
    import json

    summary = json.loads(path.read_text(encoding="utf-8"))
    lines = []
    for protocol, result in summary["protocols"].items():
        lines.append(f"{protocol}: UA restricted / open (%)")
        for corpus, entry in result["per_corpus"].items():
            restricted, opened = entry["restricted"]["ua"], entry["open"]["ua"]
            lines.append(
                f"  {corpus:<10} {100 * restricted:5.1f} / {100 * opened:5.1f}  "
                f"({len(entry['shared'])} classes, n={entry['n']})"
            )
        mean = result["mean"]
        lines.append(
            f"  {'mean':<10} {100 * mean['restricted']['ua']:5.1f} / {100 * mean['open']['ua']:5.1f}"
        )
    return "\n".join(lines)
