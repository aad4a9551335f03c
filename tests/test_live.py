"""The live engine: ring buffer, gate, deterministic file analysis, overload, errors, history, CLI.

End-to-end tests use a real bundle (log-mel + mean-pool, saved with ``save_bundle``) whose
weights are set so that each label answers to a tone: a 200 Hz tone is "neutral", 700 Hz
"happy", 2500 Hz "angry". So labels can be asserted exactly, with no training and no mocks.
No verdict here depends on thread scheduling or wall-clock pacing: overload is made with a model
that blocks until the test has fed more audio (real-time latency and skips are measured in
``benchmarks/bench_live.py``).
"""

from __future__ import annotations

import csv
import json
import queue
import sys
import types
import warnings
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import voice

from sertk.cli import main
from sertk.errors import AudioError, ConfigError, SertkError
from sertk.live import (
    EnergyGate,
    FileSource,
    IteratorSource,
    RingBuffer,
    StreamingEngine,
    format_devices,
    list_devices,
    save_history,
)
from sertk.live.display import TerminalDisplay, render_line, render_panel
from sertk.smoothing import average_over_span

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
    t = np.arange(round(duration * RATE)) / RATE  # a voice at that pitch: tones are no speech
    signal = voice(duration, frequency, amplitude=amplitude, noise=0.0) if frequency else 0 * t
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


# 9 s: results every 0.5 s from 3.0 s (the first full window) to 9.0 s
SCRIPT = [(0.5, None), (3.0, "neutral"), (2.0, None), (3.5, "angry")]
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


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
    assert gate(np.concatenate([sine(1.0, None), sine(2.0, 300.0)]), RATE)
    # the gate looks at the end of the window: speech long ago is silence now
    gate.reset()
    assert not gate(np.concatenate([sine(1.5, 300.0), sine(1.5, None)]), RATE)
    gate.reset()
    assert gate(np.concatenate([sine(2.6, None), sine(0.4, 300.0)]), RATE)
    for bad in ({"floor_db": 5.0}, {"margin_db": -1.0}, {"min_speech": 2.0, "span": 1.0},
                {"span": "1"}):  # fmt: skip
        with pytest.raises(ConfigError, match="EnergyGate"):
            EnergyGate(**bad)


