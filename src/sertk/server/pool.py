"""The inference pool: worker processes fed by bounded queues, in two lanes.

- The **fast lane** (``workers`` processes, default one per core) answers short recordings.
  Each worker has its own model; a thread of the server per worker takes jobs from the lane's
  queue and micro-batches them: every ``predict`` job already waiting, then those arriving within
  ``wait_ms``, up to ``max_batch``, go to the worker as one ``predict_batch`` call.
- The **long lane** (``long_workers`` processes, default 1, at a lower CPU priority) takes
  recordings longer than ``long_after`` seconds (by their header), whatever the endpoint, so a
  10-minute timeline never sits in front of a 2 s clip: short requests keep their own workers.

A lane's queue is bounded: past ``queue_depth`` waiting jobs :meth:`Lane.submit` raises
:class:`Overloaded` with a Retry-After estimate. A worker that dies costs only the jobs it was
running (:class:`~sertk.server.processes.WorkerCrashed`); its thread starts a new one.
``workers=0`` runs everything on one lane inside the server (no processes).
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, InvalidStateError
from typing import Any

from sertk.errors import ConfigError, SertkError
from sertk.server.processes import (
    LocalWorker,
    ProcessWorker,
    WorkerCrashed,
    WorkerFailed,
    WorkerStopped,
)

log = logging.getLogger("sertk.server")
GRACE_S = 5.0  # past its time budget, a job's worker gets this long before it is killed


class Overloaded(SertkError):
    """A lane's queue is full; retry after ``retry_after`` seconds."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclasses.dataclass(eq=False)
class Job:
    """One upload to analyse: ``kind`` ``predict`` or ``timeline`` (with its ``options``)."""

    kind: str
    data: bytes
    name: str
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    future: Future = dataclasses.field(default_factory=Future)
    abandoned: bool = False


@dataclasses.dataclass(eq=False)
class _Slot:
    worker: Any = None
    busy: bool = False
    error: str | None = None
    tried: threading.Event = dataclasses.field(default_factory=threading.Event)


