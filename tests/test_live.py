"""The live engine: ring buffer, gate, deterministic file analysis, overload, errors, history, CLI.

End-to-end tests use a real bundle (log-mel + mean-pool, saved with ``save_bundle``) whose
weights are set so that each label answers to a tone: a 200 Hz tone is "neutral", 700 Hz
"happy", 2500 Hz "angry". So labels can be asserted exactly, with no training and no mocks.
"""

from __future__ import annotations

import csv
import json
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from sertk.cli import main
from sertk.errors import AudioError, ConfigError, SertkError
from sertk.live import (
    EnergyGate,
    FileSource,
    IteratorSource,
    RingBuffer,
    StreamingEngine,
    list_devices,
    save_history,
)
from sertk.live.display import TerminalDisplay, render_line, render_panel

RATE = 16000
TONES = {"neutral": 200.0, "happy": 700.0, "angry": 2500.0}
LABELS = list(TONES)


def tone_bundle(path: Path, *, duration: float = 3.0) -> Path:
    """Save a real bundle whose model maps each tone of ``TONES`` to its label."""
    import torch

    from sertk.bundle import save_bundle
    from sertk.features import build_extractor
    from sertk.models import MeanPoolClassifier

    extractor = build_extractor({"name": "logmel", "n_mels": 16})
    model = MeanPoolClassifier(16, len(LABELS), hidden=0, dropout=0.0)
    weight = torch.zeros(len(LABELS), 16)
    for row, frequency in enumerate(TONES.values()):
        band = int(extractor(sine(1.0, frequency), RATE).mean(axis=0).argmax())
        weight[row, band] = 0.5
    with torch.no_grad():
        model.head[-1].weight.copy_(weight)
        model.head[-1].bias.zero_()
    label_map = {"name": None, "labels": LABELS, "mapping": {x: x for x in LABELS}}
    preprocess = {"sampling_rate": RATE, "duration": duration, "crop": "start"}
    return save_bundle(
        path,
        model=model,
        model_name="mean_pool",
        labels=LABELS,
        label_map=label_map,
        features=extractor,
        preprocess=preprocess,
    )


def sine(duration: float, frequency: float | None, *, amplitude: float = 0.3) -> np.ndarray:
    """A tone (or silence for None) plus seeded noise at about -70 dBFS: float32 ``[samples]``."""
    t = np.arange(round(duration * RATE)) / RATE
    signal = amplitude * np.sin(2 * np.pi * frequency * t) if frequency else np.zeros_like(t)
    noise = np.random.default_rng(round(duration * 1000)).normal(0.0, 3e-4, t.size)
    return (signal + noise).astype(np.float32)


def write_script(path: Path, parts: list[tuple[float, str | None]]) -> Path:
    """A wav of consecutive ``(seconds, label or None for silence)`` parts."""
    signal = np.concatenate([sine(d, TONES[x] if x else None) for d, x in parts])
    sf.write(path, signal, RATE)
    return path


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return tone_bundle(tmp_path_factory.mktemp("live") / "bundle")


@pytest.fixture(scope="module")
def recognizer(bundle):
    from sertk.recognizer import Recognizer

    return Recognizer.load(bundle)


SCRIPT = [(2.0, "neutral"), (2.0, None), (2.0, "angry")]


# --- parts --------------------------------------------------------------------------------


def test_ring_buffer_keeps_the_newest_samples_across_wraps():
    ring = RingBuffer(5)
    for start in range(0, 23, 3):
        ring.write(np.arange(start, start + 3, dtype=np.float32))
    assert ring.total == 24 and ring.oldest == 19 and ring.nbytes == 20
    assert ring.read(24, 5).tolist() == [19, 20, 21, 22, 23]
    assert ring.read(22, 2).tolist() == [20, 21]
    ring.write(np.arange(100, 112, dtype=np.float32))  # longer than the buffer
    assert ring.read(ring.total, 5).tolist() == [107, 108, 109, 110, 111]
    with pytest.raises(SertkError, match="not in the buffer"):
        ring.read(ring.total, 6)


def test_energy_gate_tells_sound_from_silence():
    gate = EnergyGate()
    assert not gate(sine(3.0, None), RATE)
    assert gate(sine(3.0, 300.0), RATE)
    # the gate looks at the end of the window: speech long ago is silence now
    assert not gate(np.concatenate([sine(1.5, 300.0), sine(1.5, None)]), RATE)
    assert gate(np.concatenate([sine(2.6, None), sine(0.4, 300.0)]), RATE)
    for bad in ({"threshold_db": 5.0}, {"min_speech": 2.0, "span": 1.0}, {"span": "1"}):
        with pytest.raises(ConfigError, match="EnergyGate"):
            EnergyGate(**bad)


