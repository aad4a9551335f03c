"""``create_app``: the REST API and the web page over one :class:`~sertk.recognizer.Recognizer`.

Endpoints (JSON; the schema is at ``/openapi.json``, browsable at ``/docs``):

- ``POST /v1/predict``: one upload -> its :class:`~sertk.recognizer.Prediction`;
- ``POST /v1/timeline?window=&hop=&smooth=``: one upload -> its
  :class:`~sertk.recognizer.Timeline` (emotion over time, silence apart);
- ``GET /v1/labels``: the labels, the model and the server's limits;
- ``GET``/``DELETE /v1/sessions/{id}``: a speaker session (``sessions.py``: a request with
  ``X-Sertk-Session: <id>`` is adapted to that session's speech so far, bounded memory);
- ``GET /healthz``: liveness and inference counters;
- ``GET /``: the web page (``static/``).

A request passes :class:`~sertk.server.security.Access` (origin, API key, rate), is read into
memory within ``max_upload_mb`` (``uploads.read_upload``), then goes to a worker process of the
:class:`~sertk.server.pool.WorkerPool` (decoding included), in the fast lane (micro-batched) or,
longer than ``long_after`` seconds, the long lane. Errors are ``{"error": {"code", "message"}}``
with a precise status:

====  ===================================================================================
400   ``no_file``, ``empty_file``, ``invalid_audio`` (corrupt, truncated), ``bad_multipart``
401   ``unauthorized`` (the server has an API key; the request did not carry it)
403   ``cross_origin`` (a browser page of another origin)
408   ``body_timeout``, ``header_timeout`` (a client that stopped sending)
413   ``file_too_large``, ``audio_too_long``
415   ``unsupported_audio`` (not audio, or a format soundfile cannot read),
      ``unsupported_media_type`` (a body that is neither multipart nor audio)
422   ``bad_parameter`` (query parameters), ``unprocessable_audio``
429   ``rate_limited`` (with Retry-After)
503   ``overloaded`` (the queue is full; with Retry-After)
504   ``timeout`` (past the request's time budget; its work is stopped or dropped)
500   ``internal_error`` (logged on the server; no details leave it), ``worker_crashed``
====  ===================================================================================

>>> app = create_app("runs/emodb/final/bundle")  # serves until stopped  # doctest: +SKIP
>>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8000)  # serves until stopped  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect

from sertk._version import __version__
from sertk.errors import ConfigError, SertkError
from sertk.inference.speakers import statistics_from_json, statistics_to_json
from sertk.recognizer import DEFAULT_MODEL, Recognizer
from sertk.server import schemas
from sertk.server.handling import analyse, analyse_document, model_header, timeline_options
from sertk.server.limits import Admission, BodyTimeout, RateLimiter
from sertk.server.pool import WorkerPool
from sertk.server.security import Access, SecurityHeaders
from sertk.server.sessions import SessionStore, add_session_routes, session_of
from sertk.server.uploads import ApiError, api_error

log = logging.getLogger("sertk.server")

STATIC = Path(__file__).resolve().parent / "static"
_FILE_SCHEMA = {"type": "string", "format": "binary"}
UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "description": "The audio (WAV, FLAC, OGG, MP3): a multipart field 'file', or raw bytes.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {**_FILE_SCHEMA, "description": "the audio file"}},
                }
            },
            "audio/*": {"schema": _FILE_SCHEMA},
            "application/octet-stream": {"schema": _FILE_SCHEMA},
        },
    }
}
_STATUS_TEXT = {400: "bad input", 401: "API key missing or wrong", 403: "another origin",
                408: "the client stopped sending", 413: "too large or too long",
                415: "not readable audio", 422: "bad parameters", 429: "over the rate limit",
                503: "busy", 504: "over the time budget", 500: "server error"}  # fmt: skip
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": schemas.ErrorOut, "description": text}
    for status, text in _STATUS_TEXT.items()
}


def create_app(
    recognizer_or_bundle: Recognizer | str | os.PathLike = "default",
    *,
    max_upload_mb: float = 20,
    max_duration_s: float = 600,
    max_batch: int = 16,
    batch_wait_ms: float = 5,
    workers: int | None = None,
    long_workers: int = 1,
    worker_threads: int | None = None,
    queue_depth: int = 64,
    request_timeout: float = 300,
    body_timeout: float = 30,
    long_after: float = 30,
    api_key: str | None = None,
    rate_limit: str | None = None,
    allow_origins: tuple[str, ...] = (),
    sessions: SessionStore | None = None,
) -> FastAPI:
    """The FastAPI app serving ``recognizer_or_bundle`` (a Recognizer, a bundle path or
    ``"default"``). Inference runs in ``workers`` processes (None: one per core; 0: in this
    process) each loading the bundle, plus ``long_workers`` for recordings over ``long_after``
    seconds (see :mod:`sertk.server.pool`); they start with the app (its lifespan).
    ``max_batch=1`` turns micro-batching off. ``queue_depth`` waiting requests, then 503;
    ``request_timeout`` seconds per request, then 504; ``body_timeout`` seconds without upload
    data, then 408. ``api_key``, ``rate_limit`` (``"10/s"``) and ``allow_origins`` (CORS): see
    :mod:`sertk.server.security`. ``sessions``: the store of speaker sessions (default:
    :class:`~sertk.server.sessions.SessionStore` with its default bounds). Raises SertkError for
    a bundle that cannot be served (a speaker-adapted one needs a speaker's utterances together;
    an adaptive one, global and adapted, is served) and ConfigError for bad options.
    """
    recognizer = (
        recognizer_or_bundle
        if isinstance(recognizer_or_bundle, Recognizer)
        else Recognizer.load(recognizer_or_bundle)
    )
    if recognizer.speaker_adapted:
        raise SertkError(
            f"{recognizer.bundle.path} is speaker-adapted: it normalises features per speaker, "
            "which a request-by-request server cannot do; serve a speaker-independent bundle, or "
            "pair it with one (sertk bundle pair GLOBAL ADAPTED -o OUT) for sessions"
        )
    limits = schemas.Limits(
        max_upload_mb=_positive("max_upload_mb", max_upload_mb),
        max_duration_s=_positive("max_duration_s", max_duration_s), max_batch=max_batch,
        request_timeout_s=_positive("request_timeout", request_timeout),
        rate_limit=None if rate_limit is None else str(RateLimiter.parse(rate_limit)),
    )  # fmt: skip
    pool = WorkerPool.build(
        recognizer, workers=workers, long_workers=long_workers, queue_depth=queue_depth,
        max_batch=max_batch, wait_ms=batch_wait_ms, threads=worker_threads,
        limits={"max_duration": limits.max_duration_s, "batch_size": max_batch},
        time_limit=limits.request_timeout_s, long_after=_positive("long_after", long_after),
    )  # fmt: skip
    access = Access(
        api_key=api_key, allow_origins=allow_origins,
        rate_limit=None if rate_limit is None else RateLimiter.parse(rate_limit),
    )  # fmt: skip

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        await asyncio.get_running_loop().run_in_executor(None, pool.start)
        try:
            yield
        finally:
            await asyncio.get_running_loop().run_in_executor(None, pool.close)

    app = FastAPI(
        title="sertk",
        version=__version__,
        summary="Speech emotion recognition: upload audio, get the emotion.",
        lifespan=lifespan,
    )
    app.state.recognizer, app.state.pool, app.state.access = recognizer, pool, access
    app.state.content_hash = recognizer.sha256 or None  # hashed when the bundle was loaded
    _add_error_handlers(app)
    app.state.sessions = SessionStore() if sessions is None else sessions
    add_session_routes(app, app.state.sessions)
    _add_routes(app, limits, body_timeout=_positive("body_timeout", body_timeout))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if allow_origins:
        app.add_middleware(
            CORSMiddleware, allow_origins=list(allow_origins), allow_methods=["GET", "POST"],
            allow_headers=["content-type", "x-api-key", "authorization", "x-filename"],
            expose_headers=["x-model-sha256", "retry-after", "deprecation", "warning"],
        )  # fmt: skip
    app.add_middleware(SecurityHeaders)
    return app


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


def _add_routes(app: FastAPI, limits: schemas.Limits, *, body_timeout: float) -> None:
    state = app.state
    recognizer = state.recognizer
    state.limits, state.max_bytes = limits, round(limits.max_upload_mb * 2**20)
    state.admission = Admission(state.pool.capacity)
    app.add_middleware(BodyTimeout, seconds=body_timeout)

    def guard(request: Request) -> None:
        state.access.check(request)

    checked = [Depends(guard)]

    @app.post("/v1/predict", response_model=schemas.PredictionOut, responses=ERRORS,
              openapi_extra=UPLOAD_BODY, dependencies=checked,
              summary="The emotion of one recording")  # fmt: skip
    async def predict(request: Request) -> Any:
        session = session_of(request)  # a speaker session (sertk.server.sessions)
        if session is None:
            return await analyse(request, "predict", {})
        if not recognizer.adaptive:
            raise ApiError(422, "bad_parameter", "this model cannot adapt to a speaker session "
                           "(no speaker-adapted model); send no session id")  # fmt: skip
        prior = state.sessions.statistics(session)  # travels with the request to its worker
        options = {"session": session, "statistics": statistics_to_json(prior)}
        document = await analyse_document(request, "session", options)
        state.sessions.add(session, statistics_from_json(document.pop("session_statistics")))
        return JSONResponse(document, headers=model_header(state))

    @app.post("/v1/timeline", response_model=schemas.TimelineOut, responses=ERRORS,
              openapi_extra=UPLOAD_BODY, dependencies=checked,
              summary="Emotion over time of a recording")  # fmt: skip
    async def timeline(
        request: Request,
        window: float | None = Query(
            None, description="seconds per window (default: the model's input length)"
        ),  # fmt: skip
        hop: float = Query(1.0, description="seconds between windows (<= window)"),
        smooth: float = Query(
            0.0, description="seconds over which probabilities are averaged (0: none)"
        ),
        smoothing: str | None = Query(
            None, deprecated=True, description="deprecated: windows averaged; use smooth"
        ),
        adapt: bool = Query(
            False, description="normalise with the recording's own speech (adaptive bundles)"
        ),
    ) -> Any:
        try:
            options, warning = timeline_options(recognizer, window, hop, smooth, smoothing)
        except SertkError as error:
            raise api_error(error) from None
        if adapt and not recognizer.adaptive:
            raise ApiError(422, "bad_parameter", "adapt=true needs a model that can adapt")
        options["adapt"] = adapt
        response = await analyse(request, "timeline", options)
        if warning is not None:
            response.headers.update({"Deprecation": "true", "Warning": f'299 - "{warning}"'})
        return response

    @app.get("/v1/labels", response_model=schemas.LabelsOut, dependencies=checked,
             summary="Labels, model and limits")  # fmt: skip
    async def labels() -> dict[str, Any]:
        return {
            "labels": list(recognizer.labels),
            "model": _model_info(recognizer),
            "limits": limits,
            "sertk_version": __version__,
        }

    @app.get("/healthz", response_model=schemas.HealthOut, summary="Workers, queues, model")
    async def healthz() -> Any:
        lanes = state.pool.health()
        counts = ("requests", "batches", "timelines", "waiting")
        inference = {key: sum(lane[key] for lane in lanes.values()) for key in counts}
        inference["largest_batch"] = max(lane["largest_batch"] for lane in lanes.values())
        healthy = all(lane["alive"] == lane["workers"] for lane in lanes.values())
        return {
            "status": "ok" if healthy else "degraded",
            "model": {"name": _model_info(recognizer)["name"], "content_hash": state.content_hash},
            "lanes": lanes,
            "inference": inference,
        }

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")


def _model_info(recognizer: Recognizer) -> dict[str, Any]:
    bundle = recognizer.bundle
    path = Path(bundle.path).resolve()
    return {
        "name": "default" if path == DEFAULT_MODEL else path.name,
        "kind": bundle.kind,
        "model_name": bundle.model_name,
        "features": bundle.features,
        "preprocess": bundle.preprocess,
        "sampling_rate": recognizer.sampling_rate,
        "sertk_version": bundle.sertk_version,
        "format_version": bundle.format_version,
        "created": bundle.created,
    }


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, error: ApiError) -> JSONResponse:
        response = _error(error.status, error.code, error.message)
        response.headers.update(error.headers)
        return response

    @app.exception_handler(ClientDisconnect)
    async def on_disconnect(request: Request, error: ClientDisconnect) -> JSONResponse:
        client = request.client.host if request.client else "a client"
        log.info("%s closed its connection before the answer to %s %s", client,
                 request.method, request.url.path)  # fmt: skip
        return _error(400, "client_disconnected", "the client closed its connection")

    @app.exception_handler(SertkError)
    async def on_sertk_error(request: Request, error: SertkError) -> JSONResponse:
        answer = api_error(error)
        return _error(answer.status, answer.code, answer.message)

    @app.exception_handler(RequestValidationError)
    async def on_validation(request: Request, error: RequestValidationError) -> JSONResponse:
        problems = []
        for item in error.errors():
            where = ".".join(str(x) for x in item.get("loc", ())[1:]) or "request"
            problems.append(f"{where}: {item.get('msg', 'invalid')} (got {item.get('input')!r})")
        return _error(422, "bad_parameter", "; ".join(problems))

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, error: HTTPException) -> JSONResponse:
        codes = {404: "not_found", 405: "method_not_allowed"}
        response = _error(error.status_code, codes.get(error.status_code, "http_error"),
                          str(error.detail))  # fmt: skip
        response.headers.update(error.headers or {})
        return response

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, error: Exception) -> JSONResponse:
        # Starlette re-raises the error after this answer, so the server logs its traceback
        return _error(500, "internal_error", "the server failed while handling the request; "
                      "the error is in the server's log")  # fmt: skip
