"""``sertk train``: cross-validate a recipe and write a run folder.

    sertk train recipes/emodb_logmel.yaml --set train.epochs=5
    sertk train --resume runs/emodb_logmel-20261121-101500      # continue an interrupted run
    sertk train recipes/emodb_logmel.yaml --ddp 2                # data-parallel, 2 processes
    sertk train recipes/iemocap_hubert.yaml --engine ray --ddp 8 --address auto   # Ray Train

Relative paths in the recipe resolve against the current directory. Prints one line per fold,
then UA/WA/macro-F1 as mean ± std over folds and pooled, and the run folder.

``--ddp N`` trains each neural model on N processes with torch DistributedDataParallel (one
machine, torch.multiprocessing); ``--engine ray --ddp N`` places them as Ray Train workers on a
cluster. The run folder and bundles are the same as without (see sertk.training.distributed).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from sertk.cli import options
from sertk.cli._engine import add_train_options, parallel_training
from sertk.errors import ConfigError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="cross-validate a recipe (speaker-independent folds) into a run folder"
    )
    parser.add_argument(
        "recipe", nargs="?", metavar="RECIPE.yaml", help="experiment config (see recipes/)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value, e.g. train.lr=1e-4 (repeatable)",
    )
    parser.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue an interrupted run; without RECIPE its stored config.yaml is used",
    )
    parser.add_argument("--output-dir", metavar="DIR", help="parent folder of new run folders")
    parser.add_argument(
        "--cache", metavar="DIR", help="feature cache folder ($SERTK_CACHE or ~/.cache/...)"
    )
    options.add_jobs(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_train_options(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from sertk.config import load_config
    from sertk.experiment import load_summary, run_experiment

    jobs = options.check_jobs(args)
    overrides = list(args.set)
    if args.output_dir is not None:
        overrides.append(f"output_dir={args.output_dir}")
    if args.recipe is None and args.resume is None:
        raise ConfigError("give a RECIPE.yaml to start a run, or --resume RUN_DIR to continue one")
    source = args.recipe if args.recipe is not None else Path(args.resume) / "config.yaml"
    config = load_config(source, overrides)
    with parallel_training(args, config):
        run_dir = run_experiment(
            config,
            resume=args.resume is not None,
            run_dir=args.resume,
            cache_dir=args.cache,
            progress=not args.no_progress,
            log=lambda line: print(line, flush=True),
            jobs=jobs,
        )
    print(summary_lines(load_summary(run_dir)))
    print(f"run folder: {run_dir}")
    return 0


def summary_lines(summary: dict) -> str:
    """Mean ± std and pooled UA/WA/macro-F1 of a ``summary.json``, with its protocol."""
    mean, std, pooled = summary["mean"], summary["std"], summary["pooled"]
    parts = [
        f"{name} {mean[key]:.4f} ± {std[key]:.4f} (pooled {pooled[key]:.4f})"
        for key, name in (("ua", "UA"), ("wa", "WA"), ("macro_f1", "macro-F1"))
    ]
    head = f"summary ({summary['protocol']}, {summary['folds']} folds):"
    lines = [head, *(f"  {part}" for part in parts)]
    final = summary.get("final_model")
    if final:
        lines.append(f"  final model: {final.get('description') or final['bundle']}")
    return "\n".join(lines)
