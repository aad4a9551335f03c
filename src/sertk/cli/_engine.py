"""``--engine``/``--address``/``--workers`` options shared by extract, predict and train.

``--engine local`` (the default) runs in this process as before; ``--engine ray`` hands the work
to :mod:`sertk.scale` (Ray Data / Ray Train), on a private local cluster or the one at
``--address``.
"""

from __future__ import annotations

import argparse
import contextlib
from collections.abc import Iterator

ENGINES = ("local", "ray")


def add_engine_options(
    parser: argparse.ArgumentParser, *, workers_help: str, gpus: bool = True
) -> None:
    group = parser.add_argument_group("scale-out (optional extra: pip install 'sertk[ray]')")
    group.add_argument(
        "--engine", choices=ENGINES, default="local",
        help="local: this process (default); ray: a Ray cluster (local, or --address)",
    )  # fmt: skip
    group.add_argument(
        "--address", metavar="auto|HOST:PORT",
        help="with --engine ray: join a running cluster (`ray start --head` prints HOST:PORT; "
        "auto: the one started on this machine); default: a private local cluster",
    )  # fmt: skip
    group.add_argument("--workers", type=int, metavar="N", help=workers_help)
    if not gpus:  # training: one GPU per process, nothing to choose
        return
    group.add_argument(
        "--gpus-per-worker", type=float, metavar="G",
        help="with --engine ray and --device cuda: GPUs per worker (default 1; 0.5 puts two "
        "workers on a GPU)",
    )  # fmt: skip


def check_engine_options(args: argparse.Namespace) -> None:
    """ConfigError for ray-only options given without ``--engine ray``, or a bad count."""
    from sertk.errors import ConfigError

    if args.engine != "ray":
        given = [f"--{name.replace('_', '-')}" for name in ("address", "workers",
                 "gpus_per_worker") if getattr(args, name, None) is not None]  # fmt: skip
        if given:
            raise ConfigError(f"{', '.join(given)} go with --engine ray")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers must be a positive integer, got {args.workers}")


def predict_on_ray(args: argparse.Namespace) -> int:
    """``sertk predict ... --engine ray``: every file into ``--output`` (see sertk.scale.predict)."""
    import sys

    from sertk.errors import ConfigError
    from sertk.scale import predict_files

    if not args.output:
        raise ConfigError(
            "--engine ray writes one row per file to a file: give --output preds.parquet "
            "(or .csv, .jsonl)"
        )
    refused = [flag for flag, given in (("--timeline", args.timeline), ("--plot", args.plot),
               ("--speaker", args.speaker), ("--adapt", args.adapt),
               ("--format", args.format != "table")) if given]  # fmt: skip
    if refused:
        raise ConfigError(
            f"{', '.join(refused)} do not apply to --engine ray: it predicts one label per file "
            "into --output, whose extension (.parquet, .csv, .jsonl) picks the format"
        )
    files, problems = input_files(args.inputs, recursive=args.recursive)
    for problem in problems:
        print(f"sertk predict: {problem}", file=sys.stderr)
    summary = predict_files(
        files, output=args.output, model=args.model, workers=args.workers,
        address=args.address, device=args.device, gpus_per_worker=args.gpus_per_worker,
        backend=args.backend, batch_size=args.batch_size, progress=not args.no_progress,
        log=print,
    )  # fmt: skip
    if summary.errors:
        print(f"sertk predict: {summary.errors} files failed; their messages are in the "
              f"error column of {summary.output}", file=sys.stderr)  # fmt: skip
    return 1 if summary.errors or problems else 0


def input_files(inputs: list[str], *, recursive: bool) -> tuple[list, list[str]]:
    """Audio files of ``inputs``: folders expanded as local predict does, and a ``.csv`` input
    read as a manifest (its ``path`` column); plus messages for inputs that gave none."""
    from pathlib import Path

    from sertk.cli.predict import expand_inputs
    from sertk.corpora import read_manifest
    from sertk.errors import SertkError

    files: list = []
    others = []
    for name in inputs:
        if Path(name).suffix.lower() == ".csv" and Path(name).is_file():
            files += [Path(u.path) for u in read_manifest(name)]
        else:
            others.append(name)
    found, problems = expand_inputs(others, recursive=recursive) if others else ([], [])
    files += found
    if not files:
        raise SertkError("no audio files to predict; give files, folders or a manifest CSV")
    return files, problems


def add_train_options(parser: argparse.ArgumentParser) -> None:
    """``sertk train``'s ``--ddp N`` plus the engine options."""
    parser.add_argument(
        "--ddp", type=int, metavar="N",
        help="train the neural models data-parallel on N processes (torch DDP: gloo on CPU, "
        "NCCL on GPU); with --engine ray they are Ray Train workers on the cluster",
    )  # fmt: skip
    add_engine_options(parser, workers_help="with --engine ray: the same as --ddp N", gpus=False)


@contextlib.contextmanager
def parallel_training(args: argparse.Namespace, config) -> Iterator[None]:
    """The ``--ddp``/``--engine ray`` context ``run_experiment`` runs in (nothing without them)."""
    from sertk.errors import ConfigError
    from sertk.experiment import model_kind

    check_engine_options(args)
    counts = {n for n in (args.ddp, args.workers) if n is not None}
    if len(counts) > 1:
        raise ConfigError(f"--ddp {args.ddp} and --workers {args.workers} disagree; give one")
    world = counts.pop() if counts else None
    if world is None and args.engine != "ray":
        yield
        return
    if world is None:
        raise ConfigError("--engine ray trains on N Ray Train workers: give --ddp N")
    if world < 1:
        raise ConfigError(f"--ddp must be a positive integer, got {world}")
    if model_kind(config.model.name) != "torch":
        raise ConfigError(
            f"model {config.model.name!r} is classical: it is fitted in one process (scikit-learn, "
            "seconds even on large corpora), so there is nothing to train data-parallel; drop "
            "--ddp/--engine ray (they apply to neural models: " + _neural_models() + ")"
        )
    if args.engine == "ray":
        from sertk.scale.train import ray_training

        with ray_training(world, address=args.address, device=config.train.device):
            yield
        return
    from sertk.training import data_parallel

    with data_parallel(world):
        yield


def _neural_models() -> str:
    from sertk.models import MODELS

    return ", ".join(sorted(MODELS))
