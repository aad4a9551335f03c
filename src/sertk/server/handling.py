"""How a ``/v1`` request is handled, in plain functions the routes call (``app.py``).

:func:`analyse` is the whole path of an upload: admission, reading it within the limits,
choosing the lane by the duration its header announces, queueing the job, and waiting for the
worker's answer within the request's time budget while watching for the client to leave
(:func:`answer`). Its result is the JSON answer or an :class:`~sertk.server.uploads.ApiError`.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from sertk.errors import ConfigError, SertkError
from sertk.recognizer import Recognizer
from sertk.recognizer.timeline import DEFAULT_WINDOW, check_seconds
from sertk.server.pool import Job, Lane, Overloaded
from sertk.server.processes import WorkerCrashed
from sertk.server.uploads import ApiError, check_announced, read_upload
from sertk.smoothing import check_smooth, seconds_from_windows


def timeline_options(
    recognizer: Recognizer, window, hop, smooth: float, smoothing: str | None
) -> tuple[dict[str, Any], str | None]:
    """Checked ``window``/``hop``/``smooth`` for ``Recognizer.timeline`` (ConfigError if bad),
    and a deprecation warning when the old ``smoothing`` (windows) was given."""
    if window is None:
        window = recognizer.preprocess.duration or DEFAULT_WINDOW
    window, hop = check_seconds("window", window), check_seconds("hop", hop)
    if hop > window:
        raise ConfigError(f"hop ({hop:g} s) must not exceed window ({window:g} s)")
    smooth, warning = check_smooth(smooth), None
    if smoothing is not None:
        if smooth:
            raise ConfigError("give smooth (seconds) or the deprecated smoothing, not both")
        smooth, note = seconds_from_windows(smoothing, hop=hop)
        warning = f"smoothing= is deprecated; use smooth=SECONDS: {smoothing} {note}"
    return {"window": window, "hop": hop, "smooth": smooth}, warning


async def disconnected(request: Request) -> None:
    """Returns when the client closes its connection (the body has been read already)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def answer(request: Request, lane: Lane, job: Job, *, deadline: float) -> Any:
    """The worker's result for ``job``; 504 past ``deadline``, its work abandoned (stopped or
    its result dropped), as when the client leaves first."""
    result = asyncio.wrap_future(job.future)
    gone = asyncio.ensure_future(disconnected(request))
    try:
        done, _ = await asyncio.wait(
            {result, gone}, timeout=max(0.0, deadline - time.monotonic()),
            return_when=asyncio.FIRST_COMPLETED,
        )  # fmt: skip
    finally:
        gone.cancel()
    if result in done:
        try:
            return result.result()
        except WorkerCrashed as error:
            raise ApiError(500, "worker_crashed", str(error)) from None
        except SertkError as error:  # the server is shutting down
            raise ApiError(503, "unavailable", str(error), headers={"Retry-After": "5"}) from None
    lane.abandon(job)
    if gone in done:
        raise ClientDisconnect()
    raise ApiError(
        504, "timeout",
        f"the analysis did not finish within the server's time budget of "
        f"{request.app.state.limits.request_timeout_s:g} s per request; send a shorter "
        "recording, or retry when the server is less busy",
    )  # fmt: skip


async def analyse(request: Request, kind: str, options: dict[str, Any]) -> JSONResponse:
    """Read the upload of ``request`` and have a worker analyse it (``predict`` or
    ``timeline`` with ``options``); the result as JSON, or the ApiError that says why not."""
    document = await analyse_document(request, kind, options)
    return JSONResponse(document, headers=model_header(request.app.state))


async def analyse_document(request: Request, kind: str, options: dict[str, Any]) -> Any:
    """:func:`analyse`'s result document, before it becomes a response (``kind`` ``session``:
    a prediction in a speaker session, whose document also holds ``session_statistics``)."""
    state, started = request.app.state, time.monotonic()
    with state.admission.enter():
        upload = await read_upload(request, max_bytes=state.max_bytes)
        seconds = check_announced(upload, max_duration=state.limits.max_duration_s)
        lane = state.pool.lane_for(seconds)
        try:
            job = lane.submit(Job(kind, upload.data, upload.filename, options))
        except Overloaded as error:
            raise ApiError(503, "overloaded", str(error),
                           headers={"Retry-After": str(error.retry_after)}) from None  # fmt: skip
        del upload  # the job holds the bytes until a worker has them
        result = await answer(request, lane, job, deadline=started + state.limits.request_timeout_s)
    if "error" in result:
        error = result["error"]
        raise ApiError(error["status"], error["code"], error["message"])
    return result["ok"]


def model_header(state: Any) -> dict[str, str]:
    return {"X-Model-Sha256": state.content_hash} if state.content_hash else {}