def check_count(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


class Lane:
    """``size`` workers made by ``make_worker()``, one server thread each, fed by one bounded
    queue (see the module docstring). ``limits`` go into every job message (``max_duration``,
    ``batch_size``); ``time_limit`` is the time budget of a request, after which (plus a grace)
    its worker is killed; ``kill_abandoned`` kills a worker whose jobs nobody waits for."""

    def __init__(
        self,
        name: str,
        make_worker: Callable[[], Any],
        *,
        size: int,
        queue_depth: int,
        max_batch: int = 1,
        wait_ms: float = 0.0,
        limits: dict[str, Any],
        time_limit: float,
        kill_abandoned: bool = False,
    ) -> None:
        self.name, self.make_worker, self.limits = name, make_worker, limits
        self.size = check_count("workers", size, 1)
        self.queue_depth = check_count("queue depth", queue_depth, 1)
        self.max_batch = check_count("max_batch", max_batch, 1)
        if isinstance(wait_ms, bool) or not isinstance(wait_ms, int | float) or wait_ms < 0:
            raise ConfigError(f"batch wait must be a number of milliseconds >= 0, got {wait_ms!r}")
        self.wait, self.time_limit, self.kill_abandoned = wait_ms / 1000, time_limit, kill_abandoned
        self._queue: collections.deque[Job] = collections.deque()
        self._cond = threading.Condition()
        self._closed = threading.Event()
        self._slots = [_Slot() for _ in range(self.size)]
        self._threads: list[threading.Thread] = []
        counters = ("requests", "batches", "largest_batch", "timelines", "crashes", "stopped")
        self._counts = dict.fromkeys(counters, 0)
        self._job_seconds = 0.1  # running mean of a job's time, for Retry-After

    # --- the server's side ------------------------------------------------------------------

    def start(self, timeout: float = 300.0) -> None:
        """Start the workers; WorkerFailed when one cannot load its model."""
        for index, slot in enumerate(self._slots):
            thread = threading.Thread(target=self._serve, args=(slot,), daemon=True,
                                      name=f"sertk-{self.name}-{index}")  # fmt: skip
            thread.start()
            self._threads.append(thread)
        for slot in self._slots:
            slot.tried.wait(timeout)
            if slot.error is not None or slot.worker is None:
                self.close()
                raise WorkerFailed(slot.error or f"a {self.name} worker did not start")

    def submit(self, job: Job) -> Job:
        """Queue ``job``; Overloaded when ``queue_depth`` jobs already wait."""
        with self._cond:
            if self._closed.is_set():
                raise SertkError("the server is shutting down")
            if len(self._queue) >= self.queue_depth:
                wait = self._job_seconds * (len(self._queue) + 1) / self.size
                raise Overloaded(
                    f"the server is busy: {len(self._queue)} requests are already waiting; "
                    "retry shortly", retry_after=max(1, math.ceil(wait)),
                )  # fmt: skip
            self._queue.append(job)
            self._cond.notify_all()
        return job

    def abandon(self, job: Job) -> None:
        """Nobody waits for ``job`` any more: drop it from the queue, or, running, let it be
        stopped (``kill_abandoned``) or its result be dropped."""
        with self._cond:
            job.abandoned = True
            if job in self._queue:
                self._queue.remove(job)
        job.future.cancel()

    def health(self) -> dict[str, Any]:
        with self._cond:
            alive = sum(slot.worker is not None and slot.worker.alive for slot in self._slots)
            return {
                "workers": self.size, "alive": alive,
                "busy": sum(slot.busy for slot in self._slots),
                "waiting": len(self._queue), "queue_depth": self.queue_depth, **self._counts,
            }  # fmt: skip

    def pids(self) -> list[int | None]:
        return [None if slot.worker is None else slot.worker.pid for slot in self._slots]

    def close(self) -> None:
        """Stop taking jobs, fail the queued ones, stop the workers."""
        with self._cond:
            self._closed.set()
            left = list(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        for job in left:
            _settle(job, error=SertkError("the server is shutting down"))
        for slot in self._slots:
            if slot.worker is not None:
                slot.worker.stop()
        for thread in self._threads:
            thread.join(10)

    # --- the lane's threads -----------------------------------------------------------------

    def _serve(self, slot: _Slot) -> None:
        backoff = 1.0
        while not self._closed.is_set():
            if slot.worker is None or not slot.worker.alive:
                worker = self.make_worker()
                try:
                    worker.start()
                except WorkerFailed as error:
                    slot.error = str(error)
                    slot.tried.set()
                    log.error("%s lane: %s; retrying in %g s", self.name, error, backoff)
                    self._closed.wait(backoff)
                    backoff = min(2 * backoff, 30.0)
                    continue
                slot.worker, slot.error, backoff = worker, None, 1.0
                slot.tried.set()
            batch = self._take()
            if batch is None:
                return
            self._run(slot, batch)

    def _take(self) -> list[Job] | None:
        """The next job, plus (for ``predict``) the predictions waiting or arriving within the
        batch wait, up to ``max_batch``; None when the lane closes."""
        with self._cond:
            while True:
                while not self._queue:
                    if self._closed.is_set():
                        return None
                    self._cond.wait()
                first = self._queue.popleft()
                if first.future.set_running_or_notify_cancel():
                    break
            batch = [first]
            deadline = time.monotonic() + self.wait
            while first.kind == "predict" and len(batch) < self.max_batch:
                if self._queue and self._queue[0].kind == "predict":
                    job = self._queue.popleft()
                    if job.future.set_running_or_notify_cancel():
                        batch.append(job)
                    continue
                left = deadline - time.monotonic()
                if self._queue or left <= 0 or self._closed.is_set():
                    break
                self._cond.wait(left)
            return batch

    def _run(self, slot: _Slot, batch: list[Job]) -> None:
        header = {"kind": batch[0].kind, "names": [job.name for job in batch],
                  "options": batch[0].options, **self.limits}  # fmt: skip
        slot.busy, started = True, time.monotonic()
        try:
            results = slot.worker.run(
                header, [job.data for job in batch],
                abandoned=lambda: self.kill_abandoned and all(job.abandoned for job in batch),
                deadline=started + self.time_limit + GRACE_S,
            )  # fmt: skip
        except WorkerCrashed as error:
            self._count(**{"stopped" if isinstance(error, WorkerStopped) else "crashes": 1})
            log.warning("%s lane: worker %s: %s", self.name, slot.worker.pid, error)
            for job in batch:
                _settle(job, error=error)
            return
        finally:
            slot.busy = False
            for job in batch:
                job.data = b""  # the worker has the bytes (or they are of no use any more)
            self._job_seconds += 0.2 * (time.monotonic() - started - self._job_seconds)
        kind = "timelines" if batch[0].kind == "timeline" else "requests"
        self._count(**{kind: len(batch), "batches": 1}, largest_batch=len(batch))
        for job, result in zip(batch, results, strict=True):
            _settle(job, result=result)

    def _count(self, *, largest_batch: int = 0, **increments: int) -> None:
        with self._cond:
            for key, value in increments.items():
                self._counts[key] += value
            self._counts["largest_batch"] = max(self._counts["largest_batch"], largest_batch)


def _settle(job: Job, *, result: Any = None, error: BaseException | None = None) -> None:
    if job.abandoned:  # nobody will read it
        return
    with contextlib.suppress(InvalidStateError):  # cancelled meanwhile: nobody waits
        if error is not None:
            job.future.set_exception(error)
        else:
            job.future.set_result(result)


class WorkerPool:
    """The lanes of a server (see the module docstring); :meth:`lane_for` picks by duration."""

    def __init__(self, fast: Lane, long: Lane | None = None, *, long_after: float = 30.0) -> None:
        self.fast, self.long, self.long_after = fast, long or fast, long_after

    @classmethod
    def build(
        cls,
        recognizer: Any,
        *,
        workers: int | None = None,
        long_workers: int = 1,
        queue_depth: int = 64,
        max_batch: int = 16,
        wait_ms: float = 5.0,
        limits: dict[str, Any],
        time_limit: float,
        threads: int | None = None,
        long_after: float = 30.0,
    ) -> WorkerPool:
        """Lanes for ``recognizer``'s bundle: ``workers`` processes (None: one per core; 0: one
        in-process lane) and ``long_workers`` for long recordings."""
        cores = os.cpu_count() or 1
        workers = cores if workers is None else check_count("workers", workers, 0)
        common = {"limits": limits, "time_limit": time_limit}
        if workers == 0:
            local = LocalWorker(recognizer)
            lane = Lane("in-process", lambda: local, size=1, queue_depth=queue_depth,
                        max_batch=max_batch, wait_ms=wait_ms, **common)  # fmt: skip
            return cls(lane, long_after=long_after)
        threads = threads or max(1, cores // workers)
        source = {"bundle": recognizer.bundle.path, "device": recognizer.device,
                  "backend": recognizer.backend, "threads": threads}  # fmt: skip
        fast = Lane("fast", lambda: ProcessWorker(**source), size=workers, queue_depth=queue_depth,
                    max_batch=max_batch, wait_ms=wait_ms, **common)  # fmt: skip
        long = Lane("long", lambda: ProcessWorker(**source, nice=10),
                    size=check_count("long_workers", long_workers, 1),
                    queue_depth=max(1, queue_depth // 16), kill_abandoned=True, **common)  # fmt: skip
        return cls(fast, long, long_after=long_after)

    @property
    def lanes(self) -> list[Lane]:
        return [self.fast] if self.long is self.fast else [self.fast, self.long]

    @property
    def capacity(self) -> int:
        """Most requests that can be queued or running at once."""
        return sum(lane.queue_depth + lane.size * lane.max_batch for lane in self.lanes)

    def lane_for(self, seconds: float) -> Lane:
        return self.long if seconds > self.long_after else self.fast

    def start(self, timeout: float = 300.0) -> None:
        for lane in self.lanes:
            lane.start(timeout)

    def close(self) -> None:
        for lane in self.lanes:
            lane.close()

    def health(self) -> dict[str, dict[str, Any]]:
        return {lane.name: lane.health() for lane in self.lanes}
