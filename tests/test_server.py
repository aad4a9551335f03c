"""The REST server: a real uvicorn server on loopback with real worker processes, uploads in
every format, precise 4xx JSON errors, no temporary files, and micro-batching that never mixes
up results. Worker failures, overload and timeouts: test_server_pool.py; slow clients, rate
limits: test_server_limits.py; keys, origins, headers: test_server_security.py."""

from __future__ import annotations

import contextlib
import io
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import voice

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from fastapi import UploadFile  # noqa: E402  (module level: annotations are resolved here)

from sertk.errors import ConfigError, SertkError  # noqa: E402
from sertk.recognizer import Recognizer  # noqa: E402
from sertk.server import Lane, Overloaded, create_app, schemas, uvicorn_config  # noqa: E402
from sertk.server.pool import Job  # noqa: E402

LABELS = ["sad", "happy", "angry"]
PITCH = {"sad": 150.0, "happy": 400.0, "angry": 1000.0}  # the toy model hears emotion as pitch
RATE = 16000
FORMATS = {"wav": ("WAV", None), "flac": ("FLAC", None), "ogg": ("OGG", "VORBIS"),
           "mp3": ("MP3", None)}  # fmt: skip


# --- helpers shared with test_browser.py ---------------------------------------------------


def tone(seconds: float, frequency: float, *, amplitude: float = 0.3, seed: int = 0) -> np.ndarray:
    """A synthetic voice at pitch ``frequency`` (a pure tone would be "no speech")."""
    return voice(seconds, frequency, amplitude=amplitude, seed=seed)


def encode(signal: np.ndarray, kind: str = "wav", *, rate: int = RATE) -> bytes:
    """``signal`` as the bytes of a ``kind`` file (wav, flac, ogg, mp3)."""
    buffer = io.BytesIO()
    file_format, subtype = FORMATS[kind]
    sf.write(buffer, signal, rate, format=file_format, subtype=subtype)
    return buffer.getvalue()