def test_energy_gate_learns_the_background_and_keeps_a_speaker_35_db_quieter():
    """The live gate decides with the timeline's rule: an absolute floor plus a margin over the
    noise floor it tracks from window to window, not a fixed dBFS threshold."""
    hum = sine(3.0, 60.0, amplitude=0.05)  # a steady -29 dBFS background (a hum, a fan)
    gate = EnergyGate()
    assert not gate(hum, RATE)  # loud, but the background: the old -45 dBFS gate said speech
    voice = np.concatenate([hum[: 2 * RATE], hum[2 * RATE :] + sine(1.0, 700.0, amplitude=0.3)])
    assert gate(voice, RATE)  # 10 dB and more above the background it learned
    talking = hum + sine(3.0, 700.0, amplitude=0.3)  # a window with no pause in the voice,
    for _ in range(3):  # windows every 0.5 s: each is judged against the carried background
        assert gate(talking, RATE, new=RATE // 2)
    gate.reset()
    assert not gate(talking, RATE)  # (afresh, a window-long steady sound is the background)
    quiet = sine(3.0, None) + np.concatenate([sine(2.0, None), sine(1.0, 300.0)]) * 10 ** (-35 / 20)
    loud = sine(3.0, None) + np.concatenate([sine(2.0, None), sine(1.0, 300.0)])
    for signal in (loud, quiet):  # -13 and -48 dBFS over a -70 dBFS background
        gate.reset()
        assert gate(signal, RATE)
    assert not EnergyGate(floor_db=-40.0)(quiet, RATE)  # below the absolute floor
    with pytest.warns(DeprecationWarning, match="it is called floor_db now"):
        old = EnergyGate(threshold_db=-45.0)
    assert old.floor_db == -45.0


def test_live_and_timeline_follow_the_background_at_the_same_pace():
    """One rule, one noise-floor estimate rising at most 3 dB/s: a steady voice 28 dB over the
    background stays speech for (28 - 10) / 3 = 6 s without a pause, live as in a timeline."""
    from sertk.audio import speech_regions

    hum = sine(7.0, 60.0, amplitude=0.02)  # -37 dBFS
    voice = np.concatenate([sine(3.0, None), sine(4.0, 700.0, amplitude=0.5)])  # -9 dBFS
    signal = hum + voice
    engine = StreamingEngine(
        lambda s, r: [0.9, 0.1], labels=["a", "b"], deterministic=True, history=None
    )
    results = engine.run(
        IteratorSource([signal[i : i + 1600] for i in range(0, len(signal), 1600)])
    )
    assert [(r.time, r.speech) for r in results] == [(3.0, False)] + [
        (3.5 + 0.5 * k, True) for k in range(8)
    ]
    ((start, end),) = speech_regions(signal, RATE)
    assert (start, end) == (pytest.approx(3.0, abs=0.03), 7.0)


def test_bad_engine_options_are_refused():
    predict = lambda signal, rate: [0.5, 0.5]  # noqa: E731
    cases = [
        ({"hop": 4.0}, "hop"),
        ({"buffer": 3.2}, "buffer"),
        ({"smooth": -1.0}, "smooth must be a number of seconds >= 0"),
        ({"smooth": "1"}, "smooth must be"),
        ({"smoothing": 0.0}, r"smoothing must be a weight in \(0, 1\]"),
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


def test_file_results_every_hop_from_the_first_full_window(tmp_path, recognizer):
    path = write_script(tmp_path / "script.wav", SCRIPT)
    engine = StreamingEngine.from_recognizer(recognizer, deterministic=True)
    results = engine.run(FileSource(path, realtime=False))
    assert [r.time for r in results] == pytest.approx(np.arange(6, 19) * 0.5)  # 3.0 ... 9.0
    assert [r.time - r.start for r in results] == pytest.approx([3.0] * 13)  # full windows only
    labels = {r.time: r.label for r in results}
    assert all(labels[t] == "neutral" for t in (3.0, 3.5, 4.0))
    assert all(labels[t] == "silence" for t in (4.5, 5.0, 5.5))
    assert all(labels[t] == "angry" for t in (7.0, 7.5, 8.0, 8.5, 9.0))
    for r in results:
        assert r.speech == (r.label != "silence") and r.skipped == 0
        if r.speech:
            assert r.confidence == max(r.probabilities.values())
            assert list(r.probabilities) == LABELS
            assert sum(r.probabilities.values()) == pytest.approx(1.0)
        else:
            assert r.confidence is None and r.probabilities is None
    assert results[0].level_db > -20 and results[3].level_db < -60  # tone vs silence
    stats = engine.stats
    assert (stats["results"], stats["silence"], stats["skipped"]) == (13, 3, 0)
    assert stats["samples"] == 9 * RATE


def test_nothing_is_scored_before_a_full_window_and_a_short_file_is_scored_whole(tmp_path):
    """The real engine over real clips with the default model: an angry clip (1.5 s) used to
    start "surprised 0.93" from the first 0.5 s; now it is scored once, whole, as angry, and a
    longer recording's first result covers a full window."""
    from sertk.recognizer import Recognizer

    recognizer = Recognizer.load("default")
    clip = EXAMPLES / "03a02Wc.flac"  # EmoDB, angry
    (result,) = StreamingEngine.from_recognizer(recognizer, deterministic=True).run(
        FileSource(clip, realtime=False)
    )
    assert (result.start, result.time) == (0.0, pytest.approx(sf.info(str(clip)).duration))
    assert result.label == "angry" and result.confidence > 0.9
    long = np.concatenate([FileSource(clip).signal, FileSource(EXAMPLES / "16a02Wb.flac").signal])
    sf.write(tmp_path / "two.wav", long, RATE)  # 3.27 s of angry speech
    results = StreamingEngine.from_recognizer(recognizer, deterministic=True).run(
        FileSource(tmp_path / "two.wav", realtime=False)
    )
    assert [(r.start, r.time) for r in results] == [(0.0, 3.0), pytest.approx((0.268, 3.268), 1e-3)]
    assert [r.label for r in results] == ["angry", "angry"]


@pytest.mark.corpora
def test_live_analysis_keeps_a_speaker_35_db_quieter(corpora_dir, tmp_path):
    """The live gate, with the timeline's rule, on two real speakers 35 dB apart (the old
    -45 dBFS gate called the quiet one silence throughout)."""
    from test_audio import quiet_speaker_recording

    from sertk.recognizer import Recognizer

    recording, _, start, end = quiet_speaker_recording(corpora_dir)
    sf.write(tmp_path / "two.wav", recording, RATE)
    engine = StreamingEngine.from_recognizer(Recognizer.load("default"), deterministic=True)
    results = engine.run(FileSource(tmp_path / "two.wav", realtime=False))
    inside = [r for r in results if start + 0.5 <= r.time <= end]
    assert len(inside) >= 2 and all(r.speech and r.label != "silence" for r in inside)
    assert not results[-1].speech  # and the background after it is silence


def test_deterministic_runs_repeat_exactly_and_a_last_short_hop_is_analysed(tmp_path, recognizer):
    path = write_script(tmp_path / "odd.wav", [(0.3, None), (3.2, "happy"), (0.2, None)])
    runs = [
        StreamingEngine.from_recognizer(recognizer, deterministic=True, hop=0.25).run(
            FileSource(path, realtime=False, block=block)
        )
        for block in (0.1, 0.37)
    ]
    assert [r.time for r in runs[0]] == pytest.approx([3.0, 3.25, 3.5, 3.7])
    assert [r.label for r in runs[0]] == ["happy"] * 4
    assert [r.probabilities for r in runs[0]] == [r.probabilities for r in runs[1]]


def test_smoothing_averages_the_last_smooth_seconds_of_speech_reset_by_silence():
    """``smooth=3`` with a result every second: the mean of the last three results, never
    across a silence; the same rule as a timeline's, ending at the result instead of centred."""
    rows = iter([[1.0, 0.0], [0.2, 0.8], [0.0, 1.0], [1.0, 0.0], [0.2, 0.8], [0.0, 1.0],
                 [0.0, 1.0]])  # fmt: skip
    engine = StreamingEngine(
        lambda signal, rate: next(rows),
        labels=["a", "b"],
        smooth=3.0,
        window=1.0,
        hop=1.0,
        buffer=2.0,
        deterministic=True,
        vad=EnergyGate(span=0.5),
    )
    speech, pause = sine(1.0, 300.0), sine(1.0, None)
    results = engine.run(IteratorSource([pause] + [speech] * 3 + [pause] + [speech] * 4))
    labels = ["silence", "a", "a", "b", "silence", "a", "a", "b", "b"]
    assert [r.label for r in results] == labels
    probabilities = [r.probabilities and [r.probabilities["a"], r.probabilities["b"]]
                     for r in results]  # fmt: skip
    expected = [None, [1.0, 0.0], [0.6, 0.4], [0.4, 0.6], None,  # the mean of 1, 2, 3 results
                [1.0, 0.0], [0.6, 0.4], [0.4, 0.6], [0.2 / 3, 2.8 / 3]]  # fmt: skip
    for got, want in zip(probabilities, expected, strict=True):
        assert got == (None if want is None else pytest.approx(want))
    raw = np.array([[1.0, 0.0], [0.2, 0.8], [0.0, 1.0], [0.0, 1.0]])  # the second stretch
    times = np.array([6.0, 7.0, 8.0, 9.0])
    shared = average_over_span(raw, bounds=[5.0, *times], at=times, span=3.0, causal=True)
    assert shared[-1] == pytest.approx(expected[-1])  # the one definition, in sertk.smoothing


def test_the_old_smoothing_weight_still_works_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match=r"use smooth=SECONDS.*read as 1\.5 s"):
        engine = StreamingEngine(lambda s, r: [0.5, 0.5], labels=["a", "b"], smoothing=0.5)
    assert engine.smooth == 1.5  # weight 0.5 at a 0.5 s hop: 3 windows, as --smooth 1.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert StreamingEngine(lambda s, r: [0.5, 0.5], labels=["a", "b"]).smooth == 1.5


# --- overload and bounds ------------------------------------------------------------------


def test_an_overloaded_worker_stays_current_and_accounts_for_every_hop():
    """Deterministic overload, round after round: the model blocks until the test has fed more
    audio (the source is driven by the test). Each call analyses the newest window, exactly at
    the audio fed so far (no backlog however long the stream), and reports what it skipped."""
    started, finish = queue.Queue(), queue.Queue()

    def predict(signal, rate):
        started.put(engine.stats["samples"])  # audio fed when the model is called
        finish.get(timeout=30)
        return [0.9, 0.1]

    engine = StreamingEngine(predict, labels=["a", "b"], window=1.0, vad=False, history=None)
    hop = round(0.5 * RATE)
    with engine.start():
        engine.feed(sine(1.0, 300.0))  # the first full window: a call starts
        fed_at_call = [started.get(timeout=30)]
        for hops in (1, 4, 2, 7, 3, 10):  # hops arriving while the model is busy
            engine.feed(sine(hops * 0.5, 300.0))
            finish.put(None)  # this call returns; the next one takes the newest window
            fed_at_call.append(started.get(timeout=30))
        engine.feed(sine(0.2, 300.0))  # a last, shorter hop
        engine.end_of_stream()
        finish.put(None)
        fed_at_call.append(started.get(timeout=30))
        finish.put(None)
        assert engine.wait(30)
    results = engine.history
    ends = [round(r.time * RATE) for r in results]
    assert ends == fed_at_call  # never behind the audio that had arrived
    assert [e / hop for e in ends[:-1]] == [2, 3, 7, 9, 16, 19, 29]
    assert [r.skipped for r in results] == [0, 0, 3, 1, 6, 2, 9, 0]
    # every window due, at 1.0, 1.5, ... 14.5 s (28), and the tail: analysed or skipped
    assert engine.stats["results"] + engine.stats["skipped"] == 28 + 1
    assert engine.stats["buffer_bytes"] == 5 * RATE * 4  # the same preallocated 5 s buffer
    assert engine.error is None


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
        lambda s, r: seen.append(s) or [0.5, 0.5], labels=["a", "b"], vad=False, window=1.0,
        hop=0.5, deterministic=True,
    )  # fmt: skip
    stereo = np.stack([np.full(8000, 0.5), np.full(8000, -0.25)]).astype(np.float32)
    pcm16 = np.full(8000, -16384, np.int16)
    engine.run(IteratorSource([stereo, pcm16]))
    assert seen[0].dtype == np.float32 and len(seen) == 1  # one full window: 1.0 s
    assert np.all(seen[0][:8000] == 0.125) and np.all(seen[0][8000:] == -0.5)


