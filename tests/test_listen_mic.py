"""Live input from a real (virtual) microphone: PulseAudio with a pipe source, through PortAudio.

``scripts/virtual_mic.sh`` starts a user-mode PulseAudio whose default source "vmic" plays what
is written into a fifo; this module writes PCM into it at real-time pace (silence in between)
and records through ``sounddevice`` exactly as from a microphone. Skips cleanly when Debian
``pulseaudio`` or ``libportaudio2`` is missing (``scripts/system-deps.sh`` installs them).
"""

from __future__ import annotations

import os
import queue
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from conftest import voice
from test_live import TONES, tone_bundle

from sertk.live import MicrophoneSource, StreamingEngine, list_devices

pytestmark = pytest.mark.slow  # real-time audio: a few seconds per test

RATE = 16000
CHUNK = 800  # samples written per 50 ms
SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "virtual_mic.sh"


class VirtualMicrophone:
    """The fifo writer: queued int16 PCM at real-time pace, silence when nothing is queued."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self._pending: queue.Queue[np.ndarray] = queue.Queue()
        self._stop = threading.Event()
        self._fifo = open(folder / "vmic.fifo", "wb", buffering=0)  # noqa: SIM115
        self._thread = threading.Thread(target=self._write, daemon=True)
        self._thread.start()

    def play(self, pcm: np.ndarray) -> None:
        """Queue int16 ``[samples]`` after what is already queued."""
        for start in range(0, len(pcm), CHUNK):
            chunk = pcm[start : start + CHUNK]
            self._pending.put(np.pad(chunk, (0, CHUNK - len(chunk))).astype("<i2"))

    def clear(self) -> None:
        while not self._pending.empty():
            self._pending.get_nowait()

    def _write(self) -> None:
        due = time.monotonic()
        silence = np.zeros(CHUNK, "<i2")
        while not self._stop.is_set():
            try:
                chunk = self._pending.get_nowait()
            except queue.Empty:
                chunk = silence
            try:
                self._fifo.write(chunk.tobytes())
            except OSError:  # the daemon is gone (teardown)
                return
            due += CHUNK / RATE
            time.sleep(max(0.0, due - time.monotonic()))

    def close(self) -> None:
        """Stop writing; call after the daemon stopped, so a blocked write ends too."""
        self._stop.set()
        self._thread.join(5)
        self._fifo.close()


def _reload_portaudio() -> None:
    """PortAudio lists devices once, when initialised: re-read them (sounddevice's own way)."""
    import sounddevice

    sounddevice._terminate()
    sounddevice._initialize()


@pytest.fixture(scope="module")
def virtual_mic(tmp_path_factory):
    if shutil.which("pulseaudio") is None:
        pytest.skip("Debian pulseaudio is not installed (scripts/system-deps.sh)")
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError) as error:
        pytest.skip(f"sounddevice/PortAudio unavailable ({error}); install libportaudio2")
    folder = tmp_path_factory.mktemp("vmic")
    started = subprocess.run(
        [str(SCRIPT), "start", str(folder)], capture_output=True, text=True, timeout=30
    )
    if started.returncode != 0:
        pytest.skip(f"the virtual microphone did not start: {started.stderr[-500:]}")
    env = dict(
        line.removeprefix("export ").split("=", 1)
        for line in started.stdout.splitlines()
        if line.startswith("export ")
    )
    saved = {key: os.environ.get(key) for key in env}
    mic = None
    try:
        mic = VirtualMicrophone(folder, env)
        os.environ.update(env)
        _reload_portaudio()
        yield mic
    finally:
        subprocess.run([str(SCRIPT), "stop", str(folder)], timeout=30, check=False)
        if mic is not None:
            mic.close()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        _reload_portaudio()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return tone_bundle(tmp_path_factory.mktemp("mic") / "bundle")


def pcm(
    duration: float, frequency: float | None, amplitude: float = 0.3, *, pure: bool = False
) -> np.ndarray:
    """16-bit samples: a voice at that pitch (tones are no speech), or with ``pure`` a sine."""
    t = np.arange(round(duration * RATE)) / RATE
    if pure and frequency:
        signal = amplitude * np.sin(2 * np.pi * frequency * t)
    else:
        signal = voice(duration, frequency, amplitude=amplitude, noise=0.0) if frequency else 0 * t
    return np.round(signal * 32767).astype("<i2")


