"""Feature-extraction throughput: workers vs one process, cold cache vs cached, on real EmoDB files.

**Workers.** ``emotion_functionals`` (the default model's features and preprocessing) of
``--parallel-files`` whole EmoDB files, no cache, through ``extract_utterances`` with one
process, two threads and two worker processes (``jobs=2``; threads are :mod:`sertk.parallel`'s
fallback where fork is missing), interleaved ``--rounds`` times with features checked equal;
every side runs one BLAS thread. Printed as speed-ups over one process with the load average
and the speed-up that two processes of pure arithmetic got meanwhile (``batch_figures.py``).

**Cache.** For ``LogMel`` and a full-size HuBERT-base (``HubertConfig()`` defaults, random
weights, saved with ``save_pretrained`` to a temporary folder and loaded through
``SslEncoder``; ``--no-hubert`` skips it), runs ``extract_utterances`` (default ``jobs``: worker
processes for log-mel, one process for HuBERT) over ``--files`` EmoDB files cropped to
``--duration`` seconds twice with one fresh cache: the first pass (cold: decode + preprocess +
extract + write) and the second (cached: decode + preprocess + hash + read). Throughput is
seconds of audio per second of wall time; model loading is timed separately and excluded.
Timings vary run to run on shared machines: compare the ratios printed by one run.

Run: ``python benchmarks/bench_features.py [--files 40] [--duration 3] [--device cpu] [--threads N]
[--parallel-files 120] [--rounds 5] [--no-hubert]``.
Needs ``../shared/corpora/emodb`` (or ``$SERTK_CORPORA``); exits cleanly without it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from batch_figures import cpu_ceiling, interleaved, load, ratio
from threadpoolctl import threadpool_limits

from sertk import parallel
from sertk.audio import Preprocess
from sertk.bundle import load_bundle
from sertk.corpora import Utterance
from sertk.features.cache import FeatureCache, extract_utterances
from sertk.features.spectral import LogMel


def emodb_utterances(count: int) -> list[Utterance] | None:
    """The first ``count`` EmoDB files (sorted by name), or None when the corpus is absent."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
    folder = Path(os.environ.get("SERTK_CORPORA", default)) / "emodb" / "wav"
    paths = sorted(folder.glob("*.flac"))[:count]
    if not paths:
        return None
    return [Utterance(p.stem, str(p), "neutral", p.stem[:2]) for p in paths]


def two_passes(name, extractor, utterances, preprocess, root: Path) -> dict:
    """Cold and cached wall times of ``extract_utterances`` with one fresh cache."""
    cache = FeatureCache(root / name)
    times = []
    for _ in range(2):
        start = time.perf_counter()
        extract_utterances(
            utterances, extractor, preprocess=preprocess, cache=cache, progress=False
        )
        times.append(time.perf_counter() - start)
    assert (cache.hits, cache.misses) == (len(utterances), len(utterances)), (
        cache.hits,
        cache.misses,
    )
    return {"name": name, "cold": times[0], "cached": times[1]}


def workers_vs_one(utterances: list[Utterance], rounds: int) -> dict:
    """The default model's features of ``utterances`` with 1 process, 2 threads, 2 processes."""
    preprocess, extractor = load_bundle("default").contract.feature_input()

    def extract(jobs: int, fork: bool) -> list:
        kept, parallel.FORK = parallel.FORK, fork
        try:
            return extract_utterances(
                utterances, extractor, preprocess=preprocess, progress=False, jobs=jobs
            )
        finally:
            parallel.FORK = kept

    sides = {
        "1 process": lambda: extract(1, True),
        "2 threads": lambda: extract(2, False),
        "2 processes": lambda: extract(2, True),
    }
    with threadpool_limits(limits=1, user_api="blas"):  # as in each worker process
        expected = sides["1 process"]()
        for name, side in sides.items():
            assert all(np.array_equal(a, b) for a, b in zip(expected, side(), strict=True)), name
        times = interleaved(sides, rounds)
    return {
        "files": len(utterances),
        "seconds": {name: statistics.median(values) for name, values in times.items()},
        "speedup": {name: ratio(times, "1 process", name) for name in sides},
        "cpu_ceiling": cpu_ceiling(),
        "load": load(),
    }


def report_workers(row: dict) -> None:
    print(f"emotion_functionals of {row['files']} whole EmoDB files (default model), no cache, "
          f"one BLAS thread each (load {row['load']:.1f}; 2 processes of pure arithmetic "
          f"{row['cpu_ceiling']:.2f}x):")  # fmt: skip
    for name, seconds in row["seconds"].items():
        print(f"  {name:<12} {seconds:6.2f} s  {row['speedup'][name]:.2f}x")


def full_size_hubert(folder: Path, device: str):
    """Save a random HuBERT-base and load it back through SslEncoder; returns (encoder, seconds)."""
    import torch
    from transformers import HubertConfig, HubertModel

    from sertk.features.ssl import SslEncoder

    torch.manual_seed(0)
    HubertModel(HubertConfig()).save_pretrained(folder)
    start = time.perf_counter()
    encoder = SslEncoder(str(folder), device=device)
    return encoder, time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--parallel-files", type=int, default=120)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of workers vs one")
    parser.add_argument("--no-hubert", action="store_true", help="skip the HuBERT-base encoder")
    args = parser.parse_args()
    utterances = emodb_utterances(max(args.files, args.parallel_files))
    if utterances is None:
        print("EmoDB not found (../shared/corpora/emodb or $SERTK_CORPORA): skipped")
        return 0
    report_workers(workers_vs_one(utterances[: args.parallel_files], args.rounds))
    utterances = utterances[: args.files]
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    preprocess = Preprocess(duration=args.duration, crop="start")
    audio = len(utterances) * args.duration
    print(f"{len(utterances)} EmoDB files x {args.duration} s = {audio:.0f} s of audio; ", end="")
    print(
        f"torch threads {torch.get_num_threads()}, device {args.device}, load {os.getloadavg()[0]:.1f}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        rows = [two_passes("logmel", LogMel(), utterances, preprocess, root)]
        if not args.no_hubert:
            encoder, load_s = full_size_hubert(root / "hubert-base", args.device)
            print(
                f"HuBERT-base ({sum(p.numel() for p in encoder.model.parameters()) / 1e6:.1f} M "
                f"params) loaded through SslEncoder in {load_s:.1f} s (incl. fingerprint)"
            )
            rows.append(two_passes("hubert-base", encoder, utterances, preprocess, root))
    print(
        f"{'extractor':<12} {'cold s/s':>10} {'cached s/s':>11} {'cold files/s':>13} "
        f"{'cached files/s':>15} {'cached/cold':>12}"
    )
    for row in rows:
        cold, cached = audio / row["cold"], audio / row["cached"]
        n = len(utterances)
        print(
            f"{row['name']:<12} {cold:>10.1f} {cached:>11.1f} {n / row['cold']:>13.1f} "
            f"{n / row['cached']:>15.1f} {cached / cold:>11.1f}x"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
