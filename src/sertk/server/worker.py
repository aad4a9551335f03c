"""What an inference worker does with a job, and the worker process around it.

:func:`handle` turns one job message (uploads + options, :mod:`sertk.server.protocol`) into one
JSON result per upload: ``{"ok": document}`` or ``{"error": {"status", "code", "message"}}``.
The server's in-process mode calls it directly; a worker process (:mod:`sertk.server.worker_main`)
calls it for each job it reads. Decoding happens here, not in the server: a file that makes
the decoder use much memory or crash costs the worker process, which the pool replaces.
"""

from __future__ import annotations

import logging
from typing import Any

from sertk.errors import SertkError
from sertk.inference.speakers import statistics_from_json, statistics_to_json
from sertk.server import schemas
from sertk.server.sessions import score_in_session
from sertk.server.uploads import ApiError, Upload, api_error, decode

log = logging.getLogger("sertk.server.worker")
MAX_TIMELINE_WINDOWS = 2000  # bounds the work one /v1/timeline request can ask for
INTERNAL = {
    "status": 500,
    "code": "internal_error",
    "message": "the server failed while handling the request; the error is in the server's log",
}


def handle(recognizer: Any, header: dict[str, Any], blobs: list[bytes]) -> list[dict[str, Any]]:
    """One result per blob of a ``predict`` or ``timeline`` job (see the module docstring).

    ``header``: ``kind``, ``names`` (one file name per blob), ``options`` (timeline's
    ``window``/``hop``/``smooth``/``adapt``; a ``session`` prediction's ``session`` id and its
    ``statistics`` so far), ``max_duration`` (seconds), ``batch_size``.
    """
    uploads = [Upload(data, name) for data, name in zip(blobs, header["names"], strict=True)]
    try:
        if header["kind"] == "timeline":
            return [_timeline(recognizer, uploads[0], header)]
        if header["kind"] == "session":
            return [_session(recognizer, uploads[0], header)]
        return _predict(recognizer, uploads, header)
    except Exception:  # a bug, not bad input: logged here, no details leave the server
        log.exception("inference failed for %s", ", ".join(header["names"]))
        return [{"error": INTERNAL} for _ in uploads]


def _error(error: ApiError) -> dict[str, Any]:
    return {"error": {"status": error.status, "code": error.code, "message": error.message}}


def _predict(recognizer: Any, uploads: list[Upload], header: dict) -> list[dict[str, Any]]:
    """Decode each upload, then classify the good ones with one ``predict_batch`` call."""
    results: list[dict[str, Any] | None] = [None] * len(uploads)
    signals, rows = [], []
    for row, upload in enumerate(uploads):
        try:
            signals.append(_decode(recognizer, upload, header))
            rows.append(row)
        except ApiError as error:
            results[row] = _error(error)
    if signals:
        predictions = recognizer.predict_batch(
            signals, sampling_rate=recognizer.sampling_rate, batch_size=header["batch_size"],
            on_error="return",
        )  # fmt: skip
        for row, prediction in zip(rows, predictions, strict=True):
            if isinstance(prediction, SertkError):
                results[row] = _error(api_error(prediction))
            else:
                results[row] = {"ok": _prediction(prediction)}
    return results  # type: ignore[return-value]


def _prediction(prediction: Any) -> dict[str, Any]:
    document = prediction.to_dict()
    return {key: document[key] for key in schemas.PredictionOut.model_fields}


def _session(recognizer: Any, upload: Upload, header: dict) -> dict[str, Any]:
    """A prediction in a speaker session: the session's statistics so far travel in the job's
    options and the upload's own come back (``session_statistics``) for the server's store."""
    options = header["options"]
    try:
        audio = _decode(recognizer, upload, header)
        prior = statistics_from_json(options["statistics"])
        prediction, own = score_in_session(
            recognizer, audio, recognizer.sampling_rate, options["session"], prior
        )
    except ApiError as error:
        return _error(error)
    except SertkError as error:
        return _error(api_error(error))
    return {"ok": {**_prediction(prediction), "session_statistics": statistics_to_json(own)}}


def _timeline(recognizer: Any, upload: Upload, header: dict) -> dict[str, Any]:
    try:
        audio = _decode(recognizer, upload, header)
        rate, hop = recognizer.sampling_rate, header["options"]["hop"]
        if len(audio) / rate / hop > MAX_TIMELINE_WINDOWS:
            raise ApiError(
                422, "bad_parameter",
                f"hop {hop:g} s over {len(audio) / rate:.1f} s of audio would score more than "
                f"{MAX_TIMELINE_WINDOWS} windows; use a larger hop",
            )  # fmt: skip
        timeline = recognizer.timeline(
            audio, sampling_rate=rate, batch_size=header["batch_size"], **header["options"]
        )
    except ApiError as error:
        return _error(error)
    except SertkError as error:
        return _error(api_error(error))
    return {"ok": timeline.to_dict()}


def _decode(recognizer: Any, upload: Upload, header: dict) -> Any:
    return decode(
        upload, sampling_rate=recognizer.sampling_rate, max_duration=header["max_duration"]
    )
