"""``sertk extract``: fill the feature cache for every utterance of a manifest.

    sertk extract --manifest build/emodb.csv --features logmel --set n_mels=80 --duration 3
    sertk extract build/emodb.csv --features ssl --model models/hubert-base-ls960 \\
        --set layers=all --device cuda
    sertk extract build/emodb.csv --features logmel --engine ray --workers 4   # Ray Data

Prints throughput (seconds of audio per second, files per second) and cache hits/misses. The
cache key includes the preprocessing (``--duration``, ``--crop``, ``--normalize``), so use the
same values as the training run that will read these features.

``--engine ray`` runs the extraction as a Ray Data pipeline (``sertk.scale.extract``) that
fills the same cache (on a multi-node cluster: a folder every node sees); files that cannot be
read are listed at the end (exit status 1) while the others are cached.
"""

from __future__ import annotations

import argparse
import time

from sertk.cli import options
from sertk.cli._engine import add_engine_options, check_engine_options
from sertk.errors import ConfigError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("extract", help="extract features of a manifest into the cache")
    parser.add_argument("manifest_path", nargs="?", metavar="MANIFEST",
                        help="manifest CSV (see `sertk corpus scan`); or give --manifest")  # fmt: skip
    parser.add_argument("--manifest", help="manifest CSV (the same as MANIFEST)")
    parser.add_argument("--features", required=True, metavar="NAME", help="logmel, mfcc, ssl, ...")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extractor option (YAML value, e.g. n_mels=80, layers=[0,6,12]); repeatable",
    )
    parser.add_argument("--model", help="ssl: model folder or hub id")
    parser.add_argument("--device", help="ssl: cpu or cuda[:N]")
    parser.add_argument(
        "--cache", metavar="DIR", help="cache folder ($SERTK_CACHE or ~/.cache/...)"
    )
    parser.add_argument(
        "--duration", type=float, metavar="SECONDS", help="crop/pad to this length (default: whole)"
    )
    parser.add_argument("--crop", default="center", help="crop policy: start or center")
    parser.add_argument("--normalize", default="none", help="none, peak or loudness")
    options.add_jobs(parser)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_engine_options(parser, workers_help="with --engine ray: extractor actors (default: "
                       "the cluster's CPUs less one, or its GPUs)")  # fmt: skip
    parser.set_defaults(run=run)


def parse_sets(items: list[str]) -> dict:
    """``["n_mels=80", "layers=[0,6]"]`` -> ``{"n_mels": 80, "layers": [0, 6]}`` (YAML values)."""
    import yaml

    options = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ConfigError(f"--set expects KEY=VALUE with a plain option name, got {item!r}")
        try:
            options[key.strip()] = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"--set {item!r}: the value is not valid YAML ({error})") from error
    return options


def run(args: argparse.Namespace) -> int:
    from sertk.audio import Preprocess
    from sertk.corpora import read_manifest
    from sertk.features import build_extractor
    from sertk.features.cache import FeatureCache, iter_features

    check_engine_options(args)
    jobs = options.check_jobs(args)
    overrides = parse_sets(args.set)
    for option in ("model", "device"):
        if getattr(args, option) is not None:
            overrides[option] = getattr(args, option)
    utterances = read_manifest(_manifest(args))
    extractor = build_extractor(args.features, **overrides)
    rate = getattr(extractor, "sampling_rate", None) or 16000
    if args.crop == "random":
        raise ConfigError("--crop random is for training only; use start or center")
    preprocess = Preprocess(
        sampling_rate=rate, duration=args.duration, crop=args.crop, normalize=args.normalize
    )
    cache = FeatureCache(args.cache)
    if args.engine == "ray":
        return extract_on_ray(args, utterances, extractor, preprocess, cache.root)
    start = time.perf_counter()
    seconds = 0.0
    for item in iter_features(
        utterances, extractor, preprocess=preprocess, cache=cache, progress=not args.no_progress,
        jobs=jobs,
    ):  # fmt: skip
        seconds += item.seconds
    elapsed = max(time.perf_counter() - start, 1e-9)
    count = len(utterances)
    print(
        f"{extractor.name}: {count} files, {seconds:.1f} s of audio in {elapsed:.2f} s: "
        f"{seconds / elapsed:.1f} s audio/s, {count / elapsed:.1f} files/s"
    )
    print(f"cache {cache.root}: {cache.hits} hits, {cache.misses} misses ({cache.corrupt} corrupt)")
    return 0


def _manifest(args: argparse.Namespace) -> str:
    from sertk.errors import ConfigError

    given = {name for name in (args.manifest_path, args.manifest) if name is not None}
    if len(given) != 1:
        problem = "two different manifests" if given else "no manifest"
        raise ConfigError(f"{problem}: give one manifest CSV, as MANIFEST or --manifest")
    return given.pop()


def extract_on_ray(args, utterances, extractor, preprocess, cache_root) -> int:
    """``--engine ray``: the Ray Data pipeline of :mod:`sertk.scale.extract` into the cache."""
    import sys

    from sertk.scale import extract_to_cache
    from sertk.scale.cluster import gpus_for

    runtime = {"device": args.device} if args.device is not None else {}
    gpus = gpus_for(args.device, args.gpus_per_worker)
    summary = extract_to_cache(
        utterances, extractor, preprocess=preprocess, cache_root=cache_root, runtime=runtime,
        workers=args.workers, address=args.address, gpus_per_worker=gpus,
        progress=not args.no_progress,
    )  # fmt: skip
    timing = summary.timing
    print(
        f"{extractor.name}: {summary.files} files, {summary.seconds_audio:.1f} s of audio in "
        f"{timing.seconds:.2f} s on {summary.workers} Ray workers: "
        f"{timing.rate(summary.seconds_audio):.1f} s audio/s, {timing.rate(summary.files):.1f} "
        f"files/s ({timing.steady_rate(summary.files):.1f} files/s after the first results at "
        f"{timing.startup:.1f} s)"
    )
    print(f"cache {cache_root}: {summary.cached} hits, {summary.computed} computed, "
          f"{len(summary.errors)} failed")  # fmt: skip
    for uid, message in summary.errors:
        print(f"sertk extract: {uid}: {message}", file=sys.stderr)
    return 1 if summary.errors else 0
