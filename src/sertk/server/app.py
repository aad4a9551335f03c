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

A request is read into memory within ``max_upload_mb`` (``uploads.read_upload``), decoded with
``load_audio`` on a thread of the pool, then classified on the one inference thread, where
concurrent predictions are micro-batched (``batching.MicroBatcher``). Errors are
``{"error": {"code", "message"}}`` with a precise status:

====  ===================================================================================
400   ``no_file``, ``empty_file``, ``invalid_audio`` (corrupt, truncated), ``bad_multipart``
413   ``file_too_large``, ``audio_too_long``
415   ``unsupported_audio`` (not audio, or a format soundfile cannot read),
      ``unsupported_media_type`` (a body that is neither multipart nor audio)
422   ``bad_parameter`` (query parameters), ``unprocessable_audio``
503   ``overloaded`` (too many requests waiting)
500   ``internal_error`` (logged on the server; no details leave it)
====  ===================================================================================

>>> app = create_app("runs/emodb/final/bundle")  # doctest: +SKIP
>>> import uvicorn; uvicorn.run(app, host="127.0.0.1", port=8000)  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from sertk._version import __version__
from sertk.errors import ConfigError, SertkError
from sertk.recognizer import DEFAULT_MODEL, Recognizer
from sertk.recognizer.timeline import DEFAULT_WINDOW, check_seconds
from sertk.server import schemas
from sertk.server.batching import MicroBatcher
from sertk.server.sessions import SessionStore, add_session_routes, score_in_session, session_of
from sertk.server.uploads import ApiError, api_error, decode, read_upload
from sertk.smoothing import check_smooth, seconds_from_windows

STATIC = Path(__file__).resolve().parent / "static"
MAX_TIMELINE_WINDOWS = 2000  # bounds the work one /v1/timeline request can ask for
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
_STATUS_TEXT = {400: "bad input", 413: "too large or too long", 415: "not readable audio",
                422: "bad parameters", 503: "busy", 500: "server error"}  # fmt: skip
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
    max_queue: int = 1024,
    sessions: SessionStore | None = None,
) -> FastAPI:
    """The FastAPI app serving ``recognizer_or_bundle`` (a Recognizer, a bundle path or
    ``"default"``). ``max_batch=1`` turns micro-batching off. ``sessions``: the store of speaker
    sessions (default: :class:`SessionStore` with its default bounds). Raises SertkError for a
    bundle that cannot be served (a speaker-adapted one needs a speaker's utterances together;
    an adaptive one, global and adapted, is served)."""
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
    max_bytes = round(_positive("max_upload_mb", max_upload_mb) * 2**20)
    max_duration = _positive("max_duration_s", max_duration_s)
    rate = recognizer.sampling_rate
    batcher = MicroBatcher(
        lambda signals: recognizer.predict_batch(
            signals, sampling_rate=rate, batch_size=max_batch, on_error="return"
        ),
        max_batch=max_batch,
        wait_ms=batch_wait_ms,
        max_queue=max_queue,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        batcher.close()

    app = FastAPI(
        title="sertk",
        version=__version__,
        summary="Speech emotion recognition: upload audio, get the emotion.",
        lifespan=lifespan,
    )
    app.state.recognizer, app.state.batcher = recognizer, batcher
    limits = schemas.Limits(
        max_upload_mb=max_bytes / 2**20, max_duration_s=max_duration, max_batch=max_batch
    )
    _add_error_handlers(app)
    app.state.sessions = SessionStore() if sessions is None else sessions
    add_session_routes(app, app.state.sessions)
    _add_routes(app, recognizer, batcher, limits, max_bytes=max_bytes)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _positive(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < math.inf:
        raise ConfigError(f"{name} must be a positive number, got {value!r}")
    return float(value)


async def _result(future: Future) -> Any:
    """Await a worker future; sertk errors become their HTTP answers."""
    try:
        return await asyncio.wrap_future(future)
    except SertkError as error:
        raise api_error(error) from None


def _timeline_options(
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


def _add_routes(app: FastAPI, recognizer: Recognizer, batcher: MicroBatcher, limits, *, max_bytes):
    rate = recognizer.sampling_rate

    async def signal_of(request: Request):
        upload = await read_upload(request, max_bytes=max_bytes)
        return await run_in_threadpool(
            decode, upload, sampling_rate=rate, max_duration=limits.max_duration_s
        )

    @app.post("/v1/predict", response_model=schemas.PredictionOut, responses=ERRORS,
              openapi_extra=UPLOAD_BODY, summary="The emotion of one recording")  # fmt: skip
    async def predict(request: Request) -> dict[str, Any]:
        session = session_of(request)  # issue 13: a speaker session (sertk.server.sessions)
        if session is not None and not recognizer.adaptive:
            raise ApiError(422, "bad_parameter", "this model cannot adapt to a speaker session "
                           "(no speaker-adapted model); send no session id")  # fmt: skip
        signal = await signal_of(request)
        if session is None:
            return (await _result(batcher.submit(signal))).to_dict()
        prior = app.state.sessions.statistics(session)  # travels with the request
        work = batcher.call(lambda: score_in_session(recognizer, signal, rate, session, prior))
        prediction, own = await _result(work)
        app.state.sessions.add(session, own)
        return prediction.to_dict()

    @app.post("/v1/timeline", response_model=schemas.TimelineOut, responses=ERRORS,
              openapi_extra=UPLOAD_BODY, summary="Emotion over time of a recording")  # fmt: skip
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
            options, warning = _timeline_options(recognizer, window, hop, smooth, smoothing)
        except SertkError as error:
            raise api_error(error) from None
        if adapt and not recognizer.adaptive:
            raise ApiError(422, "bad_parameter", "adapt=true needs a model that can adapt")
        options["adapt"] = adapt
        signal = await signal_of(request)
        if len(signal) / rate / options["hop"] > MAX_TIMELINE_WINDOWS:
            raise ApiError(
                422,
                "bad_parameter",
                f"hop {options['hop']:g} s over {len(signal) / rate:.1f} s of audio would score "
                f"more than {MAX_TIMELINE_WINDOWS} windows; use a larger hop",
            )
        work = batcher.call(
            lambda: recognizer.timeline(
                signal, sampling_rate=rate, batch_size=limits.max_batch, **options
            )
        )
        document = (await _result(work)).to_dict()
        if warning is None:
            return document
        return JSONResponse(
            document, headers={"Deprecation": "true", "Warning": f'299 - "{warning}"'}
        )

    @app.get("/v1/labels", response_model=schemas.LabelsOut, summary="Labels, model and limits")
    async def labels() -> dict[str, Any]:
        return {
            "labels": list(recognizer.labels),
            "model": _model_info(recognizer),
            "limits": limits,
            "sertk_version": __version__,
        }

    @app.get("/healthz", response_model=schemas.HealthOut, summary="Liveness",
             responses={503: {"model": schemas.ErrorOut}})  # fmt: skip
    async def healthz() -> Any:
        if not batcher.alive:
            raise ApiError(503, "worker_stopped", "the inference worker has stopped")
        return {"status": "ok", "inference": batcher.stats}

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
        return _error(error.status, error.code, error.message)

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
