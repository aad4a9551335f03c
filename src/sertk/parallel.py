"""Batch work on every core: an ordered map of chunks of items over worker processes.

Feature extraction of a folder, a corpus or a batch is the same function applied to many items,
so every caller (the Recognizer's batches, the feature cache, ``sertk evaluate``, the training
runner's augmented copies and test-time views) cuts its items into chunks, writes one function
``chunk -> one result per item`` and runs it through :func:`map_chunks` (one call) or a
:class:`Workers` pool it keeps (the Recognizer, whose callers send a batch at a time). With
``jobs=1`` the function runs here, chunk after chunk: the serial path is the parallel path's own
function, so both give the same results in the same order, errors included.

**Processes, forked.** The hand-crafted extractors hold the GIL for much of their ~10 ms per
clip (hundreds of small numpy calls): on this project's 2-core machine two threads ran 1.28x
one and two processes 1.71x (60 EmoDB clips, ``emotion_functionals``, one run). Workers are
forked (Linux), so they start in milliseconds and inherit the function as it is (the bundle's
scorer, the extractor, the cache: nothing is pickled but the chunks and their results), where
spawned workers would import numpy, scipy and sertk again (0.5-1 s each) and need every
extractor to be picklable. Where fork is missing or unsafe (macOS, Windows) the workers are
threads (the extractors are thread-safe), and :func:`default_jobs` is then 1.

**Threads per worker.** Each worker ignores Ctrl-C (the parent stops the pool), limits BLAS and
OpenMP pools to ``usable_cores() // jobs`` threads (threadpoolctl) so ``jobs`` workers do not
oversubscribe the cores, and runs torch, if loaded, on one thread (GNU OpenMP is not fork-safe).
Extractors that run their own thread pool (torch and onnxruntime encoders set ``threaded =
True``), models on a GPU and calls from other threads than the main one (a server's or the live
engine's worker) default to one job: :func:`plan_jobs`.

>>> list(map_chunks(lambda chunk: [x * x for x in chunk], range(5), jobs=1, chunk_size=2))
[0, 1, 4, 9, 16]
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from sertk.errors import ConfigError

# forked workers are safe and fast here; elsewhere they are threads (see the module docstring)
FORK = sys.platform == "linux"
# automatic jobs give each worker at least this many items: a worker's start and end (~0.1 s on
# a loaded 2-core machine) would outweigh a smaller share of ~10 ms clips
MIN_ITEMS_PER_WORKER = 4
_function: Callable[[Any], Any] | None = None  # a forked worker's function (set at fork)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity mask, else ``os.cpu_count()``)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def default_jobs() -> int:
    """Workers for batch work when none are asked for: one per usable core where workers are
    processes, else 1."""
    return usable_cores() if FORK else 1


def check_jobs(jobs: Any, *, name: str = "jobs") -> int | None:
    """``jobs`` if it is None (automatic) or a positive integer, else ConfigError."""
    if jobs is None:
        return None
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ConfigError(f"{name} must be a positive number of workers, got {jobs!r}")
    return jobs


def plan_jobs(jobs: int | None, *, items: int, own_threads: bool = False) -> int:
    """Workers for ``items`` items: ``jobs`` if given, never more than the items. Automatic
    (None): :func:`default_jobs`, with ``MIN_ITEMS_PER_WORKER`` items each at least; 1 when the
    work runs its own threads (a torch or onnxruntime encoder, a GPU) or is called from a
    thread other than the main one (the REST server's worker, the live analysis, the GUI: they
    already share the cores with the threads beside them, and forking a busy multi-threaded
    process is what fork does worst)."""
    if check_jobs(jobs) is None:
        serial = own_threads or threading.current_thread() is not threading.main_thread()
        jobs = 1 if serial else min(default_jobs(), items // MIN_ITEMS_PER_WORKER)
    return max(1, min(jobs, items))


def chunked(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` in consecutive slices of at most ``size``."""
    return [items[start : start + size] for start in range(0, len(items), size)]


def chunk_length(items: int, jobs: int, *, limit: int) -> int:
    """Items per chunk: ``limit`` (e.g. a batch size) for one job; with several, small enough
    that each worker gets about four chunks (the last ones end close together), at most
    ``limit``."""
    if jobs <= 1:
        return max(1, limit)
    return max(1, min(limit, math.ceil(items / (4 * jobs))))


class Workers:
    """``jobs`` workers that each run ``function(chunk)``; :meth:`map` keeps the order.

    With ``jobs=1`` nothing is started and :meth:`map` calls ``function`` here. Workers start
    on the first :meth:`map` and stay for the next ones until :meth:`close` (or the end of the
    ``with`` block, or of the program). An exception raised by ``function`` is raised by
    :meth:`map` at its chunk's place, after the chunks before it were yielded.
    """

    def __init__(self, function: Callable[[Any], Any], *, jobs: int) -> None:
        self.function = function
        self.jobs = check_jobs(jobs) or 1
        self._executor: Any = None

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def map(self, chunks: Iterable[Any]) -> Iterator[Any]:
        """``function(chunk)`` for each chunk, in order."""
        if self.jobs == 1:
            yield from map(self.function, chunks)
            return
        if self._executor is None:
            self._executor = self._start()
        run = _call if FORK else self.function
        try:
            yield from self._executor.map(run, chunks)
        except BaseException:
            self.close()  # Ctrl-C or an error: drop the queued chunks, keep nothing running
            raise

    def close(self) -> None:
        """Stop the workers (queued chunks are dropped); :meth:`map` starts new ones."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True, cancel_futures=True)

    def _start(self) -> Any:
        if not FORK:
            from concurrent.futures import ThreadPoolExecutor

            return ThreadPoolExecutor(self.jobs, thread_name_prefix="sertk-worker")
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        threads = max(1, usable_cores() // self.jobs)
        return ProcessPoolExecutor(
            self.jobs,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_install,
            initargs=(self.function, threads),  # inherited at fork, never pickled
        )


def map_chunks(
    function: Callable[[Sequence[Any]], Sequence[Any]],
    items: Sequence[Any],
    *,
    jobs: int,
    chunk_size: int,
) -> Iterator[Any]:
    """``function`` over consecutive chunks of ``items`` (``chunk_size`` each) on ``jobs``
    workers; yields each item's result, in order (``function`` returns one per item)."""
    with Workers(function, jobs=jobs) as workers:
        for results in workers.map(chunked(items, chunk_size)):
            yield from results


def limit_blas(threads: int) -> None:
    """Size the BLAS pools of this process (numpy's and scipy's OpenBLAS, not torch's OpenMP) to
    ``threads`` from now on (threadpoolctl; nothing without it). For one item at a time next to
    other threads (the live analysis, a server's worker): the extractors' matrices are small,
    and a second BLAS thread only waits for a core that audio, UI or requests need (3 s clip,
    default model: 8.2 vs 8.6 ms with 1 or 2 BLAS threads on a quiet 2-core machine, 27 vs 78 ms
    under load 11)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return
    threadpool_limits(limits=threads, user_api="blas")


def _install(function: Callable[[Any], Any], threads: int) -> None:
    """A forked worker's start: keep ``function``, leave Ctrl-C to the parent, size the
    thread pools of BLAS/OpenMP (and torch) to this worker's share of the cores."""
    global _function
    _function = function
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn brings it; without it the pools keep their size
        pass
    else:
        threadpool_limits(limits=threads)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


def _call(chunk: Any) -> Any:
    return _function(chunk)  # type: ignore[misc]
