"""Measurements shared by ``bench_predict.py`` and ``bench_features.py``: real EmoDB files,
calls timed side by side, cold starts in pairs, and what the machine's cores give right now.

The machine is shared, so every figure is a ratio of timings taken in turn within one run
(median of the per-round ratios), printed with the load average it ran under and with
:func:`cpu_ceiling`: the speed-up two processes of pure-Python arithmetic get at that moment
(2.0 on an idle 2-core machine; less when other work takes a core).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any


def emodb_paths(count: int) -> list[Path] | None:
    """The first ``count`` EmoDB files (by name), or None when the corpus is absent."""
    default = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
    folder = Path(os.environ.get("SERTK_CORPORA", default)) / "emodb" / "wav"
    paths = sorted(folder.glob("*.flac"))[:count]
    return paths or None


def interleaved(functions: dict[str, Callable[[], Any]], rounds: int) -> dict[str, list[float]]:
    """Wall seconds of each function per round, called in turn (after one warm-up call each)."""
    for function in functions.values():
        function()
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append(time.perf_counter() - start)
    return times


def ratio(times: dict[str, list[float]], slow: str, fast: str) -> float:
    """Median over rounds of ``times[slow] / times[fast]`` (how many times faster ``fast`` is)."""
    return statistics.median(a / b for a, b in zip(times[slow], times[fast], strict=True))


def _spin(count: int) -> int:
    total = 0
    for i in range(count):
        total += i
    return total


def cpu_ceiling(jobs: int = 2, rounds: int = 3, count: int = 3_000_000) -> float:
    """``jobs`` busy loops one after the other over the same loops in ``jobs`` processes at once
    (median of ``rounds``): the most any parallel work can gain on this machine now."""
    with ProcessPoolExecutor(jobs) as pool:
        list(pool.map(_spin, [1000] * jobs))  # workers started
        times = interleaved(
            {
                "serial": lambda: [_spin(count) for _ in range(jobs)],
                "parallel": lambda: list(pool.map(_spin, [count] * jobs)),
            },
            rounds,
        )
    return ratio(times, "serial", "parallel")


def cold_starts(commands: dict[str, list[str]], runs: int, *, env: dict) -> dict[str, Any]:
    """Wall time of each command (a fresh interpreter) run in turn ``runs`` times; per command
    the median seconds and the median of its per-round ratio to the ``baseline`` command."""
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            times[name].append(time.perf_counter() - start)
    return {
        name: {"seconds": statistics.median(values), "ratio": ratio(times, name, "baseline")}
        for name, values in times.items()
    }


def load() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]
