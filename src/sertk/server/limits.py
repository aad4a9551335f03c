"""Limits that keep one client from taking the server: admission, rate, and read timeouts.

- :class:`Admission`: at most ``capacity`` requests in the server at once (reading, queued or
  running); the next one gets 503 with Retry-After before its body is read.
- :class:`RateLimiter`: a token bucket per client, ``N/s``, ``N/min`` or ``N/h``; 429.
- :class:`BodyTimeout` (ASGI middleware): a request body that stops arriving for ``seconds``
  gets 408 and its connection closed.
- :func:`header_timeout_protocol`: uvicorn's h11 protocol that closes a connection whose request
  headers are not complete ``seconds`` after it opened (or after its data started arriving on a
  kept-alive connection); uvicorn has no such timeout of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import re
import time
from collections.abc import Iterator
from typing import Any

from sertk.errors import ConfigError
from sertk.server.uploads import ApiError

log = logging.getLogger("sertk.server")
PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0,
           "h": 3600.0, "hour": 3600.0}  # fmt: skip
MAX_CLIENTS = 10_000  # buckets kept before idle (full) ones are dropped


class Admission:
    """Counts requests inside the server (used on the event loop's thread only)."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.inside = capacity, 0

    @contextlib.contextmanager
    def enter(self) -> Iterator[None]:
        if self.inside >= self.capacity:
            raise ApiError(
                503, "overloaded",
                f"the server is busy: {self.inside} requests are being handled; retry shortly",
                headers={"Retry-After": "1"},
            )  # fmt: skip
        self.inside += 1
        try:
            yield
        finally:
            self.inside -= 1


class RateLimiter:
    """``count`` requests per ``period`` seconds per client, in bursts of up to ``count``.

    >>> limiter = RateLimiter.parse("2/s")
    >>> [limiter.wait_for("10.0.0.1", now=0.0) for _ in range(3)]
    [0.0, 0.0, 0.5]
    """

    def __init__(self, count: float, period: float) -> None:
        self.count, self.period, self.rate = count, period, count / period
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, time)

    @classmethod
    def parse(cls, text: str) -> RateLimiter:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*/\s*([a-z]+)\s*", str(text).lower())
        if not match or match[2] not in PERIODS or float(match[1]) <= 0:
            raise ConfigError(
                f"a rate limit is N/s, N/min or N/h with N > 0 (e.g. 10/s, 600/min), got {text!r}"
            )
        return cls(float(match[1]), PERIODS[match[2]])

    def __str__(self) -> str:
        unit = {1.0: "s", 60.0: "min", 3600.0: "h"}[self.period]
        return f"{self.count:g}/{unit}"

    def wait_for(self, client: str, *, now: float | None = None) -> float:
        """0.0 and one request counted, or the seconds until ``client`` may send again."""
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.get(client, (self.count, now))
        tokens = min(self.count, tokens + (now - then) * self.rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate
        if len(self._buckets) >= MAX_CLIENTS:
            self._forget_idle(now)
        self._buckets[client] = (tokens - 1, now)
        return 0.0

    def _forget_idle(self, now: float) -> None:
        for client, (tokens, then) in list(self._buckets.items()):
            if tokens + (now - then) * self.rate >= self.count:
                del self._buckets[client]

    def check(self, client: str) -> None:
        """ApiError 429 with Retry-After when ``client`` is over the limit."""
        wait = self.wait_for(client)
        if wait:
            raise ApiError(
                429, "rate_limited",
                f"too many requests from {client}: the limit is {self}; retry in {wait:.1f} s",
                headers={"Retry-After": str(math.ceil(wait))},
            )  # fmt: skip


class BodyTimeout:
    """ASGI middleware: 408 (and the connection closed) when no body data arrives for
    ``seconds``; once the body is complete, ``receive`` is passed through untimed."""

    def __init__(self, app: Any, *, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        complete = False

        async def timed_receive() -> dict[str, Any]:
            nonlocal complete
            if complete:
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.seconds)
            except TimeoutError:
                client = (scope.get("client") or ("?",))[0]
                log.warning("closed a slow upload from %s to %s: no data for %g s", client,
                            scope["path"], self.seconds)  # fmt: skip
                raise ApiError(
                    408, "body_timeout",
                    f"the request body stopped arriving: nothing for {self.seconds:g} s",
                    headers={"Connection": "close"},
                ) from None  # fmt: skip
            complete = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        await self.app(scope, timed_receive, send)


def _timeout_response(seconds: float) -> bytes:
    body = json.dumps({"error": {"code": "header_timeout", "message":
                      f"the request headers did not arrive within {seconds:g} s"}}).encode()  # fmt: skip
    head = (
        "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


def header_timeout_protocol(seconds: float) -> type:
    """A uvicorn h11 protocol class (``uvicorn.Config(http=...)``) with a header timeout."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderTimeoutProtocol(H11Protocol):
        _timer: asyncio.TimerHandle | None = None

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._timer is None and not self._in_request():
                self._arm()  # a new request starts arriving on a kept-alive connection
            super().data_received(data)

        def handle_events(self) -> None:
            super().handle_events()
            if self._in_request():
                self._disarm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _in_request(self) -> bool:
            return self.cycle is not None and not self.cycle.response_complete

        def _arm(self) -> None:
            self._disarm()
            self._timer = self.loop.call_later(seconds, self._too_slow)

        def _disarm(self) -> None:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None

        def _too_slow(self) -> None:
            self._timer = None
            if self.transport.is_closing() or self._in_request():
                return
            client = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
            log.warning("closed the connection of %s: its request headers did not arrive "
                        "within %g s", client, seconds)  # fmt: skip
            self.transport.write(_timeout_response(seconds))
            self.transport.close()

    return HeaderTimeoutProtocol
