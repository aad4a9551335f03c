"""Benchmarks across corpora: leave-one-corpus-out and each corpus's own CV.

``run_benchmark(config, mode="loco")`` trains, for every corpus of ``data.corpora``, a
classical model on the other corpora (features through the cache, augmented copies, inner CV
over the training corpora) and scores the held-out corpus over the classes it shares with the
training set, restricted (argmax over its own classes) and open (any class the model has), under
the global and the speaker-adapted protocols; ``mode="within"`` runs each corpus's
speaker-independent CV with the same recipe. Recipes are experiment YAMLs with a ``benchmark:``
section (:mod:`.settings`); the speaker-adapted statistics are in :mod:`.adapt`.

>>> config = load_benchmark_config("recipes/loco_default.yaml")  # needs the corpora  # doctest: +SKIP
>>> run_benchmark(config, mode="loco", log=print)  # needs the corpora  # doctest: +SKIP
"""

from sertk.experiment.loco.run import MODES, make_splits, run_benchmark
from sertk.experiment.loco.settings import (
    AdaptSettings,
    BenchmarkConfig,
    BenchmarkSettings,
    dump_benchmark_config,
    load_benchmark_config,
)

__all__ = [
    "MODES",
    "AdaptSettings",
    "BenchmarkConfig",
    "BenchmarkSettings",
    "dump_benchmark_config",
    "load_benchmark_config",
    "make_splits",
    "run_benchmark",
]