def test_bad_engine_options_are_refused():
    predict = lambda signal, rate: [0.5, 0.5]  # noqa: E731
    cases = [
        ({"hop": 4.0}, "hop"),
        ({"buffer": 3.2}, "buffer"),
        ({"smoothing": 0.0}, "smoothing"),
        ({"labels": ["a"]}, "labels"),
        ({"labels": ["a", "a"]}, "unique"),
        ({"window": -1.0}, "window"),
        ({"sampling_rate": 10}, "sampling"),
        ({"vad": "yes"}, "vad"),
        ({"history": 0}, "history"),
    ]
    for options, message in cases:
        with pytest.raises(ConfigError, match=message):
            StreamingEngine(predict, **{"labels": ["a", "b"], **options})


# --- deterministic analysis of a file -----------------------------------------------------


def test_file_results_every_hop_with_silence_and_labels(tmp_path, recognizer):
    path = write_script(tmp_path / "script.wav", SCRIPT)
    engine = StreamingEngine.from_recognizer(recognizer, deterministic=True)
    results = engine.run(FileSource(path, realtime=False))
    assert [r.time for r in results] == pytest.approx(np.arange(1, 13) * 0.5)
    assert [r.start for r in results] == pytest.approx(np.maximum(0, np.arange(1, 13) * 0.5 - 3))
    labels = {r.time: r.label for r in results}
    assert all(labels[t] == "neutral" for t in (0.5, 1.0, 1.5, 2.0, 2.5))
    assert all(labels[t] == "silence" for t in (3.0, 3.5, 4.0))
    assert all(labels[t] == "angry" for t in (5.0, 5.5, 6.0))
    for r in results:
        assert r.speech == (r.label != "silence") and r.skipped == 0
        if r.speech:
            assert r.confidence == max(r.probabilities.values())
            assert list(r.probabilities) == LABELS
            assert sum(r.probabilities.values()) == pytest.approx(1.0)
        else:
            assert r.confidence is None and r.probabilities is None
    assert results[0].level_db > -20 and results[6].level_db < -60  # tone vs silence
    stats = engine.stats
    assert (stats["results"], stats["silence"], stats["skipped"]) == (12, 3, 0)
    assert stats["samples"] == 6 * RATE


def test_deterministic_runs_repeat_exactly_and_a_last_short_hop_is_analysed(tmp_path, recognizer):
    path = write_script(tmp_path / "odd.wav", [(1.2, "happy"), (0.1, None)])
    runs = [
        StreamingEngine.from_recognizer(recognizer, deterministic=True, hop=0.25).run(
            FileSource(path, realtime=False, block=block)
        )
        for block in (0.1, 0.37)
    ]
    assert [r.time for r in runs[0]] == pytest.approx([0.25, 0.5, 0.75, 1.0, 1.25, 1.3])
    assert [r.label for r in runs[0]] == ["happy"] * 6
    assert [r.probabilities for r in runs[0]] == [r.probabilities for r in runs[1]]


