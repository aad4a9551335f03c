""" "No speech" is an answer: the detector (``sertk.features.voicing``) and the ``no speech``
label in the Python API, the CLI (table, JSON, CSV), REST, the timeline and live analysis,
with the shipped default model (it used to answer "sad 0.9999998" for silence)."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import voice

from sertk.cli import main
from sertk.features.voicing import check_speech
from sertk.live import FileSource, StreamingEngine
from sertk.recognizer import NO_SPEECH, Recognizer

RATE = 16000
EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "03a02Wc.flac"  # EmoDB, angry


def seconds(value: float) -> np.ndarray:
    return np.arange(round(value * RATE)) / RATE


def sine(frequency: float, duration: float = 3.0, amplitude: float = 0.3) -> np.ndarray:
    return (amplitude * np.sin(2 * np.pi * frequency * seconds(duration))).astype(np.float32)


NON_SPEECH = {
    "3 s of digital silence": (np.zeros(3 * RATE, np.float32), "silent"),
    "1 sample": (np.array([0.3], np.float32), "too short"),
    "10 ms": (0.1 * np.random.default_rng(0).standard_normal(160).astype(np.float32), "too short"),
    "DC offset": (np.full(3 * RATE, 0.4, np.float32), "no voicing"),
    "220 Hz tone": (sine(220), "pure tone"),
    "1 kHz tone, quiet": (sine(1000, amplitude=0.003), "pure tone"),
    "3 kHz tone": (sine(3000), "pure tone"),
    "white noise": (
        0.1 * np.random.default_rng(1).standard_normal(3 * RATE).astype(np.float32),
        "no voicing",
    ),  # fmt: skip
    "square wave 220 Hz": (0.3 * np.sign(sine(220)), "steady pitch"),
    "chirp 100-1000 Hz": (
        (0.3 * np.sin(2 * np.pi * np.cumsum(np.geomspace(100, 1000, 3 * RATE)) / RATE)).astype(
            np.float32
        ),
        "pure tone",
    ),  # fmt: skip
}


@pytest.mark.parametrize("name", list(NON_SPEECH))
def test_the_detector_finds_no_speech_in(name):
    signal, reason = NON_SPEECH[name]
    check = check_speech(signal, RATE)
    assert not check.speech and check.reason == reason and check.speech_seconds == 0.0


def test_the_detector_hears_voices_real_and_synthetic():
    for f0 in (90, 150, 250, 400):
        check = check_speech(voice(1.0, f0), RATE)
        assert check.speech and check.reason == "" and check.f0_spread > 0.5
    signal, rate = sf.read(EXAMPLE, dtype="float32")
    padded = np.concatenate([signal, np.zeros(10 * rate, np.float32)])
    alone, long = check_speech(signal, rate), check_speech(padded, rate)
    assert alone.speech and long.speech
    assert long.voiced_seconds == pytest.approx(alone.voiced_seconds, abs=0.05)
    assert long.speech_seconds < 0.3 * long.duration  # the silence is no speech
    resampled = check_speech(signal, rate) == check_speech(signal, rate)
    assert resampled  # deterministic


@pytest.fixture(scope="module")
def default():
    return Recognizer.load("default")


def test_the_default_model_says_no_speech_and_keeps_the_clips_emotion(default):
    signal, rate = sf.read(EXAMPLE, dtype="float32")
    batch = [np.zeros(3 * RATE, np.float32), sine(220), np.full(3 * RATE, 0.4, np.float32),
             np.array([0.3], np.float32), signal, np.concatenate([signal, np.zeros(10 * rate,
             np.float32)])]  # fmt: skip
    got = default.predict_batch(batch, sampling_rate=RATE)
    for prediction in got[:4]:
        assert prediction.label == NO_SPEECH and not prediction.speech
        assert prediction.confidence is None and prediction.no_speech
        assert set(prediction.probabilities) == set(default.labels)  # kept for the record
        assert json.loads(json.dumps(prediction.to_dict()))["speech"] is False
    assert got[4].speech and got[4].label == "angry"
    assert got[5].speech and got[5].label == "angry"  # 10 s of silence do not hide the speech
    assert got[0].top() and got[0].no_speech == "silent"
    off = Recognizer.load("default", speech_check=False).predict_signal(sine(220), RATE)
    assert off.speech and off.label != NO_SPEECH  # the check can be turned off


@pytest.fixture
def files(tmp_path):
    silence, clip = tmp_path / "silence.wav", tmp_path / "clip.flac"
    sf.write(silence, np.zeros(3 * RATE, np.float32), RATE)
    sf.write(clip, sf.read(EXAMPLE, dtype="float32")[0], RATE)
    return silence, clip


def predict(capsys, *args):
    code = main(["predict", *map(str, args), "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    return out


def test_the_cli_says_no_speech_in_every_format(files, capsys):
    silence, clip = files
    lines = predict(capsys, silence, clip).splitlines()
    assert lines[1].split()[1:] == ["no", "speech", "-", "(silent)"]
    assert lines[2].split()[1] == "angry"
    records = json.loads(predict(capsys, silence, clip, "--format", "json"))
    assert records[0]["label"] == NO_SPEECH and records[0]["speech"] is False
    assert records[0]["confidence"] is None and records[1]["speech"] is True
    rows = list(csv.DictReader(io.StringIO(predict(capsys, silence, clip, "--format", "csv"))))
    assert rows[0]["label"] == NO_SPEECH and rows[0]["speech"] == "false"
    assert rows[0]["confidence"] == "" and rows[1]["speech"] == "true"
    picture = silence.with_suffix(".png")
    predict(capsys, silence, "--plot", picture)  # the explain picture says so too
    assert picture.read_bytes().startswith(b"\x89PNG")


def test_the_timeline_marks_sound_without_speech_apart_from_silence(default):
    signal, rate = sf.read(EXAMPLE, dtype="float32")
    quiet = np.zeros(RATE, np.float32)
    recording = np.concatenate([quiet, signal, quiet, sine(440, 3.0), quiet, signal, quiet])
    timeline = default.timeline(recording, sampling_rate=RATE, hop=0.5)
    labels = [s.label for s in timeline.segments]
    assert labels.count(NO_SPEECH) == 1 and "silence" in labels and "angry" in labels
    tone = next(s for s in timeline.segments if s.label == NO_SPEECH)
    start = 2 + len(signal) / RATE
    assert abs(tone.start - start) < 0.3 and abs(tone.end - (start + 3)) < 0.3
    assert tone.confidence is None and tone.probabilities is None and not tone.speech
    rows = timeline.to_rows()
    assert any(row["label"] == NO_SPEECH and row["speech"] is False for row in rows)


def test_live_results_say_no_speech_for_a_tone(default, tmp_path):
    path = tmp_path / "tone.wav"
    sf.write(path, np.concatenate([np.zeros(RATE // 2, np.float32), sine(330, 4.0)]), RATE)
    engine = StreamingEngine.from_recognizer(default, deterministic=True, hop=0.5)
    history = engine.run(FileSource(path, sampling_rate=RATE, realtime=False))
    assert history and all(r.label in (NO_SPEECH, "silence") for r in history)
    assert any(r.label == NO_SPEECH for r in history)
    assert all(r.probabilities is None and not r.speech for r in history)
    assert engine.stats["no_speech"] == sum(r.label == NO_SPEECH for r in history)


def test_rest_answers_200_with_the_flag(default):
    pytest.importorskip("fastapi")
    import httpx
    from test_server import encode, live_server

    from sertk.server import create_app

    with live_server(create_app(default)) as url, httpx.Client(base_url=url, timeout=60) as client:
        answer = client.post("/v1/predict", content=encode(np.zeros(3 * RATE, np.float32)),
                             headers={"Content-Type": "audio/wav"})  # fmt: skip
        assert answer.status_code == 200
        body = answer.json()
        assert body["label"] == NO_SPEECH and body["speech"] is False
        assert body["confidence"] is None and body["no_speech"] == "silent"
        one = client.post("/v1/predict", content=encode(np.array([0.2], np.float32)),
                          headers={"Content-Type": "audio/wav"})  # fmt: skip
        assert one.status_code == 200 and one.json()["no_speech"] == "too short"
