"""Response models of the REST API: what ``/openapi.json`` documents and the responses are checked
against. They mirror the ``to_dict()`` of :class:`~sertk.recognizer.Prediction` and
:class:`~sertk.recognizer.Timeline`."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class AdaptationOut(BaseModel):
    speaker: str | None = Field(description="the session (or speaker) id")
    seconds: float = Field(description="seconds of its speech in the statistics used")
    min_seconds: float = Field(description="speech the model needs before it adapts")
    adapted: bool = Field(description="true: the adapted model answered; false: the global one")


class PredictionOut(BaseModel):
    label: str = Field(description="the most probable emotion, or 'no speech'")
    confidence: float | None = Field(description="its probability; null for 'no speech'")
    probabilities: dict[str, float] | None = Field(
        description="every label's probability, model order (kept for the record when there is "
        "no speech; null when the clip could not be scored)"
    )
    duration: float = Field(description="length of the uploaded audio in seconds")
    windows: int | None = Field(
        None, description="a recording over 60 s: timeline windows its label averages"
    )
    model_sha256: str | None = Field(None, description="content hash of the model bundle")
    speech: bool = Field(
        True, description="false: no speech in the clip (silence, a tone, noise, too short)"
    )
    no_speech: str = Field("", description="why not speech: silent, too short, no voicing, ...")
    adaptation: AdaptationOut | None = Field(
        None, description="a speaker session's adaptation (X-Sertk-Session); null without one"
    )


class SegmentOut(BaseModel):
    start: float = Field(description="seconds from the start of the recording")
    end: float
    label: str = Field(
        description="an emotion, 'silence' (nothing above the speech floor) or 'no speech' "
        "(sound, but no speech)"
    )
    confidence: float | None = Field(description="probability of the label; null for silence")
    probabilities: dict[str, float] | None = Field(description="null for silence")
    speech: bool


class TimelineOut(BaseModel):
    duration: float = Field(description="length of the recording in seconds")
    labels: list[str]
    window: float = Field(description="seconds of audio per scored window")
    hop: float = Field(description="seconds between window starts")
    smooth: float = Field(
        description="seconds over which probabilities are averaged, centred on each window"
    )
    segments: list[SegmentOut] = Field(description="tile [0, duration]: merged speech + silence")
    windows: list[SegmentOut] = Field(description="each scored window, raw probabilities")
    model_sha256: str | None = Field(None, description="content hash of the model bundle")
    adaptation: AdaptationOut | None = Field(
        None, description="adapt=true: the recording's own speech normalised the windows"
    )


class ModelInfo(BaseModel):
    name: str = Field(description="'default' or the bundle folder's name")
    kind: str = Field(description="torch, classical or ensemble")
    model_name: str
    features: dict[str, Any] | None = Field(description="the feature extractor's config")
    preprocess: dict[str, Any] | None = Field(
        description="the bundle's preprocessing (duration: seconds of input the model hears)"
    )
    sampling_rate: int = Field(description="rate the model hears; uploads are resampled to it")
    sertk_version: str = Field(description="sertk version that saved the bundle")
    format_version: int = Field(description="bundle format version")
    created: str


class Limits(BaseModel):
    max_upload_mb: float
    max_duration_s: float
    max_batch: int
    request_timeout_s: float = Field(description="time budget of a request (504 beyond it)")
    rate_limit: str | None = Field(description="requests per client, e.g. '10/s'; null: none")


class LabelsOut(BaseModel):
    labels: list[str] = Field(description="the model's labels, in its order")
    model: ModelInfo
    limits: Limits
    sertk_version: str = Field(description="sertk version of this server")


class LaneOut(BaseModel):
    workers: int = Field(description="worker processes of the lane (1 in-process worker)")
    alive: int = Field(description="workers running now (a replaced one is starting)")
    busy: int = Field(description="workers analysing a request now")
    waiting: int = Field(description="requests in the lane's queue")
    queue_depth: int = Field(description="most requests the queue holds; then 503")
    requests: int = Field(description="predictions answered")
    batches: int
    largest_batch: int
    timelines: int
    crashes: int = Field(description="workers that died while analysing (each replaced)")
    stopped: int = Field(
        description="workers stopped (and replaced) because nobody waited for their work"
    )


class HealthOut(BaseModel):
    status: str = Field(description="ok, or degraded while a worker is being replaced")
    model: dict[str, Any] = Field(description="name and content_hash (sha256) of the bundle")
    lanes: dict[str, LaneOut] = Field(
        description="fast: short recordings, micro-batched; long: long recordings"
    )
    inference: dict[str, int] = Field(
        description="over all lanes: requests, batches, largest_batch, timelines, waiting"
    )


class ErrorDetail(BaseModel):
    code: str = Field(description="stable machine-readable code, e.g. unsupported_audio")
    message: str = Field(description="what was wrong and what to do")


class ErrorOut(BaseModel):
    error: ErrorDetail