def test_smoothing_is_a_moving_average_over_speech_reset_by_silence():
    rows = iter([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    engine = StreamingEngine(
        lambda signal, rate: next(rows),
        labels=["a", "b"],
        smoothing=0.25,
        window=1.0,
        hop=1.0,
        buffer=2.0,
        deterministic=True,
        vad=EnergyGate(span=0.5),
    )
    blocks = [sine(1.0, 300.0), sine(1.0, 300.0), sine(1.0, None), sine(1.0, 300.0)]
    blocks.append(sine(1.0, 300.0))
    results = engine.run(IteratorSource(blocks))
    assert [r.label for r in results] == ["a", "a", "silence", "b", "b"]
    assert results[1].probabilities == pytest.approx({"a": 0.75, "b": 0.25})
    assert results[3].probabilities == pytest.approx({"a": 0.0, "b": 1.0})  # fresh after silence
    assert results[4].probabilities == pytest.approx({"a": 0.25, "b": 0.75})


# --- overload and bounds ------------------------------------------------------------------


def test_a_busy_worker_skips_to_the_newest_window_and_counts_what_it_skipped():
    """Deterministic overload: the model blocks while 2 s of audio arrive."""
    entered, release = threading.Event(), threading.Event()

    def predict(signal, rate):
        entered.set()
        release.wait(10)
        return [0.9, 0.1]

    engine = StreamingEngine(predict, labels=["a", "b"], vad=False, history=3)
    with engine.start():
        engine.feed(sine(0.5, 300.0))  # window ending at 0.5 s is taken...
        assert entered.wait(10)
        engine.feed(sine(2.0, 300.0))  # ...while 4 more hops arrive
        release.set()
        engine.feed(sine(0.2, 300.0))
        engine.end_of_stream()
        assert engine.wait(10)
    results = engine.history
    assert [r.time for r in results] == pytest.approx([0.5, 2.5, 2.7])
    assert [r.skipped for r in results] == [0, 3, 0]  # 1.0, 1.5 and 2.0 s were stale
    assert engine.stats["skipped"] == 3 and engine.error is None


def test_slow_model_in_real_time_skips_windows_but_stays_current(tmp_path):
    path = write_script(tmp_path / "long.wav", [(3.0, "happy")])
    fed_at_call = []

    def predict(signal, rate):
        fed_at_call.append(engine.stats["samples"])
        time.sleep(0.35)  # slower than the 0.1 s hop
        return [0.5, 0.5]

    engine = StreamingEngine(predict, labels=["a", "b"], hop=0.1, vad=False, history=None)
    results = engine.run(FileSource(path, realtime=True, block=0.05))
    stats = engine.stats
    hops = 30
    assert stats["skipped"] > 0 and stats["results"] < hops
    # every hop of the stream is accounted for: analysed or reported as skipped
    assert (
        stats["results"] + stats["skipped"]
        == hops
        == len(results) + sum(r.skipped for r in results)
    )
    # each analysed window was the newest one due: never more than a hop (+2 blocks) behind the
    # audio fed when the model was called, however long the stream (no growing backlog)
    behind = [fed - round(r.time * RATE) for fed, r in zip(fed_at_call, results, strict=True)]
    assert max(behind) <= round(0.1 * RATE) + 2 * round(0.05 * RATE)
    assert stats["buffer_bytes"] == 5 * RATE * 4  # the same preallocated 5 s buffer


def test_memory_stays_bounded_over_a_long_stream():
    engine = StreamingEngine(lambda s, r: [0.5, 0.5], labels=["a", "b"], vad=False, history=4)
    blocks = (sine(0.5, 300.0) for _ in range(240))  # two minutes of audio
    results = engine.run(IteratorSource(blocks))
    assert len(results) == 4 and engine.stats["samples"] == 120 * RATE
    assert engine.stats["buffer_bytes"] == 5 * RATE * 4
    assert len(engine._arrivals) <= 5 * RATE / 8000 + 1


# --- errors -------------------------------------------------------------------------------


def test_errors_in_the_model_are_surfaced():
    seen = []

    def predict(signal, rate):
        raise ValueError("model exploded")

    engine = StreamingEngine(predict, labels=["a", "b"], vad=False, on_error=seen.append)
    with pytest.raises(SertkError, match="ValueError: model exploded"):
        engine.run(IteratorSource([sine(1.0, 300.0)]))
    assert isinstance(engine.error, ValueError) and seen == [engine.error]


def test_errors_in_the_source_and_bad_outputs_are_surfaced():
    def broken():
        yield sine(0.5, 300.0)
        raise AudioError("the device went away")

    engine = StreamingEngine(lambda s, r: [0.5, 0.5], labels=["a", "b"], vad=False)
    with pytest.raises(AudioError, match="went away"):
        engine.run(IteratorSource(broken()))
    engine = StreamingEngine(lambda s, r: [0.2, 0.3, 0.5], labels=["a", "b"], vad=False)
    with pytest.raises(SertkError, match="2 finite probabilities"):
        engine.run(IteratorSource([sine(1.0, 300.0)]))
    engine = StreamingEngine(lambda s, r: {"a": 1.0}, labels=["a", "b"], vad=False)
    with pytest.raises(SertkError, match=r"lacks labels \['b'\]"):
        engine.run(IteratorSource([sine(1.0, 300.0)]))
    engine = StreamingEngine(lambda s, r: [0.5, 0.5], labels=["a", "b"], sampling_rate=8000)
    with pytest.raises(ConfigError, match="open the source with sampling_rate=8000"):
        engine.run(IteratorSource([sine(1.0, 300.0)]))
    with pytest.raises(AudioError, match="NaN"):
        engine.feed(np.full(10, np.nan, np.float32))
    with pytest.raises(AudioError, match=r"looks like \[samples, channels\]"):
        engine.feed(np.zeros((1600, 2), np.float32))


def test_blocks_of_any_layout_become_mono_float():
    seen = []
    engine = StreamingEngine(
        lambda s, r: seen.append(s) or [0.5, 0.5], labels=["a", "b"], vad=False, hop=0.5,
        deterministic=True,
    )  # fmt: skip
    stereo = np.stack([np.full(8000, 0.5), np.full(8000, -0.25)]).astype(np.float32)
    pcm16 = np.full(8000, -16384, np.int16)
    engine.run(IteratorSource([stereo, pcm16]))
    assert seen[0].dtype == np.float32 and np.all(seen[0] == 0.125)
    assert np.all(seen[1][8000:] == -0.5)


# --- history and display ------------------------------------------------------------------


def test_history_saves_as_csv_and_jsonl(tmp_path, recognizer):
    path = write_script(tmp_path / "short.wav", [(1.0, "angry"), (1.5, None)])
    engine = StreamingEngine.from_recognizer(recognizer, deterministic=True)
    results = engine.run(FileSource(path, realtime=False))
    rows = list(csv.DictReader(engine.save_history(tmp_path / "out" / "h.csv").open()))
    assert [float(row["time"]) for row in rows] == [r.time for r in results]
    assert rows[0]["label"] == "angry" and float(rows[0]["angry"]) == results[0].confidence
    assert rows[-1]["label"] == "silence" and rows[-1]["angry"] == ""
    lines = (engine.save_history(tmp_path / "h.jsonl")).read_text().splitlines()
    assert [json.loads(line) for line in lines] == [r.to_dict() for r in results]
    with pytest.raises(ConfigError, match=r"\.csv or \.jsonl"):
        save_history(tmp_path / "h.txt", results, labels=LABELS)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_display_redraws_on_a_terminal_and_prints_lines_elsewhere(tmp_path, recognizer):
    path = write_script(tmp_path / "d.wav", [(1.0, "angry"), (2.0, None)])
    results = StreamingEngine.from_recognizer(recognizer, deterministic=True).run(
        FileSource(path, realtime=False)
    )
    panel = render_panel(results[0], LABELS)
    assert "ANGRY" in panel[0] and len(panel) == len(LABELS) + 3
    assert "silence" in render_line(results[-1]) and "skipped 0" in render_line(results[-1])

    class Terminal(list):
        def write(self, text):
            self.append(text)

        def flush(self):
            pass

        def isatty(self):
            return True

    screen = Terminal()
    display = TerminalDisplay(LABELS, stream=screen)
    display.show(results[0])
    display.show(results[-1])
    assert screen[0].startswith("\x1b[2K") and screen[1].startswith(f"\x1b[{len(panel)}F")


# --- the CLI ------------------------------------------------------------------------------


def test_listen_plays_a_file_and_saves_the_history(tmp_path, bundle, capsys):
    path = write_script(tmp_path / "cli.wav", [(1.5, "neutral"), (1.5, None)])
    out = tmp_path / "history.jsonl"
    code = main(["listen", "--model", str(bundle), "--file", str(path), "--output", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()  # not a TTY: one line per result
    saved = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(saved) and "neutral" in lines[0] and "silence" in lines[-1]
    # real time: a loaded machine may skip a window, but every hop is accounted for
    assert len(saved) + sum(row["skipped"] for row in saved) == 6 and saved[-1]["time"] == 3.0
    assert {row["time"] for row in saved} <= {0.5, 1.0, 1.5, 2.0, 2.5, 3.0}
    assert f"done: {len(saved)} results" in captured.err


def test_listen_fast_duration_and_bad_options(tmp_path, bundle, capsys):
    path = write_script(tmp_path / "cli.wav", [(4.0, "happy")])
    args = ["listen", "--model", str(bundle), "--file", str(path), "--fast"]
    assert main([*args, "--duration", "1.0", "--hop", "0.25"]) == 0
    assert [line.split()[1] for line in capsys.readouterr().out.splitlines()][:4] == ["happy"] * 4
    for extra, message in [
        (["--output", "h.txt"], r"\.csv or \.jsonl"),
        (["--window", "5"], "longer than the model's 3 s input"),
        (["--hop", "0"], "hop must be a positive"),
    ]:
        assert main([*args, *extra]) == 2
        assert message.replace("\\", "") in capsys.readouterr().err


def test_listen_without_microphone_says_so_and_lists_devices(monkeypatch, bundle, capsys):
    fake = types.SimpleNamespace(
        query_devices=lambda *a: [
            {
                "name": "HDMI out",
                "hostapi": 0,
                "max_input_channels": 0,
                "max_output_channels": 2,
                "default_samplerate": 48000.0,
            },
        ],  # fmt: skip
        query_hostapis=lambda: [{"name": "ALSA"}],
        default=types.SimpleNamespace(device=[-1, 0]),
    )
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    assert main(["listen", "--model", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert "no microphone" in err and "0 HDMI out (ALSA): 0 in, 2 out" in err
    assert main(["listen", "--device", "usb"]) == 2
    assert "no audio input device has 'usb' in its name" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not installed
    assert main(["listen", "--list-devices"]) == 2
    assert "pip install 'sertk[live]'" in capsys.readouterr().err


def test_listen_on_this_machine_without_sound_devices(bundle, capsys):
    try:
        devices = list_devices()
    except AudioError as error:
        pytest.skip(f"no PortAudio here: {error}")
    if any(d["inputs"] > 0 for d in devices):
        pytest.skip("this machine has an audio input; the no-microphone path is tested with a fake")
    assert main(["listen", "--model", str(bundle)]) == 2
    err = capsys.readouterr().err
    assert "no microphone" in err and ("no audio devices found" in err or "devices" in err)
