"""Speaker sessions of the REST API: test-time adaptation across requests, in bounded memory.

A client that sends several clips of one speaker names a session, with the header
``X-Sertk-Session: <id>`` or the query parameter ``?session=<id>`` (1-128 characters: letters,
digits, ``. _ : -``). The server keeps that session's speaker statistics (sums per feature,
:class:`~sertk.features.normalization.FeatureStatistics`: the same size after one clip or a
thousand) and each request of the session is scored with them plus its own speech, so an
adaptive bundle answers with its global model until the session holds enough speech, then
with the adapted one (the response's ``adaptation`` says which). Memory is bounded:

- :class:`SessionStore` lives in the server's main process and holds at most ``max_sessions``
  sessions (the least recently used one is dropped first) and drops a session idle for
  ``idle_seconds``;
- statistics travel with the request: the handler takes the session's statistics from the
  store, the scorer call (:func:`score_in_session`, wherever it runs: the inference thread or
  a worker process) returns the prediction and *this request's own* statistics, and the
  handler merges those into the store. Two requests of one session in flight at once both
  count (merging is an addition), whichever finishes first.

``GET /v1/sessions/{id}`` shows a session, ``DELETE /v1/sessions/{id}`` forgets it.
"""

from __future__ import annotations

import collections
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from fastapi import FastAPI, Request

from sertk.inference import SpeakerStatistics, merge_statistics, statistics_seconds
from sertk.server.uploads import ApiError

HEADER = "X-Sertk-Session"
SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
MAX_SESSIONS = 1000  # about 45 KB each for the default model's 2798 features: ~45 MB at most
IDLE_SECONDS = 1800.0


class _Entry:
    __slots__ = ("statistics", "requests", "used")

    def __init__(self, now: float) -> None:
        self.statistics: SpeakerStatistics | None = None
        self.requests, self.used = 0, now


class SessionStore:
    """Sessions' statistics, least recently used first out (see the module docstring).
    Thread-safe; ``clock`` (seconds, monotonic) is replaceable for tests."""

    def __init__(
        self, *, max_sessions: int = MAX_SESSIONS, idle_seconds: float = IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        if isinstance(max_sessions, bool) or not isinstance(max_sessions, int) or max_sessions < 1:
            raise ValueError(f"max_sessions must be a positive integer, got {max_sessions!r}")
        if not idle_seconds > 0:
            raise ValueError(f"idle_seconds must be > 0, got {idle_seconds!r}")
        self.max_sessions, self.idle_seconds, self.clock = max_sessions, idle_seconds, clock
        self._entries: collections.OrderedDict[str, _Entry] = collections.OrderedDict()
        self._lock = threading.Lock()
        self.counts = {"evicted": 0, "expired": 0}

    def __len__(self) -> int:
        with self._lock:
            self._expire(self.clock())
            return len(self._entries)

    def statistics(self, session: str) -> SpeakerStatistics | None:
        """The session's statistics so far (None: new or expired); marks it used."""
        with self._lock:
            entry = self._lookup(session)
            if entry is None:
                return None
            entry.used = self.clock()
            self._entries.move_to_end(session)
            return entry.statistics

    def add(self, session: str, statistics: SpeakerStatistics | None) -> None:
        """Merge one request's own ``statistics`` (None: it had no speech) into the session,
        creating it (and dropping the least recently used one when full)."""
        with self._lock:
            now = self.clock()
            self._expire(now)
            entry = self._entries.get(session)
            if entry is None:
                while len(self._entries) >= self.max_sessions:
                    self._entries.popitem(last=False)
                    self.counts["evicted"] += 1
                entry = self._entries[session] = _Entry(now)
            if statistics is not None:
                entry.statistics = statistics if entry.statistics is None else merge_statistics(
                    entry.statistics, statistics)  # fmt: skip
            entry.requests += 1
            entry.used = now
            self._entries.move_to_end(session)

    def describe(self, session: str) -> dict[str, Any] | None:
        """``{"session", "requests", "seconds", "idle_seconds", "bytes"}`` (None: unknown)."""
        with self._lock:
            entry, now = self._lookup(session), self.clock()
            if entry is None:
                return None
            arrays = [] if entry.statistics is None else [
                a for s in entry.statistics.values() for a in (s.total, s.total_sq)]  # fmt: skip
            return {"session": session, "requests": entry.requests,
                    "seconds": statistics_seconds(entry.statistics),
                    "idle_seconds": round(now - entry.used, 3),
                    "bytes": int(sum(np.asarray(a).nbytes for a in arrays))}  # fmt: skip

    def drop(self, session: str) -> bool:
        with self._lock:
            return self._entries.pop(session, None) is not None

    def _lookup(self, session: str) -> _Entry | None:
        """The session's entry after dropping expired ones (the caller holds the lock)."""
        self._expire(self.clock())
        return self._entries.get(session)

    def _expire(self, now: float) -> None:
        while self._entries:
            oldest, entry = next(iter(self._entries.items()))
            if now - entry.used <= self.idle_seconds:
                break
            del self._entries[oldest]
            self.counts["expired"] += 1


def session_of(request: Request) -> str | None:
    """The session id of a request (header or ``?session=``), checked; None when it has none."""
    value = request.headers.get(HEADER) or request.query_params.get("session")
    if value is None:
        return None
    if not SESSION_ID.fullmatch(value):
        raise ApiError(422, "bad_parameter", f"{HEADER} (or ?session=) must be 1-128 letters, "
                       f"digits or . _ : -, got {value[:40]!r}")  # fmt: skip
    return value


def score_in_session(
    recognizer: Any, signal: np.ndarray, sampling_rate: int, session: str,
    prior: SpeakerStatistics | None,
) -> tuple[Any, SpeakerStatistics | None]:  # fmt: skip
    """The prediction of ``signal`` with the session's ``prior`` statistics plus its own
    speech, and its own statistics (None without speech) for the store: what the scorer side
    of a request runs (it needs nothing from the store)."""
    predictions, summaries = recognizer.predict_adapted(
        [signal], sampling_rate=sampling_rate, speakers=[session],
        statistics=None if prior is None else {session: prior},
    )  # fmt: skip
    return predictions[0], summaries[session].statistics


def add_session_routes(app: FastAPI, store: SessionStore) -> None:
    """``GET`` and ``DELETE /v1/sessions/{session}``."""

    @app.get("/v1/sessions/{session}", summary="A speaker session's state")
    async def show(session: str) -> dict[str, Any]:
        found = store.describe(session)
        if found is None:
            raise ApiError(404, "no_session", f"no session {session!r} (never used, or expired "
                           f"after {store.idle_seconds:g} s idle)")  # fmt: skip
        return found

    @app.delete("/v1/sessions/{session}", summary="Forget a speaker session")
    async def forget(session: str) -> dict[str, Any]:
        return {"session": session, "dropped": store.drop(session)}