def sections() -> np.ndarray:
    """A low tone (sad), silence, a high tone (angry), silence, a middle tone (happy), silence:
    7 s."""
    gap = np.zeros(RATE // 2, dtype=np.float32)
    parts = [tone(2, PITCH["sad"]), gap, tone(2, PITCH["angry"]), gap, tone(1.5, 400), gap]
    return np.concatenate(parts)


def make_pitch_bundle(path: Path) -> Path:
    """A tiny real bundle (log-mel + mean-pool head) fitted in a blink to tell pitches apart."""
    import torch

    from sertk.audio import Preprocess
    from sertk.bundle import save_bundle
    from sertk.features import build_extractor
    from sertk.models import build_model

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    extractor = build_extractor({"name": "logmel", "n_mels": 16})
    preprocess = Preprocess(duration=1.0, normalize="peak")
    pooled, targets = [], []
    for target, label in enumerate(LABELS):
        for k in range(8):
            frequency = PITCH[label] * (1 + 0.1 * rng.standard_normal())
            signal = tone(1.0, frequency, amplitude=0.1 + 0.4 * rng.random(), seed=k)
            pooled.append(extractor(preprocess(signal, RATE), RATE).mean(axis=0))
            targets.append(target)
    pooled = np.stack(pooled)
    mean, std = pooled.mean(axis=0), pooled.std(axis=0) + 1e-3
    inputs, onehot = (pooled - mean) / std, np.eye(len(LABELS))[targets]
    weight, bias = np.zeros((len(LABELS), inputs.shape[1])), np.zeros(len(LABELS))
    for _ in range(40):  # softmax regression; few steps: clear winners, every bar still visible
        logits = inputs @ weight.T + bias
        probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
        error = probabilities / probabilities.sum(axis=1, keepdims=True) - onehot
        weight -= 0.2 * error.T @ inputs / len(inputs)
        bias -= 0.2 * error.mean(axis=0)
    model = build_model("mean_pool", input_dim=16, num_classes=len(LABELS), dropout=0.0)
    with torch.no_grad():
        model.head[-1].weight.copy_(torch.tensor(weight))
        model.head[-1].bias.copy_(torch.tensor(bias))
    return save_bundle(
        path, model=model.eval(), model_name="mean_pool", labels=LABELS,
        label_map={"name": None, "labels": LABELS, "mapping": {x: x for x in LABELS}},
        features=extractor, preprocess=preprocess, normalization={"mean": mean, "std": std},
    )  # fmt: skip


@contextlib.contextmanager
def live_server(app, **config):
    """Run ``app`` with uvicorn, configured as ``sertk serve`` does (``uvicorn_config``:
    ``header_timeout`` ...), on a free loopback port in a thread; yields its base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn_config(app, log_level="warning", **config))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 120  # the workers load their models first
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_pitch_bundle(tmp_path_factory.mktemp("server") / "pitch")


@pytest.fixture(scope="module")
def reference(bundle) -> Recognizer:
    """A Recognizer of its own, used sequentially: the answers the server must give."""
    return Recognizer.load(bundle)


@pytest.fixture(scope="module")
def url(bundle):
    # two worker processes; a generous batch wait, so concurrent requests really share batches
    app = create_app(Recognizer.load(bundle), batch_wait_ms=20, workers=2)
    with live_server(app) as base:
        yield base


@pytest.fixture
def client(url):
    with httpx.Client(base_url=url, timeout=60) as session:
        yield session


@pytest.fixture(scope="module")
def small_url(bundle):
    """A server with small limits: 1 MB uploads, 5 s of audio."""
    app = create_app(bundle, max_upload_mb=1, max_duration_s=5, workers=1)
    with live_server(app) as base:
        yield base


def post_file(client, data: bytes, name: str = "clip.wav", path: str = "/v1/predict", **kw):
    return client.post(path, files={"file": (name, data, "application/octet-stream")}, **kw)


def assert_close(answer: dict, expected: dict, atol: float = 1e-5) -> None:
    assert answer["label"] == expected["label"]
    assert list(answer["probabilities"]) == list(expected["probabilities"])
    np.testing.assert_allclose(
        list(answer["probabilities"].values()), list(expected["probabilities"].values()), atol=atol
    )
    assert answer["duration"] == pytest.approx(expected["duration"], abs=1e-6)


# --- predictions ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(FORMATS))
def test_predict_each_format_gives_the_recognizers_answer(client, reference, kind):
    label = {"wav": "sad", "flac": "happy", "ogg": "angry", "mp3": "happy"}[kind]
    data = encode(tone(2.0, PITCH[label] * 1.05, seed=3), kind)
    response = post_file(client, data, f"clip.{kind}")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["label"] == label  # the toy model hears the pitch through every codec
    assert set(answer) == set(schemas.PredictionOut.model_fields)  # the documented fields
    assert answer["confidence"] == max(answer["probabilities"].values())
    assert_close(answer, reference.predict_file(data).to_dict())


def test_raw_body_upload_equals_multipart(client):
    data = encode(tone(1.5, PITCH["angry"]), "flac")
    raw = client.post("/v1/predict", content=data, headers={"content-type": "audio/flac"})
    form = post_file(client, data, "clip.flac")
    assert raw.status_code == form.status_code == 200
    assert raw.json() == form.json()


def test_timeline_separates_sections_and_silence(client, reference):
    data = encode(sections(), "flac")
    response = post_file(client, data, "long.flac", "/v1/timeline", params={"hop": 0.5})
    assert response.status_code == 200, response.text
    timeline = response.json()
    expected = reference.timeline(data, hop=0.5).to_dict()
    assert timeline["hop"] == 0.5 and timeline["window"] == 1.0 and timeline["smooth"] == 0
    assert timeline["duration"] == pytest.approx(7.0)
    assert [s["label"] for s in timeline["segments"]] == [s["label"] for s in expected["segments"]]
    speech = [s["label"] for s in timeline["segments"] if s["speech"]]
    assert speech[0] == "sad" and "angry" in speech and speech[-1] == "happy"
    silence = [s for s in timeline["segments"] if not s["speech"]]
    assert silence and all(s["label"] == "silence" and s["probabilities"] is None for s in silence)
    ends = [s["end"] for s in timeline["segments"]]
    assert ends[-1] == pytest.approx(7.0) and ends == sorted(ends)


def test_timeline_smoothing_is_passed_on(client):
    data = encode(sections(), "wav")
    smoothed = post_file(client, data, path="/v1/timeline", params={"smooth": 1.5, "hop": 0.5})
    assert smoothed.status_code == 200 and smoothed.json()["smooth"] == 1.5
    assert "Deprecation" not in smoothed.headers
    # the old form (windows), for one release: the same result, with a deprecation header
    old = post_file(client, data, path="/v1/timeline", params={"smoothing": "3", "hop": 0.5})
    assert old.status_code == 200 and old.json() == smoothed.json()
    assert old.headers["Deprecation"] == "true"
    assert "smoothing= is deprecated; use smooth=SECONDS" in old.headers["Warning"]


def test_labels_and_model_info(client, bundle):
    info = client.get("/v1/labels").json()
    assert info["labels"] == LABELS
    model = info["model"]
    assert model["name"] == bundle.name and model["model_name"] == "mean_pool"
    assert model["features"]["name"] == "logmel" and model["features"]["n_mels"] == 16
    assert model["sampling_rate"] == RATE and model["format_version"] >= 1
    assert model["preprocess"]["duration"] == 1.0  # what the page explains crops by
    assert info["limits"] == {"max_upload_mb": 20.0, "max_duration_s": 600.0, "max_batch": 16,
                              "request_timeout_s": 300.0, "rate_limit": None}  # fmt: skip


def test_healthz_reports_workers_queues_and_the_bundle_hash(client, bundle):
    from sertk.bundle._hash import content_hash

    before = client.get("/healthz").json()
    answer = post_file(client, encode(tone(1.0, 300)))
    after = client.get("/healthz").json()
    assert after["status"] == "ok"
    assert after["inference"]["requests"] == before["inference"]["requests"] + 1
    assert after["model"] == {"name": "pitch", "content_hash": content_hash(bundle)}
    assert answer.headers["X-Model-Sha256"] == content_hash(bundle)
    fast, long = after["lanes"]["fast"], after["lanes"]["long"]
    assert fast["workers"] == fast["alive"] == 2 and long["workers"] == long["alive"] == 1
    assert fast["busy"] == fast["waiting"] == 0 and fast["queue_depth"] == 64
    assert fast["crashes"] == long["crashes"] == 0


def test_openapi_documents_uploads_and_errors(client):
    schema = client.get("/openapi.json").json()
    assert {"/v1/predict", "/v1/timeline", "/v1/labels", "/healthz"} <= set(schema["paths"])
    predict = schema["paths"]["/v1/predict"]["post"]
    body = predict["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert body["required"] == ["file"] and body["properties"]["file"]["format"] == "binary"
    ok = predict["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok["$ref"].endswith("/PredictionOut")
    assert predict["responses"]["415"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/ErrorOut"
    )
    params = {p["name"] for p in schema["paths"]["/v1/timeline"]["post"]["parameters"]}
    assert params == {"window", "hop", "smooth", "smoothing", "adapt"}
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_the_web_page_is_served(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="file-input"' in page.text and 'id="record-button"' in page.text
    for name, kind in (("app.js", "javascript"), ("style.css", "css"),
                       ("recorder-worklet.js", "javascript")):  # fmt: skip
        asset = client.get(f"/static/{name}")
        assert asset.status_code == 200 and kind in asset.headers["content-type"]


# --- bad input: each gets its precise status and code ---------------------------------------


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == code
    return body["error"]["message"]


def test_no_file(client):
    assert "field 'file'" in _error(client.post("/v1/predict"), 400, "no_file")
    other = client.post("/v1/predict", files={"audio": ("a.wav", encode(tone(1, 200)))})
    _error(other, 400, "no_file")
    as_text = client.post("/v1/predict", files={"file": (None, "a text field, not a file")})
    _error(as_text, 400, "no_file")
    form = client.post("/v1/predict", data={"file": "clip.wav"})  # a form without enctype
    assert "enctype" in _error(form, 400, "no_file")


def test_empty_file(client):
    message = _error(post_file(client, b"", "empty.wav"), 400, "empty_file")
    assert "empty.wav" in message and "0 bytes" in message


def test_text_file_is_not_audio(client):
    message = _error(post_file(client, b"hello, I am text\n" * 50, "notes.txt"), 415,
                     "unsupported_audio")  # fmt: skip
    assert "notes.txt" in message and "not a recognised audio format" in message


def test_truncated_wav(client):
    data = encode(tone(2.0, 300))
    message = _error(post_file(client, data[: len(data) // 2], "cut.wav"), 400, "invalid_audio")
    assert "cut.wav" in message and "truncated" in message


def test_body_of_another_type(client):
    response = client.post("/v1/predict", json={"audio": "..."})
    assert "application/json" in _error(response, 415, "unsupported_media_type")


def test_too_large_upload_is_refused_while_reading(small_url):
    data = encode(tone(40.0, 300))  # 1.3 MB > 1 MB
    with httpx.Client(base_url=small_url, timeout=60) as client:
        message = _error(post_file(client, data), 413, "file_too_large")
        assert "1 MB" in message
        # no Content-Length (chunked): the server stops reading past the limit
        chunks = (data[i : i + 65536] for i in range(0, len(data), 65536))
        streamed = client.post("/v1/predict", content=chunks, headers={"content-type": "audio/wav"})
        _error(streamed, 413, "file_too_large")
        assert client.get("/healthz").status_code == 200  # and keeps serving


def test_too_long_audio(small_url):
    with httpx.Client(base_url=small_url, timeout=60) as client:
        data = encode(tone(8.0, 300), "flac")  # small file, 8 s > 5 s
        message = _error(post_file(client, data, "long.flac"), 413, "audio_too_long")
        assert "8.0 s" in message and "limit of 5.0 s" in message
        ok = post_file(client, encode(tone(4.0, 300), "flac"))
        assert ok.status_code == 200


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"hop": "abc"}, "hop: Input should be a valid number"),
        ({"hop": "0"}, "hop must be a number of seconds > 0"),
        ({"window": "-1"}, "window must be a number of seconds > 0"),
        ({"hop": "nan"}, "hop must be"),
        ({"window": "0.5", "hop": "1"}, "must not exceed window"),
        ({"smoothing": "lots"}, "smoothing must be"),
        ({"smooth": "-1"}, "smooth must be a number of seconds >= 0"),
        ({"hop": "0.001", "window": "0.01"}, "use a larger hop"),
    ],
)
def test_bad_timeline_parameters(client, params, fragment):
    response = post_file(client, encode(sections()), path="/v1/timeline", params=params)
    assert fragment in _error(response, 422, "bad_parameter")


def test_unknown_paths_and_methods_answer_json(client):
    _error(client.get("/v1/nothing"), 404, "not_found")
    _error(client.get("/v1/predict"), 405, "method_not_allowed")


def test_unexpected_failure_is_a_500_without_details(bundle):
    from fastapi.testclient import TestClient

    recognizer = Recognizer.load(bundle)

    def broken(*args, **kwargs):
        raise RuntimeError("secret internal detail")

    recognizer.predict_batch = broken
    app = create_app(recognizer, workers=0)  # in-process: the broken recognizer is the one used
    with TestClient(app, raise_server_exceptions=False) as client:
        response = post_file(client, encode(tone(1.0, 300)))
        message = _error(response, 500, "internal_error")
        assert "secret" not in response.text and "Traceback" not in response.text
        assert "log" in message
        assert client.get("/healthz").status_code == 200  # the worker survives


@pytest.mark.parametrize(
    "options",
    [{"max_upload_mb": 0}, {"max_duration_s": -1}, {"max_duration_s": float("inf")},
     {"max_batch": 0}, {"batch_wait_ms": -5}, {"workers": -1}, {"workers": 1.5},
     {"long_workers": 0}, {"queue_depth": 0}, {"request_timeout": 0},
     {"body_timeout": float("nan")}, {"rate_limit": "fast"}, {"rate_limit": "0/s"}],
)  # fmt: skip
def test_bad_server_options_are_refused(reference, options):
    with pytest.raises(ConfigError):
        create_app(reference, **options)


def test_a_speaker_adapted_bundle_is_refused(bundle):
    recognizer = Recognizer.load(bundle)
    recognizer.speaker_adapted = True
    with pytest.raises(SertkError, match="speaker-adapted"):
        create_app(recognizer)


# --- no temporary files ---------------------------------------------------------------------


@pytest.fixture
def temp_spy(tmp_path, monkeypatch):
    """Point tempfile at an empty folder and record every way of making a temporary file."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    calls = []
    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp", "mkdtemp"):
        original = getattr(tempfile, name)
        monkeypatch.setattr(
            tempfile, name, lambda *a, _n=name, _o=original, **k: calls.append(_n) or _o(*a, **k)
        )
    rollover = tempfile.SpooledTemporaryFile.rollover
    monkeypatch.setattr(
        tempfile.SpooledTemporaryFile, "rollover",
        lambda self: calls.append("rollover") or rollover(self),
    )  # fmt: skip
    return folder, calls


def test_spy_catches_starlettes_own_upload_spooling(temp_spy):
    """Control: a plain FastAPI ``UploadFile`` endpoint spools a 3 MB upload to disk."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    plain = FastAPI()

    @plain.post("/up")
    async def up(file: UploadFile) -> int:
        return len(await file.read())

    folder, calls = temp_spy
    with TestClient(plain) as client:
        assert client.post("/up", files={"file": ("a.bin", b"x" * 3_000_000)}).json() == 3_000_000
    assert "rollover" in calls


def test_no_temporary_files(client, temp_spy):
    folder, calls = temp_spy
    big = encode(tone(50.0, 300))  # 1.6 MB: Starlette's own form parser would spool it to disk
    assert post_file(client, big).status_code == 200
    assert client.post("/v1/predict", content=big, headers={"content-type": "audio/wav"}).is_success
    assert (
        post_file(client, big, path="/v1/timeline", params={"window": 3, "hop": 3}).status_code
        == 200
    )
    assert post_file(client, big[:100_000]).status_code == 400
    assert calls == [] and list(folder.iterdir()) == []


# --- concurrency ----------------------------------------------------------------------------


def test_concurrent_requests_equal_sequential_ones(client, reference, url):
    rng = np.random.default_rng(1)
    files = [
        encode(
            tone(
                1.0 + rng.random(), rng.uniform(120, 1200), amplitude=rng.uniform(0.05, 0.5), seed=i
            ),
            "wav",
        )  # fmt: skip
        for i in range(20)
    ]
    expected = [reference.predict_file(data).to_dict() for data in files]
    # different files get clearly different answers, so a mix-up could not go unnoticed
    rows = np.array([list(e["probabilities"].values()) for e in expected])
    assert len({e["label"] for e in expected}) == len(LABELS)
    assert min(np.abs(a - b).max() for i, a in enumerate(rows) for b in rows[i + 1 :]) > 1e-4
    before = client.get("/healthz").json()["inference"]

    def ask(data: bytes) -> dict:
        with httpx.Client(base_url=url, timeout=120) as own:
            response = post_file(own, data)
            assert response.status_code == 200, response.text
            return response.json()

    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(ask, files))
    for answer, truth in zip(answers, expected, strict=True):
        assert_close(answer, truth)
    after = client.get("/healthz").json()["inference"]
    assert after["requests"] - before["requests"] == 20


def test_concurrent_requests_share_one_batch_of_the_real_server(bundle, reference):
    """Micro-batching, shown on a live server running inference in its own process
    (``workers=0``; the worker pool's batches are in test_server_pool): the model is held on the
    first request until the other requests are in the batcher's queue (read from ``/healthz``), then released; the
    waiting ones must reach the model as one batch, and each caller gets its own answer.

    The verdict depends on no timing: the hold is an event, the queue is watched, not waited on
    (the deadline only guards a hang). The model is the real one; the hold only wraps it."""
    recognizer = Recognizer.load(bundle)
    real_predict_batch = recognizer.predict_batch
    sizes: list[int] = []
    entered, release = threading.Event(), threading.Event()

    def held_predict_batch(signals, **options):
        sizes.append(len(signals))
        entered.set()
        release.wait(60)
        return real_predict_batch(signals, **options)

    recognizer.predict_batch = held_predict_batch
    files = [encode(tone(1.0, frequency, seed=i), "wav") for i, frequency in
             enumerate([150, 400, 1000, 180, 450, 900, 130, 350, 1100])]  # fmt: skip
    expected = [reference.predict_file(data).to_dict() for data in files]
    waiting = len(files) - 1
    with live_server(create_app(recognizer, max_batch=16, batch_wait_ms=0, workers=0)) as base:

        def ask(data: bytes):
            with httpx.Client(base_url=base, timeout=120) as own:
                return post_file(own, data)

        with (
            httpx.Client(base_url=base, timeout=60) as client,
            ThreadPoolExecutor(max_workers=len(files)) as pool,
        ):
            first = pool.submit(ask, files[0])
            assert entered.wait(60), "the first request never reached the model"
            rest = [pool.submit(ask, data) for data in files[1:]]
            deadline = time.monotonic() + 60
            while client.get("/healthz").json()["inference"]["waiting"] < waiting:
                assert time.monotonic() < deadline, "the requests never queued up"
                time.sleep(0.01)
            release.set()
            responses = [first.result(120)] + [future.result(120) for future in rest]
            stats = client.get("/healthz").json()["inference"]
    assert sizes == [1, waiting]  # the first alone, then every waiting request in one batch
    assert stats["batches"] == 2 and stats["largest_batch"] == waiting and stats["requests"] == 9
    for response, truth in zip(responses, expected, strict=True):
        assert response.status_code == 200, response.text
        assert_close(response.json(), truth)
    assert len({answer.json()["label"] for answer in responses}) == len(LABELS)


# --- a lane on its own (deterministic): batching, order, a full queue -----------------------


class FunctionWorker:
    """A lane worker that answers with ``answer(header, blobs)`` on the lane's thread."""

    alive, pid = True, 0

    def __init__(self, answer):
        self.answer = answer

    def start(self):
        pass

    def run(self, header, blobs, *, abandoned, deadline):
        return self.answer(header, blobs)

    def stop(self, timeout=5.0):
        pass


def make_lane(answer, **options) -> Lane:
    worker = FunctionWorker(answer)
    defaults = {"size": 1, "queue_depth": 64, "max_batch": 4, "limits": {}, "time_limit": 60}
    lane = Lane("test", lambda: worker, **{**defaults, **options})
    lane.start()
    return lane


def job(value: int, kind: str = "predict") -> Job:
    return Job(kind, str(value).encode(), f"clip{value}.wav")


def test_lane_groups_waiting_predictions_and_returns_each_its_own_result():
    seen: list[list[int]] = []
    entered, gate = threading.Event(), threading.Event()

    def answer(header, blobs):
        values = [int(b) for b in blobs]
        if not seen:
            entered.set()
            gate.wait(10)  # hold the first batch so the others queue up behind it
        seen.append(values)
        return [{"ok": v * 10} if v != 3 else {"error": {"code": "bad", "n": v}} for v in values]

    lane = make_lane(answer, wait_ms=0)
    first = lane.submit(job(0))
    assert entered.wait(10)
    jobs = [lane.submit(job(i)) for i in range(1, 10)]
    assert lane.health()["waiting"] == 9
    gate.set()
    assert first.future.result(10) == {"ok": 0}
    for i, queued in enumerate(jobs, start=1):
        expected = {"error": {"code": "bad", "n": 3}} if i == 3 else {"ok": i * 10}
        assert queued.future.result(10) == expected
    assert seen == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9]]
    health = lane.health()
    assert health["largest_batch"] == 4 and health["batches"] == 4 and health["requests"] == 10
    lane.close()


