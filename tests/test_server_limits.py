"""Slow and greedy clients against a real ``sertk serve`` (a subprocess, its log read back):
raw sockets that stall on their headers or mid-body are answered 408 and closed, a client that
leaves mid-upload costs one log line and no traceback, slow uploads cannot pile up past the
server's capacity (503 before the body is read), and the API key never reaches the log.
The per-client rate limit runs on an in-process server."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import httpx
import pytest
from test_server import encode, live_server, make_pitch_bundle, post_file, tone

from sertk.server import create_app

KEY = "k3y-that-must-not-be-logged"
TIMEOUTS = {"header": 1, "body": 3}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_pitch_bundle(tmp_path_factory.mktemp("limits") / "pitch")


@pytest.fixture(scope="module")
def served(bundle, tmp_path_factory):
    """``sertk serve`` with short timeouts, one worker, a capacity of 4 requests (2 per lane:
    one waiting, one running) and an API key from the environment; yields (host, port, log)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log_path = tmp_path_factory.mktemp("limits-log") / "serve.log"
    command = [sys.executable, "-m", "sertk", "serve", "--model", str(bundle), "--port",
               str(port), "--workers", "1", "--max-batch", "1", "--queue-depth", "1",
               "--header-timeout", str(TIMEOUTS["header"]), "--body-timeout",
               str(TIMEOUTS["body"]), "--log-level", "debug"]  # fmt: skip
    environment = {**os.environ, "SERTK_API_KEY": KEY}
    with log_path.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=environment)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                assert process.poll() is None, log_path.read_text()
                assert time.monotonic() < deadline, "sertk serve did not come up"
                time.sleep(0.2)
        yield "127.0.0.1", port, log_path
    finally:
        process.terminate()
        process.wait(30)


def read_all(sock: socket.socket, seconds: float = 60) -> bytes:
    """Everything the server sends until it closes the connection."""
    sock.settimeout(seconds)
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def request_head(port: int, length: int, *, key: str = KEY) -> bytes:
    return (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: audio/wav\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


def test_connections_stalling_on_their_headers_are_closed(served):
    host, port, _ = served
    stalled = []
    for index in range(30):
        sock = socket.create_connection((host, port))
        if index % 3:  # half a request line and headers ...
            sock.sendall(b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Le")
        stalled.append(sock)  # ... or nothing at all
    for sock in stalled:
        answer = read_all(sock)  # returns only once the server has closed the connection
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer[:80]
        error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
        assert error["code"] == "header_timeout"
        assert f"within {TIMEOUTS['header']} s" in error["message"]
        sock.close()
    assert httpx.get(f"http://{host}:{port}/healthz").status_code == 200


def test_an_upload_stalling_mid_body_gets_408_and_is_closed(served):
    host, port, _ = served
    data = encode(tone(2.0, 300))
    with socket.create_connection((host, port)) as sock:
        sock.sendall(request_head(port, len(data)) + data[: len(data) // 3])
        answer = read_all(sock)
    head, body = answer.split(b"\r\n\r\n", 1)
    assert head.startswith(b"HTTP/1.1 408") and b"connection: close" in head.lower()
    error = json.loads(body)["error"]
    assert (
        error["code"] == "body_timeout" and f"nothing for {TIMEOUTS['body']} s" in error["message"]
    )


def test_slow_uploads_cannot_pile_up_past_the_capacity(served):
    host, port, _ = served
    data = encode(tone(2.0, 300))
    slow = []
    for _ in range(4):  # the capacity: each holds its place while it uploads
        sock = socket.create_connection((host, port))
        sock.sendall(request_head(port, len(data)) + data[:1000])
        slow.append(sock)
    time.sleep(0.5)  # let the server take them in (no timing is asserted)
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=60) as client:
        refused = post_file(client, data, headers={"X-API-Key": KEY})
    assert refused.status_code == 503, refused.text
    assert refused.json()["error"]["code"] == "overloaded" and refused.headers["Retry-After"]
    for sock in slow:
        assert read_all(sock).startswith(b"HTTP/1.1 408")  # the body timeout frees them
        sock.close()
    with httpx.Client(base_url=f"http://{host}:{port}", timeout=60) as client:
        assert post_file(client, data, headers={"X-API-Key": KEY}).status_code == 200


def test_a_client_leaving_mid_upload_costs_one_log_line(served):
    host, port, log_path = served
    data = encode(tone(2.0, 300))
    with socket.create_connection((host, port)) as sock:
        sock.sendall(request_head(port, len(data)) + data[:5000])
        time.sleep(0.3)
    deadline = time.monotonic() + 30
    while "closed its connection" not in log_path.read_text():
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)
    lines = [line for line in log_path.read_text().splitlines() if "closed its connection" in line]
    assert lines == [
        "INFO:     127.0.0.1 closed its connection before the answer to POST /v1/predict"
    ]


def test_the_key_is_required_and_never_logged(served):
    host, port, log_path = served
    base, data = f"http://{host}:{port}", encode(tone(1.0, 300))
    with httpx.Client(base_url=base, timeout=60) as client:
        missing = post_file(client, data)
        assert missing.status_code == 401 and missing.json()["error"]["code"] == "unauthorized"
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = post_file(client, data, headers={"X-API-Key": KEY[:-1]})
        assert wrong.status_code == 401 and KEY[:-1] not in wrong.text
        assert client.get("/v1/labels").status_code == 401
        assert post_file(client, data, headers={"X-API-Key": KEY}).status_code == 200
        bearer = post_file(client, data, headers={"Authorization": f"Bearer {KEY}"})
        assert bearer.status_code == 200
        assert client.get("/healthz").status_code == 200  # liveness needs no key
    log = log_path.read_text()
    assert KEY not in log and KEY[:-1] not in log
    assert "Traceback" not in log


def test_each_client_is_held_to_its_rate(bundle):
    app = create_app(bundle, workers=0, rate_limit="2/min")
    with live_server(app) as base, httpx.Client(base_url=base, timeout=60) as client:
        data = encode(tone(1.0, 300))
        assert [post_file(client, data).status_code for _ in range(2)] == [200, 200]
        limited = post_file(client, data)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert "the limit is 2/min" in limited.json()["error"]["message"]
        assert 1 <= int(limited.headers["Retry-After"]) <= 30
        assert client.get("/healthz").status_code == 200  # not counted
        assert client.get("/v1/labels").status_code == 429  # every /v1 request counts
