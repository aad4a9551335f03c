"""``sertk extract``: fill the feature cache for every utterance of a manifest.

    sertk extract --manifest build/emodb.csv --features logmel --set n_mels=80 --duration 3
    sertk extract --manifest build/emodb.csv --features ssl --model models/hubert-base-ls960 \\
        --set layers=all --device cuda

Prints throughput (seconds of audio per second, files per second) and cache hits/misses. The
cache key includes the preprocessing (``--duration``, ``--crop``, ``--normalize``), so use the
same values as the training run that will read these features.
"""

from __future__ import annotations

import argparse
import time

from sertk.cli import options
from sertk.errors import ConfigError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("extract", help="extract features of a manifest into the cache")
    parser.add_argument("--manifest", required=True, help="manifest CSV (see `sertk corpus scan`)")
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

    jobs = options.check_jobs(args)
    overrides = parse_sets(args.set)
    for option in ("model", "device"):
        if getattr(args, option) is not None:
            overrides[option] = getattr(args, option)
    utterances = read_manifest(args.manifest)
    extractor = build_extractor(args.features, **overrides)
    rate = getattr(extractor, "sampling_rate", None) or 16000
    if args.crop == "random":
        raise ConfigError("--crop random is for training only; use start or center")
    preprocess = Preprocess(
        sampling_rate=rate, duration=args.duration, crop=args.crop, normalize=args.normalize
    )
    cache = FeatureCache(args.cache)
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