def test_the_virtual_microphone_is_listed(virtual_mic):
    names = [d["name"] for d in list_devices() if d["inputs"] > 0]
    assert "pulse" in names or "default" in names


def test_microphone_source_captures_the_samples_bit_exact(virtual_mic):
    source = MicrophoneSource(sampling_rate=RATE, block=0.1)
    tone = pcm(1.0, 440.0)
    captured = []
    for block in source:
        if not captured:
            virtual_mic.play(tone)  # the stream is open: play into it
        captured.append(block)
        if sum(map(len, captured)) >= 2.5 * RATE:
            source.close()
    signal = np.concatenate(captured)
    assert signal.dtype == np.float32 and source.dropped == 0
    expected = tone.astype(np.float32) / 32768
    expected = expected[np.flatnonzero(expected)[0] :]
    first = np.flatnonzero(signal)[0]
    np.testing.assert_array_equal(signal[first : first + len(expected)], expected)


def test_microphone_source_resamples_from_the_device_rate(virtual_mic):
    source = MicrophoneSource(sampling_rate=RATE, block=0.1, device_rate=48000)
    assert source.device_rate == 48000
    captured = []
    for block in source:
        if not captured:
            virtual_mic.play(pcm(1.0, 440.0, pure=True))  # a sine: its pitch is exact
        captured.append(block)
        if sum(map(len, captured)) >= 2.5 * RATE:
            source.close()
    signal = np.concatenate(captured)
    loud = np.flatnonzero(np.abs(signal) > 0.05)
    tone = signal[loud[0] : loud[-1] + 1]
    assert len(tone) == pytest.approx(RATE, abs=0.02 * RATE)  # 1 s, at 16 kHz again
    spectrum = np.abs(np.fft.rfft(tone * np.hanning(len(tone))))
    assert np.fft.rfftfreq(len(tone), 1 / RATE)[spectrum.argmax()] == pytest.approx(440, abs=2)
    assert np.sqrt(np.mean(tone**2)) == pytest.approx(0.3 / np.sqrt(2), rel=0.05)


def test_engine_reports_silence_and_the_emotion_from_the_microphone(virtual_mic, bundle):
    from sertk.recognizer import Recognizer

    results: queue.Queue = queue.Queue()
    engine = StreamingEngine.from_recognizer(Recognizer.load(bundle), on_result=results.put)
    labels = []

    def finished() -> bool:  # the tone came and went
        return "angry" in labels and labels[-3:] == ["silence"] * 3

    with engine.start(MicrophoneSource(sampling_rate=RATE)):
        # the first result comes once a full window (3 s) has been recorded: silence, since
        # nothing is played before it (the fifo writer sends digital silence meanwhile)
        labels.append(results.get(timeout=30).label)
        virtual_mic.play(np.concatenate([pcm(2.0, TONES["angry"]), pcm(2.5, None)]))
        deadline = time.monotonic() + 30
        while not finished() and time.monotonic() < deadline:
            try:
                labels.append(results.get(timeout=1).label)
            except queue.Empty:
                assert engine.error is None, engine.error
    virtual_mic.clear()
    engine.raise_error()
    changes = [x for i, x in enumerate(labels) if i == 0 or labels[i - 1] != x]
    assert changes[:3] == ["silence", "angry", "silence"]
    assert all(r.latency_s >= 0 and r.level_db <= 0 for r in engine.history)


def test_sertk_listen_records_from_the_microphone(virtual_mic, bundle, tmp_path):
    output = tmp_path / "history.csv"
    command = [sys.executable, "-m", "sertk", "listen", "--model", str(bundle)]
    command += ["--duration", "6", "--output", str(output)]
    process = subprocess.Popen(
        command,
        env={**os.environ, **virtual_mic.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        header = ""
        while "listening to" not in header and process.poll() is None:
            header = process.stderr.readline()
        assert "listening to microphone" in header, header + process.stderr.read()
        first = process.stdout.readline()  # once a full window (3 s) has been recorded
        virtual_mic.play(pcm(2.5, TONES["happy"]))
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
        virtual_mic.clear()
    assert process.returncode == 0, err
    assert first.split()[1] == "silence" and float(first.split()[0].rstrip("s")) >= 3.0
    lines = [first, *out.splitlines()]  # stdout is a pipe: one line per result
    assert all(line.split()[1] in ("happy", "silence") for line in lines)
    assert "happy" in out
    rows = output.read_text().splitlines()
    assert rows[0].startswith("time,start,label") and len(rows) == len(lines) + 1