def test_lane_runs_timelines_alone_in_order_and_drops_abandoned_jobs():
    order = []
    entered, gate = threading.Event(), threading.Event()

    def answer(header, blobs):
        entered.set()
        gate.wait(10)
        order.append((header["kind"], [int(b) for b in blobs]))
        return [{"ok": None}] * len(blobs)

    lane = make_lane(answer, max_batch=8, wait_ms=0)
    a = lane.submit(job(1))
    assert entered.wait(10)
    b, c = lane.submit(job(2)), lane.submit(job(3))
    alone = lane.submit(job(4, "timeline"))
    gone, d = lane.submit(job(5)), lane.submit(job(6))
    lane.abandon(gone)  # its client left while it waited: it never runs
    gate.set()
    for queued in (a, b, c, alone, d):
        queued.future.result(10)
    assert gone.future.cancelled()
    assert order == [("predict", [1]), ("predict", [2, 3]), ("timeline", [4]), ("predict", [6])]
    assert lane.health()["timelines"] == 1
    lane.close()


def test_lane_without_batching_and_when_full():
    entered, gate = threading.Event(), threading.Event()
    sizes = []

    def answer(header, blobs):
        entered.set()
        gate.wait(10)
        sizes.append(len(blobs))
        return [{"ok": 1}] * len(blobs)

    lane = make_lane(answer, max_batch=1, wait_ms=50, queue_depth=3)
    jobs = [lane.submit(job(0))]
    assert entered.wait(10)  # running; now 3 may wait
    jobs += [lane.submit(job(i)) for i in range(1, 4)]
    with pytest.raises(Overloaded, match="busy: 3 requests are already waiting") as refused:
        lane.submit(job(4))
    assert refused.value.retry_after >= 1
    gate.set()
    for queued in jobs:
        queued.future.result(10)
    assert set(sizes) == {1}
    lane.close()


