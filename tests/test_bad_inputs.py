"""The bad-input corpus (``tests/bad_inputs.py``, made by the ``bad_inputs`` fixture) through the
CLI, the Python API and the REST server: each kind is refused with a precise error that names
the problem, never a traceback, a hang or a 500.

Set ``SERTK_BAD_INPUT_TABLE=path.md`` to also write the kind x interface table of outcomes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from sertk.cli import main
from sertk.errors import AudioError, BundleError, SertkError
from sertk.recognizer import Recognizer

REPO = Path(__file__).resolve().parents[1]
CLIP = REPO / "examples" / "03a02Wc.flac"
OUTCOMES: dict[str, dict[str, str]] = {}  # kind -> interface -> outcome, for the table


def matches(pattern: str, text: str) -> bool:
    return re.search(pattern, text, re.IGNORECASE | re.DOTALL) is not None


def record(kind: str, interface: str, outcome: str) -> None:
    OUTCOMES.setdefault(kind, {})[interface] = outcome


def audio(bad_inputs):
    return [item for item in bad_inputs if not item.kind.startswith("bundle")]


def bundles(bad_inputs):
    return [item for item in bad_inputs if item.kind.startswith("bundle")]


@pytest.fixture(scope="module")
def recognizer():
    return Recognizer.load("default")


def test_the_corpus_has_every_kind(bad_inputs):
    kinds = [item.kind for item in bad_inputs]
    assert len(kinds) == len(set(kinds)) >= 42
    for needed in ("empty_file", "header_only_wav", "truncated_flac", "truncated_ogg_vorbis",
                   "truncated_mp3", "nan_samples", "wav_rate_1_hz", "wav_rate_0_hz",
                   "wav_65535_channels", "directory", "symlink_loop", "unicode_name_truncated",
                   "newline_name_text", "three_hours_silence_flac", "bundle_labels_reversed",
                   "bundle_duration_1e12", "bundle_wrong_checksum", "bundle_missing_weights"):  # fmt: skip
        assert needed in kinds
    three_hours = next(i for i in bad_inputs if i.kind == "three_hours_silence_flac").path
    assert three_hours.stat().st_size < 1_000_000


def test_api_refuses_each_kind_precisely(bad_inputs, recognizer):
    failures = []
    for item in audio(bad_inputs):
        for method in ("predict_file", "timeline"):
            try:
                getattr(recognizer, method)(item.path, **item.api_options)
                outcome = "no error"
            except AudioError as error:
                outcome = f"{type(error).__name__}: {error}"
            if not matches(item.expect, outcome):
                failures.append(f"{item.kind} ({method}): {outcome}")
        record(item.kind, "API", outcome.split(":")[0])
    for item in bundles(bad_inputs):
        try:
            Recognizer.load(item.path)
            outcome = "no error"
        except BundleError as error:
            outcome = f"BundleError: {error}"
        if not matches(item.expect, outcome):
            failures.append(f"{item.kind}: {outcome}")
        record(item.kind, "API", outcome.split(":")[0])
    assert not failures, "\n".join(failures)


def _cli(arguments: list[str], capsys) -> tuple[int, str]:
    code = main(arguments)
    captured = capsys.readouterr()
    return code, captured.err


def test_cli_refuses_each_kind_precisely(bad_inputs, capsys):
    failures = []
    for item in audio(bad_inputs):
        for mode in ([], ["--timeline"]):
            code, err = _cli(["predict", str(item.path), "--no-progress", *mode, *item.cli_args],
                             capsys)  # fmt: skip
            expect = item.cli or item.expect
            if code not in (1, 2) or "Traceback" in err or not matches(expect, err):
                failures.append(f"{item.kind} {mode}: exit {code}: {err!r}")
        record(item.kind, "CLI", f"exit {code}")
    for item in bundles(bad_inputs):
        code, err = _cli(["predict", str(CLIP), "--model", str(item.path), "--no-progress"], capsys)
        if code != 2 or "Traceback" in err or not matches(item.expect, err):
            failures.append(f"{item.kind}: exit {code}: {err!r}")
        record(item.kind, "CLI", f"exit {code}")
    assert not failures, "\n".join(failures)


def test_the_real_cli_process_reports_each_file_and_goes_on(bad_inputs):
    """One ``sertk predict`` process over every uploadable kind and a good clip: one precise line
    per bad file on stderr, the good clip's result on stdout, exit status 1, no traceback."""
    files = [str(item.path) for item in audio(bad_inputs) if item.upload and not item.cli_args]
    result = subprocess.run(
        [sys.executable, "-m", "sertk", "predict", *files, str(CLIP), "--no-progress"],
        capture_output=True, text=True, cwd=REPO, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "03a02Wc.flac" in result.stdout and "angry" in result.stdout
    for item in audio(bad_inputs):
        if str(item.path) in files:
            assert matches(item.expect, result.stderr), item.kind


def test_pinning_refuses_any_other_bundle(capsys):
    from sertk.bundle import load_bundle

    digest = load_bundle("default").content_hash
    other = "0" * 64
    code, err = _cli(["predict", str(CLIP), "--model-sha256", other, "--no-progress"], capsys)
    assert code == 2 and f"not the pinned {other}" in err and digest in err
    assert _cli(["predict", str(CLIP), "--model-sha256", digest, "--no-progress"], capsys)[0] == 0
    with pytest.raises(SertkError, match="64 hex digits"):
        Recognizer.load("default", sha256="abc")
    record("model_sha256_mismatch", "CLI", "exit 2")


# --- REST ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server():
    pytest.importorskip("fastapi")
    httpx = pytest.importorskip("httpx")
    from test_server import live_server

    from sertk.server import create_app

    app = create_app(Recognizer.load("default"), max_duration_s=600)
    with live_server(app) as base, httpx.Client(base_url=base, timeout=120) as client:
        yield client


def test_rest_refuses_each_uploadable_kind_with_a_precise_4xx(bad_inputs, server):
    failures = []
    for item in audio(bad_inputs):
        if not item.upload:
            record(item.kind, "REST", "n/a (not a file to upload)")
            continue
        for route in ("/v1/predict", "/v1/timeline"):
            with open(item.path, "rb") as handle:
                files = {"file": (item.path.name, handle, "application/octet-stream")}
                response = server.post(route, files=files)
            body = response.json()
            message = body.get("error", {}).get("message", "") if isinstance(body, dict) else ""
            expect = item.rest or item.expect
            if not 400 <= response.status_code < 500 or not matches(expect, message):
                failures.append(f"{item.kind} {route}: {response.status_code} {body}")
        record(item.kind, "REST", f"{response.status_code} {body['error']['code']}")
    assert not failures, "\n".join(failures)
    assert server.get("/healthz").status_code == 200  # and the server still answers


def test_rest_one_hertz_says_sample_rate_not_too_long(bad_inputs, server):
    item = next(i for i in bad_inputs if i.kind == "wav_rate_1_hz")
    response = server.post("/v1/predict", files={"file": ("one_hz.wav", item.path.read_bytes())})
    message = response.json()["error"]["message"]
    assert response.status_code == 400 and "sample rate" in message and "long" not in message


def test_a_server_refuses_to_start_with_a_tampered_bundle(bad_inputs):
    pytest.importorskip("fastapi")
    from sertk.server import create_app

    for item in bundles(bad_inputs):
        with pytest.raises(BundleError) as error:
            create_app(item.path)
        assert matches(item.expect, str(error.value)), item.kind
        record(item.kind, "REST", "refused at server start (BundleError)")


def test_write_the_table():
    """``SERTK_BAD_INPUT_TABLE=out.md``: the kind x interface outcomes of the tests above."""
    target = os.environ.get("SERTK_BAD_INPUT_TABLE")
    if not target or not OUTCOMES:
        pytest.skip("set SERTK_BAD_INPUT_TABLE=path.md (and run the whole module) for the table")
    lines = ["| kind | CLI | API | REST |", "|---|---|---|---|"]
    for kind, row in OUTCOMES.items():
        lines.append(
            f"| {kind} | {row.get('CLI', '')} | {row.get('API', '')} | {row.get('REST', '')} |"
        )
    Path(target).write_text("\n".join(lines) + "\n", encoding="utf-8")
