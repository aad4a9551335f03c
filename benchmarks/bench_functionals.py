"""Per-clip CPU cost of utterance feature sets, interleaved in one run, one thread.

On ``--files`` EmoDB clips of at least ``--duration`` s (cut to exactly that), times each
extractor's call with ``time.process_time`` (user + system CPU of this process), clip by clip
with the order of the extractors rotated per clip, after a warm-up on the first clips:

- ``sertk emotion_functionals`` as it was at git commit ``--before`` (its modules loaded from
  git next to today's, ``benchmarks/code_at_ref.py``) and as it is now; the same for the
  ``functionals`` and ``lld`` extractors (the LLD path they share);
- openSMILE ``eGeMAPSv02`` and ``ComParE_2016`` functionals (``opensmile.Smile.process_signal``);
- librosa 13 MFCCs + deltas + delta-deltas.

Prints ms per clip, minor page faults per clip (memory churn) and ratios, and checks that before
and after give the same features (max relative difference). ``--profile`` adds a cProfile of
``emotion_functionals`` before and after. Run: ``python benchmarks/bench_functionals.py
[--files 50] [--duration 3] [--before a074939] [--profile]``. Needs ``../shared/corpora/emodb``
(or ``$SERTK_CORPORA``) and the opensmile and librosa packages; exits cleanly without the corpus.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")  # one thread, set before numpy is imported

import argparse  # noqa: E402
import cProfile  # noqa: E402
import pstats  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
from code_at_ref import modules_at  # noqa: E402

from sertk.features.emotion import EmotionFunctionals  # noqa: E402
from sertk.features.handcrafted import Functionals, Lld  # noqa: E402

SR = 16000


def emodb_clips(count: int, duration: float) -> list[np.ndarray] | None:
    """The first ``count`` EmoDB clips (by name) of at least ``duration`` s, cut to it."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
    folder = Path(os.environ.get("SERTK_CORPORA", default)) / "emodb" / "wav"
    length = round(duration * SR)
    clips = []
    for path in sorted(folder.glob("*.flac")):
        if sf.info(path).frames >= length:
            clips.append(sf.read(path, dtype="float32")[0][:length])
        if len(clips) == count:
            break
    return clips or None


def extractors(before: str) -> dict[str, Callable[[np.ndarray], np.ndarray]]:
    """Name -> ``f(signal) -> features`` for every row of the table."""
    import librosa
    import opensmile

    old = modules_at(before, ["sertk.features.handcrafted", "sertk.features.emotion"])
    old_emotion = old["sertk.features.emotion"].EmotionFunctionals()
    old_functionals = old["sertk.features.handcrafted"].Functionals()
    old_lld = old["sertk.features.handcrafted"].Lld()
    emotion, functionals, lld = EmotionFunctionals(), Functionals(), Lld()

    def smile(feature_set):
        extractor = opensmile.Smile(
            feature_set=feature_set, feature_level=opensmile.FeatureLevel.Functionals
        )
        return lambda signal: extractor.process_signal(signal, SR).to_numpy()

    def mfcc(signal):
        coefficients = librosa.feature.mfcc(y=signal, sr=SR, n_mfcc=13)
        deltas = [librosa.feature.delta(coefficients, order=k) for k in (1, 2)]
        return np.concatenate([coefficients, *deltas])

    return {
        f"sertk emotion_functionals @{before}": lambda s: old_emotion(s, SR),
        "sertk emotion_functionals (now)": lambda s: emotion(s, SR),
        f"sertk functionals @{before}": lambda s: old_functionals(s, SR),
        "sertk functionals (now)": lambda s: functionals(s, SR),
        f"sertk lld @{before}": lambda s: old_lld(s, SR),
        "sertk lld (now)": lambda s: lld(s, SR),
        "openSMILE eGeMAPSv02": smile(opensmile.FeatureSet.eGeMAPSv02),
        "openSMILE ComParE_2016": smile(opensmile.FeatureSet.ComParE_2016),
        "librosa MFCC 13 + deltas": mfcc,
    }


def measure(functions: dict, clips: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """CPU seconds and minor page faults per call, extractor order rotated clip by clip."""
    names = list(functions)
    totals = {name: {"cpu": 0.0, "faults": 0} for name in names}
    for index, clip in enumerate(clips):
        for name in names[index % len(names) :] + names[: index % len(names)]:
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.process_time()
            functions[name](clip)
            totals[name]["cpu"] += time.process_time() - start
            totals[name]["faults"] += resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    return {name: {k: v / len(clips) for k, v in row.items()} for name, row in totals.items()}


def max_relative_difference(before, after, clips: list[np.ndarray]) -> float:
    worst = 0.0
    for clip in clips:
        a, b = after(clip).astype(np.float64), before(clip).astype(np.float64)
        worst = max(worst, float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3))))
    return worst


def profile(function, clips: list[np.ndarray], title: str, top: int) -> None:
    profiler = cProfile.Profile()
    profiler.enable()
    for clip in clips:
        function(clip)
    profiler.disable()
    print(f"\n--- cProfile: {title}, {len(clips)} clips, top {top} by own time ---")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--before", default="a074939", help="git commit of the 'before' code")
    parser.add_argument("--profile", action="store_true", help="cProfile before and after")
    args = parser.parse_args()
    clips = emodb_clips(args.files, args.duration)
    if clips is None:
        print("EmoDB not found (../shared/corpora/emodb or $SERTK_CORPORA): skipped")
        return 0
    functions = extractors(args.before)
    for function in functions.values():  # warm-up: imports, numba JIT, caches
        for clip in clips[:3]:
            function(clip)
    load = os.getloadavg()[0]
    rows = measure(functions, clips)
    print(
        f"{len(clips)} EmoDB clips x {args.duration} s, CPU time per clip (user + sys), one "
        f"thread, interleaved; load average {load:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    after = rows["sertk emotion_functionals (now)"]["cpu"]
    print(f"{'extractor':<38} {'ms/clip':>8} {'faults/clip':>12} {'x sertk now':>12}")
    for name, row in rows.items():
        print(
            f"{name:<38} {row['cpu'] * 1e3:8.2f} {row['faults']:12.0f} {row['cpu'] / after:11.2f}x"
        )
    names = list(functions)
    for old, new in zip(names[0:6:2], names[1:6:2], strict=True):
        speedup = rows[old]["cpu"] / rows[new]["cpu"]
        same = max_relative_difference(functions[old], functions[new], clips)
        print(
            f"{new}: {speedup:.2f}x faster than @{args.before}; max relative difference {same:.2g}"
        )
    compare = rows["openSMILE ComParE_2016"]["cpu"] / after
    print(
        f"emotion_functionals now: {after * 1e3:.1f} ms per clip, {compare:.2f}x faster than ComParE"
    )
    if args.profile:
        profile(functions[names[0]], clips, names[0], 20)
        profile(functions[names[1]], clips, names[1], 20)
    return 0


if __name__ == "__main__":
    sys.exit(main())