@pytest.mark.parametrize(
    "options", [{"max_batch": 0}, {"max_batch": 1.5}, {"wait_ms": -1}, {"queue_depth": 0},
                {"size": 0}]
)  # fmt: skip
def test_lane_options_are_checked(options):
    defaults = {"size": 1, "queue_depth": 4, "limits": {}, "time_limit": 60}
    with pytest.raises(ConfigError):
        Lane("test", lambda: None, **{**defaults, **options})


# --- the command line -----------------------------------------------------------------------


def test_importing_the_serve_command_does_not_import_fastapi():
    code = "import sys, sertk.cli.serve; assert 'fastapi' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_serve_refuses_a_missing_model_before_listening(capsys):
    from sertk.cli import main

    assert main(["serve", "--model", "/no/such/bundle", "--port", "1"]) == 2
    assert "no model bundle" in capsys.readouterr().err


def test_sertk_serve_answers_on_loopback(bundle, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "sertk", "serve", "--model", str(bundle), "--port",
               str(port), "--max-upload-mb", "2", "--workers-threads", "1", "--workers", "1"]  # fmt: skip
    log = (tmp_path / "serve.log").open("w")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert process.poll() is None, (tmp_path / "serve.log").read_text()
                assert time.monotonic() < deadline, "sertk serve did not come up"
                time.sleep(0.2)
        assert httpx.get(f"{base}/v1/labels").json()["limits"]["max_upload_mb"] == 2
        answer = httpx.post(f"{base}/v1/predict", files={"file": ("a.wav", encode(tone(1, 150)))})
        assert answer.json()["label"] == "sad"
    finally:
        process.terminate()
        process.wait(30)
        log.close()
