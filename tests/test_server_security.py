"""Origins, CORS, security headers and absurd multipart bodies, against a real uvicorn server.

A browser sends some cross-origin POSTs without a preflight (a form, ``fetch`` in no-cors mode)
and only hides the answer from the page: these tests check that such a request is refused
before any inference runs (the workers' counters do not move). Chromium itself does it in
test_browser.py.
"""

from __future__ import annotations

import httpx
import pytest
from test_server import encode, live_server, make_pitch_bundle, post_file, tone

from sertk.server import create_app
from sertk.server.security import PAGE_CSP

ALLOWED = "https://app.example:8443"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_pitch_bundle(tmp_path_factory.mktemp("security") / "pitch")


@pytest.fixture(scope="module")
def url(bundle):
    with live_server(create_app(bundle, workers=1)) as base:
        yield base


@pytest.fixture(scope="module")
def open_url(bundle):
    with live_server(create_app(bundle, workers=0, allow_origins=(ALLOWED,))) as base:
        yield base


@pytest.fixture
def client(url):
    with httpx.Client(base_url=url, timeout=60) as session:
        yield session


def answered(client) -> int:
    return client.get("/healthz").json()["inference"]["requests"]


def test_pages_and_answers_carry_security_headers(client):
    for path in ("/", "/static/app.js", "/v1/labels", "/healthz", "/v1/nothing", "/docs"):
        response = client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        assert response.headers["Referrer-Policy"] == "no-referrer"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    page = client.get("/").headers["Content-Security-Policy"]
    assert page == PAGE_CSP and "script-src 'self'" in page and "'unsafe-inline'" not in page
    assert "media-src 'self' blob:" in page  # the recording plays back from a blob: URL
    api = client.get("/v1/labels").headers["Content-Security-Policy"]
    assert api.startswith("default-src 'none'")
    assert "server" not in client.get("/healthz").headers  # no version banner


def test_cors_is_closed_by_default(client):
    preflight = client.options(
        "/v1/predict",
        headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "x-api-key"},
    )  # fmt: skip
    assert "access-control-allow-origin" not in preflight.headers
    labels = client.get("/v1/labels", headers={"Origin": ALLOWED})
    assert labels.status_code == 200 and "access-control-allow-origin" not in labels.headers


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},  # sandboxed frames, file:// pages
        {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "cross-site"},  # Origin withheld
        {"Origin": "http://127.0.0.1:1", "Sec-Fetch-Site": "same-site"},  # another port
    ],
)
@pytest.mark.parametrize(
    "kind", ["multipart/form-data", "text/plain", "application/x-www-form-urlencoded"]
)  # the types a browser sends cross-origin without asking first
def test_cross_origin_posts_are_refused_before_inference(client, headers, kind):
    before = answered(client)
    data = encode(tone(1.0, 300))
    if kind == "multipart/form-data":
        response = post_file(client, data, headers=headers)
    else:
        response = client.post(
            "/v1/predict", content=data, headers={**headers, "Content-Type": kind}
        )
    assert response.status_code == 403, response.text
    error = response.json()["error"]
    assert error["code"] == "cross_origin" and "--allow-origin" in error["message"]
    assert "access-control-allow-origin" not in response.headers
    assert answered(client) == before


def test_same_origin_pages_and_other_clients_pass(client, url):
    before = answered(client)
    data = encode(tone(1.0, 300))
    for headers in ({}, {"Origin": url, "Sec-Fetch-Site": "same-origin"}, {"Origin": url},
                    {"Sec-Fetch-Site": "none"}):  # fmt: skip
        assert post_file(client, data, headers=headers).status_code == 200, headers
    assert answered(client) == before + 4


def test_allow_origin_opens_cors_for_that_origin_only(open_url):
    with httpx.Client(base_url=open_url, timeout=60) as client:
        preflight = client.options(
            "/v1/predict",
            headers={"Origin": ALLOWED, "Access-Control-Request-Method": "POST",
                     "Access-Control-Request-Headers": "x-api-key, content-type"},
        )  # fmt: skip
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == ALLOWED
        assert "x-api-key" in preflight.headers["access-control-allow-headers"].lower()
        cross = {"Origin": ALLOWED, "Sec-Fetch-Site": "cross-site"}
        answer = post_file(client, encode(tone(1.0, 300)), headers=cross)
        assert (
            answer.status_code == 200 and answer.headers["access-control-allow-origin"] == ALLOWED
        )
        assert "x-model-sha256" in answer.headers["access-control-expose-headers"].lower()
        other = post_file(client, encode(tone(1.0, 300)), headers={"Origin": "http://evil.example"})
        assert other.status_code == 403


BOUNDARY = "sertk-test-boundary"


def multipart(parts: list[tuple[bytes, bytes]], boundary: str = BOUNDARY) -> bytes:
    body = b"".join(
        f"--{boundary}\r\n".encode() + headers + b"\r\n\r\n" + data + b"\r\n"
        for headers, data in parts
    )
    return body + f"--{boundary}--\r\n".encode()


def file_part(name: str = "file", filename: str = "a.wav", extra: bytes = b""):
    disposition = f'Content-Disposition: form-data; name="{name}"; filename="{filename}"'
    return disposition.encode() + extra, encode(tone(1.0, 300))


def text_part(name: str, value: bytes):
    return f'Content-Disposition: form-data; name="{name}"'.encode(), value


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (multipart([file_part(name="f" * 100_000)]), "header line (its field name, file name"),
        (multipart([file_part(filename="a" * 100_000)]), "longer than 4224 bytes"),
        (multipart([text_part(f"x{i}", b"v") for i in range(1000)]), "Maximum number of fields is 16"),
        (multipart([file_part(), file_part(filename="b.wav")]), "Maximum number of files is 1"),
        (multipart([file_part(extra=b"".join(b"\r\nX-%d: v" % i for i in range(100)))]),
         "more than 8 header lines"),
        (multipart([text_part("note", b"t" * 200_000), file_part()]), "maximum size of 64KB"),
        (multipart([(b'Content-Disposition: form-data; filename="a.wav"', b"RIFF")]),
         '"name" must be provided'),
        (b"no multipart here", "Expected boundary character"),
    ],
)  # fmt: skip
def test_absurd_multipart_bodies_get_precise_400s(client, body, fragment):
    headers = {"Content-Type": f"multipart/form-data; boundary={BOUNDARY}"}
    response = client.post("/v1/predict", content=body, headers=headers)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "bad_multipart" and fragment in error["message"], error["message"]


def test_absurd_boundaries_get_precise_400s(client):
    body = multipart([file_part()], boundary="b" * 5000)
    long = client.post("/v1/predict", content=body,
                       headers={"Content-Type": "multipart/form-data; boundary=" + "b" * 5000})  # fmt: skip
    assert "Boundary length 5000 exceeds maximum of 256" in long.json()["error"]["message"]
    missing = client.post("/v1/predict", content=body,
                          headers={"Content-Type": "multipart/form-data"})  # fmt: skip
    assert "Missing boundary" in missing.json()["error"]["message"]
