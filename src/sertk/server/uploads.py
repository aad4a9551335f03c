"""Uploads: read into memory within the size limit, decode with ``load_audio``, and the JSON errors.

An upload is either ``multipart/form-data`` with the audio in the field ``file`` (what a browser
form and ``curl -F file=@clip.wav`` send) or the raw bytes as the body with ``Content-Type:
audio/*`` or ``application/octet-stream`` (``curl --data-binary @clip.wav``; an optional
``X-Filename`` header names it in error messages). Both are read
from the request stream into memory, never to a temporary file (Starlette's own form parser
spools uploads over 1 MB to disk), and reading stops as soon as the body passes the limit.

Every error is :class:`ApiError`: an HTTP status and a stable ``code`` with a message saying what
was wrong and what to do; the app answers ``{"error": {"code": ..., "message": ...}}``.
"""

from __future__ import annotations

import dataclasses
import io
import re
from collections.abc import AsyncIterator

import numpy as np
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request

from sertk.audio import load_audio
from sertk.audio.reader import clock, probe_audio
from sertk.errors import AudioError, AudioTooLongError, ConfigError, SertkError

MULTIPART_SLACK = 64 * 1024  # boundaries and part headers around the file in a multipart body
MAX_PART_HEADER, MAX_PART_HEADERS = 4224, 8  # python-multipart's limits per part
MAX_TEXT_FIELD = 64 * 1024  # a form's text fields (the audio is a file field)
RAW_TYPES = ("audio/", "application/octet-stream")
_UNPRINTABLE = re.compile(r"[\x00-\x1f\x7f]")


class ApiError(Exception):
    """An error answered as ``status`` with ``{"error": {"code": code, "message": message}}``."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})

    def body(self) -> dict:
        return {"error": {"code": self.code, "message": self.message}}


def api_error(error: SertkError) -> ApiError:
    """The HTTP answer to a sertk error raised while handling a request."""
    message = str(error)
    if isinstance(error, AudioTooLongError):
        return ApiError(413, "audio_too_long", message)
    if isinstance(error, AudioError):
        if "not a recognised audio format" in message:
            return ApiError(415, "unsupported_audio", message)
        return ApiError(400, "invalid_audio", message)
    if isinstance(error, ConfigError):
        return ApiError(422, "bad_parameter", message)
    return ApiError(422, "unprocessable_audio", message)


@dataclasses.dataclass(frozen=True)
class Upload:
    data: bytes
    filename: str


def _too_large(max_bytes: int) -> ApiError:
    return ApiError(
        413,
        "file_too_large",
        f"the upload is larger than the server's limit of {max_bytes / 2**20:g} MB; "
        "send a shorter or compressed recording (FLAC, OGG or MP3)",
    )


async def _bounded(request: Request, limit: int, max_bytes: int) -> AsyncIterator[bytes]:
    """The request body, raising 413 as soon as more than ``limit`` bytes arrived."""
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise _too_large(max_bytes)
        yield chunk


def _clean_name(name: str | None) -> str:
    name = _UNPRINTABLE.sub("", (name or "").replace("\\", "/").rsplit("/", 1)[-1]).strip()
    return name[:120] or "upload"


async def read_upload(request: Request, *, max_bytes: int) -> Upload:
    """The uploaded audio (multipart field ``file`` or a raw body) as bytes, at most ``max_bytes``."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes + MULTIPART_SLACK:
        raise _too_large(max_bytes)  # refused before reading a byte
    body = _bounded(request, max_bytes + MULTIPART_SLACK, max_bytes)
    if kind == "multipart/form-data":
        upload = await _read_multipart(request, body)
    elif kind == "application/x-www-form-urlencoded":  # a form without the right enctype
        raise _no_file(' (a form must use enctype="multipart/form-data" to send files)')
    elif kind.startswith(RAW_TYPES) or kind == "":
        data = b"".join([chunk async for chunk in body])
        if not data and kind == "":
            raise _no_file()
        upload = Upload(data, _clean_name(request.headers.get("x-filename")))
    else:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"cannot read a body of type {kind}; send multipart/form-data with the audio in the field "
            "'file', or the raw audio bytes with Content-Type audio/* or application/octet-stream",
        )
    if len(upload.data) > max_bytes:
        raise _too_large(max_bytes)
    if not upload.data:
        raise ApiError(
            400, "empty_file", f"{upload.filename}: is empty (0 bytes); it holds no audio"
        )
    return upload


def _no_file(aside: str = "") -> ApiError:
    return ApiError(
        400,
        "no_file",
        f"no audio in the request{aside}: send multipart/form-data with the audio file in the "
        "field 'file' (curl -F file=@clip.wav), or the raw bytes with Content-Type audio/wav",
    )


async def _read_multipart(request: Request, body: AsyncIterator[bytes]) -> Upload:
    parser = MultiPartParser(
        request.headers, body, max_files=1, max_fields=16, max_part_size=MAX_TEXT_FIELD
    )
    parser.spool_max_size = 2**62  # keep the file in memory: the body is already bounded
    try:
        form = await parser.parse()
    except MultiPartException as error:
        raise ApiError(
            400, "bad_multipart", f"malformed multipart/form-data body: {_multipart_problem(error)}"
        ) from None
    try:
        file = form.get("file")
        if file is None or isinstance(file, str):
            raise _no_file()
        return Upload(await file.read(), _clean_name(file.filename))
    finally:
        await form.close()


def _multipart_problem(error: MultiPartException) -> str:
    """What python-multipart found (Starlette says only "Invalid multipart data.")."""
    found = str(error.__cause__ or error)
    plain = {
        "Maximum header size exceeded": "a part's header line (its field name, file name ...) "
        f"is longer than {MAX_PART_HEADER} bytes",
        "Maximum header count exceeded": f"a part has more than {MAX_PART_HEADERS} header lines",
    }
    return plain.get(found, found)


def decode(upload: Upload, *, sampling_rate: int, max_duration: float) -> np.ndarray:
    """The upload as mono float32 ``[samples]`` at ``sampling_rate`` (``load_audio``), or ApiError.

    A file whose header announces more than ``max_duration`` seconds is refused before decoding,
    one that decodes to more is stopped there (``load_audio``'s own checks come first, so a lying
    header gets its precise message: a 1 Hz file is refused for its sample rate).
    """
    source = io.BytesIO(upload.data)
    source.name = upload.filename  # load_audio names the file in its messages
    try:
        signal, rate = load_audio(source, sampling_rate=sampling_rate, max_duration=max_duration)
    except SertkError as error:
        raise api_error(error) from None
    return signal


def check_announced(upload: Upload, *, max_duration: float) -> float:
    """Seconds of audio the upload's header announces, read from the header only (0.0 when
    the header does not say); ApiError for a header that lies (``probe_audio``'s checks: a 1 Hz
    file is refused for its sample rate) and 413 when it announces more than ``max_duration``
    (with 5 % slack: MP3 lengths are estimates)."""
    source = io.BytesIO(upload.data)
    source.name = upload.filename
    try:
        announced = probe_audio(source, max_duration=None).duration or 0.0
    except SertkError as error:
        raise api_error(error) from None
    if announced > max_duration * 1.05:
        raise ApiError(
            413,
            "audio_too_long",
            f"{upload.filename}: its header announces {clock(announced)}, longer than the limit "
            f"of {clock(max_duration)} set by this server; cut it into shorter pieces",
        )
    return announced