# --- history and display ------------------------------------------------------------------


def test_history_saves_as_csv_and_jsonl(tmp_path, recognizer):
    path = write_script(tmp_path / "short.wav", [(0.5, None), (3.0, "angry"), (1.5, None)])
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
    path = write_script(tmp_path / "d.wav", [(0.5, None), (3.0, "angry"), (1.5, None)])
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

CLI_SCRIPT = [(0.5, None), (3.0, "neutral"), (1.5, None)]  # 5 s: results at 3.0 ... 5.0


def test_listen_plays_a_file_and_saves_the_history(tmp_path, bundle, capsys):
    """Real time: only facts that hold however the threads are scheduled are asserted (every
    hop accounted for, the last result at the end); labels are checked with --fast below."""
    path = write_script(tmp_path / "cli.wav", CLI_SCRIPT)
    out = tmp_path / "history.jsonl"
    code = main(["listen", "--model", str(bundle), "--file", str(path), "--output", str(out)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()  # not a TTY: one line per result
    saved = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == len(saved) and "silence" in lines[-1]
    assert len(saved) + sum(row["skipped"] for row in saved) == 5 and saved[-1]["time"] == 5.0
    assert {row["time"] for row in saved} <= {3.0, 3.5, 4.0, 4.5, 5.0}
    assert all(row["time"] - row["start"] == 3.0 for row in saved)  # full windows only
    assert f"done: {len(saved)} results" in captured.err
    assert "the first result once 3 s have arrived" in captured.err


def test_listen_fast_labels_duration_and_bad_options(tmp_path, bundle, capsys):
    path = write_script(tmp_path / "cli.wav", CLI_SCRIPT)
    args = ["listen", "--model", str(bundle), "--file", str(path), "--fast"]
    assert main(args) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[:2] for line in lines] == [
        ["3.00s", "neutral"], ["3.50s", "neutral"], ["4.00s", "neutral"], ["4.50s", "silence"],
        ["5.00s", "silence"],
    ]  # fmt: skip
    assert main([*args, "--duration", "3.5", "--hop", "0.25"]) == 0
    assert [line.split()[0] for line in capsys.readouterr().out.splitlines()] == [
        "3.00s", "3.25s", "3.50s"]  # fmt: skip
    for extra, message in [
        (["--output", "h.txt"], r"\.csv or \.jsonl"),
        (["--window", "5"], "longer than the model's 3 s input"),
        (["--hop", "0"], "hop must be a positive"),
        (["--smooth", "-1"], "smooth must be a number of seconds >= 0"),
        (["--vad-margin", "-3"], "--vad-margin must be a finite number in [0.0, 120.0], got -3.0"),
    ]:
        assert main([*args, *extra]) == 2
        assert message.replace("\\", "") in capsys.readouterr().err


def test_a_file_shorter_than_a_window_is_scored_once_whole(bundle, capsys):
    """The default model on an angry EmoDB clip of 1.5 s: one result, over all of it."""
    assert main(["listen", "--file", str(EXAMPLES / "03a02Wc.flac"), "--fast"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.split()[:2] == ["1.50s", "angry"]


def test_listen_keeps_the_old_spellings_for_one_release(tmp_path, bundle, capsys):
    path = write_script(tmp_path / "cli.wav", CLI_SCRIPT)
    args = ["listen", "--model", str(bundle), "--file", str(path), "--fast"]
    assert main([*args, "--smooth", "1.5", "--vad-floor", "-80"]) == 0
    new = [line.split()[:3] for line in capsys.readouterr().out.splitlines()]
    assert (
        main([*args, "--smoothing", "0.5", "--vad-threshold", "-80", "--model-device", "cpu"]) == 0
    )
    captured = capsys.readouterr()
    assert [line.split()[:3] for line in captured.out.splitlines()] == new  # the same results
    assert captured.err.splitlines()[:3] == [
        "sertk listen: deprecated: --model-device is now --device; use --device cpu",
        "sertk listen: deprecated: --smoothing (a weight) is now --smooth SECONDS; --smoothing "
        "0.5 read as 1.5 s (weight 0.5 is about 3 windows every 0.5 s)",
        "sertk listen: deprecated: --vad-threshold is now --vad-floor; use --vad-floor -80",
    ]


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
    table = (
        "audio devices (> default input; use --input INDEX or part of a name):\n"
        "    0 HDMI out (ALSA): 0 in, 2 out, 48000 Hz"
    )
    assert main(["listen", "--model", str(bundle)]) == 2
    assert capsys.readouterr().err == (
        f"sertk listen: error: no microphone (no audio input device) found.\n{table}\n"
    )
    assert main(["listen", "--input", "usb"]) == 2
    assert capsys.readouterr().err == (
        f"sertk listen: error: no audio input device has 'usb' in its name.\n{table}\n"
    )
    # the old spelling: an audio input given as --device, taken as --input with a message
    assert main(["listen", "--device", "USB mic"]) == 2
    assert capsys.readouterr().err.splitlines()[:2] == [
        "sertk listen: deprecated: --device USB mic names an audio input, not a compute device; "
        "use --input USB mic (--device is the compute device: cpu, cuda or cuda:N)",
        "sertk listen: error: no audio input device has 'USB mic' in its name.",
    ]
    assert main(["listen", "--device", "3", "--input", "usb"]) == 2
    assert "the audio input is already --input 'usb'" in capsys.readouterr().err
    assert main(["listen", "--device", "cuda:1", "--input", "3"]) == 2  # cuda:1 is a device
    assert capsys.readouterr().err.startswith(
        "sertk listen: error: device 3 is not an audio input device."
    )
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # not installed
    assert main(["listen", "--list-devices"]) == 2
    assert capsys.readouterr().err == (
        "sertk listen: error: live microphone input needs the sounddevice package: "
        "pip install 'sertk[live]'\n"
    )


def test_listen_on_this_machine_without_sound_devices(bundle, capsys):
    try:
        devices = list_devices()
    except AudioError as error:
        pytest.skip(f"no PortAudio here: {error}")
    if any(d["inputs"] > 0 for d in devices):
        pytest.skip("this machine has an audio input; the no-microphone path is tested with a fake")
    assert main(["listen", "--model", str(bundle)]) == 2
    assert capsys.readouterr().err == (
        "sertk listen: error: no microphone (no audio input device) found.\n"
        f"{format_devices(devices)}\n"
    )
