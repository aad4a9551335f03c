"""Micro-batching: one worker thread owns the model; concurrent requests share its batches.

Every model call of the server goes through one :class:`MicroBatcher`, so the single
``Recognizer`` is only ever used by one thread (no locks in the model code, no interleaved torch
calls). Two kinds of jobs go into its queue:

- :meth:`MicroBatcher.submit` -- one decoded signal to classify. The worker takes every signal
  already waiting, then waits up to ``wait_ms`` for more, up to ``max_batch``, and classifies
  them with one ``predict_batch`` call; each caller gets back its own item's result (the
  ``predict_batch`` contract: one result per item, in order).
- :meth:`MicroBatcher.call` -- any other model work (a timeline), run alone in queue order.

Under load, requests arriving while a batch runs pile up and form the next batch; with one
client, ``wait_ms`` bounds the extra latency a lone request pays.

>>> batcher = MicroBatcher(lambda signals: [s.sum() for s in signals], max_batch=8)
>>> float(batcher.submit(np.ones(3)).result())
3.0
>>> batcher.close()
"""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Any

import numpy as np

from sertk.errors import ConfigError, SertkError

log = logging.getLogger(__name__)


class Overloaded(SertkError):
    """The queue of waiting requests is full; the client should retry later."""


@dataclasses.dataclass
class _Job:
    future: Future
    signal: np.ndarray | None = None  # a batchable prediction ...
    work: Callable[[], Any] | None = None  # ... or a call that runs alone


_STOP = object()


class MicroBatcher:
    """A queue and one daemon worker thread calling ``predict_batch(signals) -> results``.

    ``predict_batch`` takes a list of signals and returns one result per signal, in order; a
    result that is an exception instance is raised to that item's caller only. ``max_batch``
    bounds a batch (1 disables batching), ``wait_ms`` is how long the worker waits for more
    signals once it has one, ``max_queue`` how many jobs may wait before :class:`Overloaded`.
    """

    def __init__(
        self,
        predict_batch: Callable[[list[np.ndarray]], Sequence[Any]],
        *,
        max_batch: int = 16,
        wait_ms: float = 5.0,
        max_queue: int = 1024,
    ) -> None:
        for name, value, low in (("max_batch", max_batch, 1), ("max_queue", max_queue, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
        if isinstance(wait_ms, bool) or not isinstance(wait_ms, int | float) or wait_ms < 0:
            raise ConfigError(f"batch wait must be a number of milliseconds >= 0, got {wait_ms!r}")
        self._predict_batch = predict_batch
        self.max_batch = max_batch
        self.wait = wait_ms / 1000.0
        self.max_queue = max_queue
        self._queue: queue.Queue = queue.Queue()
        self._stats_lock = threading.Lock()
        self._stats = {"requests": 0, "batches": 0, "largest_batch": 0, "calls": 0}
        self._thread = threading.Thread(target=self._run, name="sertk-inference", daemon=True)
        self._thread.start()

    # --- client side ----------------------------------------------------------------------

    def submit(self, signal: np.ndarray) -> Future:
        """Queue one signal; the future's result is its ``predict_batch`` result."""
        return self._put(_Job(Future(), signal=signal))

    def call(self, work: Callable[[], Any]) -> Future:
        """Queue ``work()`` to run alone on the worker thread; the future holds its return value."""
        return self._put(_Job(Future(), work=work))

    def _put(self, job: _Job) -> Future:
        if not self._thread.is_alive():
            raise SertkError("the inference worker has stopped; restart the server")
        if self._queue.qsize() >= self.max_queue:
            raise Overloaded(
                f"the server is busy: {self.max_queue} requests are already waiting; retry shortly"
            )
        self._queue.put(job)
        return job.future

    @property
    def alive(self) -> bool:
        """Whether the worker thread runs."""
        return self._thread.is_alive()

    @property
    def stats(self) -> dict[str, int]:
        """Counters: ``requests`` (signals classified), ``batches``, ``largest_batch``, ``calls``
        (alone jobs), ``waiting`` (jobs in the queue now)."""
        with self._stats_lock:
            return {**self._stats, "waiting": self._queue.qsize()}

    def close(self, timeout: float | None = 10.0) -> None:
        """Finish the jobs already queued, then stop the worker."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._thread.join(timeout)

    # --- worker side ----------------------------------------------------------------------

    def _run(self) -> None:
        pending = None
        while True:
            job = pending if pending is not None else self._queue.get()
            pending = None
            if job is _STOP:
                return
            if job.work is not None:
                self._run_alone(job)
                continue
            batch, pending = self._collect(job)
            self._run_batch(batch)

    def _collect(self, first: _Job) -> tuple[list[_Job], Any]:
        """``first`` plus the signals that arrive within the wait, and the next non-signal job."""
        batch = [first]
        deadline = time.monotonic() + self.wait
        while len(batch) < self.max_batch:
            timeout = deadline - time.monotonic()
            try:
                job = self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if job is _STOP or job.work is not None:
                return batch, job
            batch.append(job)
        return batch, None

    def _run_batch(self, batch: list[_Job]) -> None:
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not live:
            return
        try:
            results = list(self._predict_batch([job.signal for job in live]))
            if len(results) != len(live):
                raise RuntimeError(f"predict_batch returned {len(results)} results for {len(live)}")
        except Exception as error:  # handed to every caller of the batch
            log.exception("inference failed for a batch of %d", len(live))
            for job in live:
                job.future.set_exception(error)
            return
        with self._stats_lock:
            self._stats["requests"] += len(live)
            self._stats["batches"] += 1
            self._stats["largest_batch"] = max(self._stats["largest_batch"], len(live))
        for job, result in zip(live, results, strict=True):
            if isinstance(result, BaseException):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    def _run_alone(self, job: _Job) -> None:
        if not job.future.set_running_or_notify_cancel():
            return
        try:
            result = job.work()
        except Exception as error:  # handed to the caller
            job.future.set_exception(error)
            return
        with self._stats_lock:
            self._stats["calls"] += 1
        job.future.set_result(result)
