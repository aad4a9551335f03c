"""The desktop GUI, headless: real widgets, a real bundle, a real streaming engine.

The bundle is a real log-mel + mean-pool model saved with ``save_bundle`` whose weights make
each label answer to a tone (200 Hz "neutral", 700 Hz "happy", 2500 Hz "angry"), so what the
window shows can be compared with what the engine and the Recognizer return, exactly.

Qt runs offscreen (``QT_QPA_PLATFORM=offscreen`` is set before Qt is imported); a real X
window is checked under Xvfb in a subprocess when Xvfb is installed.

Screenshots for the docs: ``test_screenshots`` grabs both pictures into a temporary folder and
checks what they show; ``SERTK_SCREENSHOTS=1`` writes docs/screenshots/gui-live.png and
gui-file.png instead (``SERTK_SCREENSHOT_MODEL`` and ``SERTK_SCREENSHOT_AUDIO`` replace the tone
bundle and script; the README says which ones made the committed pictures).
"""

from __future__ import annotations

import csv
import json
import os
import re
import select
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from conftest import voice

os.environ["QT_QPA_PLATFORM"] = "offscreen"  # before any Qt import
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # as sertk gui does (see sertk.gui.app)

from sertk.cli import main  # noqa: E402

try:
    from PySide6.QtCore import QCoreApplication, QEvent, QEventLoop
except ImportError:
    HAVE_QT = False
else:
    HAVE_QT = True

needs_qt = pytest.mark.skipif(not HAVE_QT, reason="PySide6 missing: pip install 'sertk[gui]'")

RATE = 16000
TONES = {"neutral": 200.0, "happy": 700.0, "angry": 2500.0}
LABELS = list(TONES)
SCRIPT = [(0.5, None), (3.0, "neutral"), (1.5, None), (3.0, "angry")]  # 8 s
REPO = Path(__file__).resolve().parents[1]


def sine(duration: float, frequency: float | None, *, amplitude: float = 0.3) -> np.ndarray:
    """A tone (None: silence) plus seeded noise at about -70 dBFS: float32 ``[samples]``."""
    t = np.arange(round(duration * RATE)) / RATE  # a voice at that pitch: tones are no speech
    signal = voice(duration, frequency, amplitude=amplitude, noise=0.0) if frequency else 0 * t
    noise = np.random.default_rng(round(duration * 1000)).normal(0.0, 3e-4, t.size)
    return (signal + noise).astype(np.float32)


def write_script(path: Path, parts: list[tuple[float, str | None]]) -> Path:
    """A wav of consecutive ``(seconds, label or None for silence)`` parts."""
    sf.write(path, np.concatenate([sine(d, TONES[x] if x else None) for d, x in parts]), RATE)
    return path


def tone_bundle(path: Path) -> Path:
    """A real bundle whose model maps each tone of ``TONES`` to its label."""
    import torch

    from sertk.bundle import save_bundle
    from sertk.features import build_extractor
    from sertk.models import MeanPoolClassifier

    extractor = build_extractor({"name": "logmel", "n_mels": 16})
    model = MeanPoolClassifier(16, len(LABELS), hidden=0, dropout=0.0)
    weight = torch.zeros(len(LABELS), 16)
    for row, frequency in enumerate(TONES.values()):
        weight[row, int(extractor(sine(1.0, frequency), RATE).mean(axis=0).argmax())] = 0.5
    with torch.no_grad():
        model.head[-1].weight.copy_(weight)
        model.head[-1].bias.zero_()
    return save_bundle(
        path,
        model=model,
        model_name="mean_pool",
        labels=LABELS,
        label_map={"name": None, "labels": LABELS, "mapping": {x: x for x in LABELS}},
        features=extractor,
        preprocess={"sampling_rate": RATE, "duration": 3.0, "crop": "start"},
    )


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return tone_bundle(tmp_path_factory.mktemp("gui") / "bundle")


@pytest.fixture(scope="module")
def recognizer(bundle):
    from sertk.recognizer import Recognizer

    return Recognizer.load(bundle)


@pytest.fixture(scope="module")
def script_wav(tmp_path_factory) -> Path:
    return write_script(tmp_path_factory.mktemp("audio") / "script.wav", SCRIPT)


# --- driving the event loop ----------------------------------------------------------------


def pump(until, *, timeout: float = 60.0) -> None:
    """Run the Qt event loop until ``until()`` is true (``timeout`` only guards a hang)."""
    deadline = time.monotonic() + timeout
    while not until():
        if time.monotonic() > deadline:
            raise AssertionError(f"the window did not get there within {timeout} s")
        QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.005)
    QCoreApplication.processEvents()


def settle() -> None:
    """Deliver what is queued, including deferred deletions."""
    QCoreApplication.processEvents()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()


@pytest.fixture(scope="module")
def app():
    if not HAVE_QT:
        pytest.skip("PySide6 missing: pip install 'sertk[gui]'")
    from sertk.gui.app import application

    return application()


@pytest.fixture
def window(app, bundle):
    from sertk.gui.main_window import MainWindow

    window = MainWindow(model=str(bundle))
    window.show()
    pump(lambda: window.recognizer is not None or window.error_banner.text())
    assert window.recognizer is not None, window.error_banner.text()
    yield window
    window.close()
    settle()


def run_file_session(window, path: Path):
    """Feed ``path`` through the live path (deterministic) and wait for every result."""
    from sertk.live import FileSource

    session = window.start_session(FileSource(path, realtime=False), deterministic=True)
    assert session is not None, window.error_banner.text()
    pump(lambda: not session.running)
    settle()
    return session, session.engine.history


def live_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("sertk-live")]


# --- live session --------------------------------------------------------------------------


@needs_qt
def test_a_file_fed_session_updates_every_widget_with_the_engine_results(
    window, script_wav, monkeypatch
):
    threads = []
    add = window.timeline.add
    monkeypatch.setattr(
        window.timeline,
        "add",
        lambda *a, **k: (threads.append(threading.get_ident()), add(*a, **k)),
    )
    session, history = run_file_session(window, script_wav)

    # 8 s at a 0.5 s hop, from the first full window (3 s)
    assert len(history) == 11 and not session.engine.error
    assert [r.time for r in history] == [3.0 + 0.5 * k for k in range(11)]
    labels = [r.label for r in history]
    assert {"neutral", "silence", "angry"} <= set(labels)
    assert labels[-1] == "angry" and labels[0] == "neutral"
    assert set(threads) == {threading.get_ident()}  # widgets only touched on the UI thread

    table = window.table
    assert table.entries == history
    assert table.rows() == [
        (
            f"{r.time:.1f} s",
            r.label,
            "—" if r.confidence is None else f"{r.confidence * 100:.0f} %",
        )
        for r in history
    ]
    last = history[-1]
    panel = window.panel
    assert panel.emotion.text() == last.label
    assert panel.bars.labels == tuple(LABELS)
    assert panel.bars.values == last.probabilities
    assert panel.meter.level_db == last.level_db
    assert f"{last.confidence * 100:.0f} %" in panel.confidence.text()

    segments = window.timeline.segments
    assert [(s.end, s.label, s.confidence) for s in segments] == [
        (r.time, r.label, r.confidence) for r in history
    ]
    assert segments[0].start == 0.0
    assert all(a.end == b.start for a, b in zip(segments[:-1], segments[1:], strict=True))
    assert window.timeline.visible_range() == (0.0, 30.0)
    stats = session.engine.stats
    assert window.skipped_label.text() == f"skipped windows {stats['skipped']}"
    assert window.latency_label.text().endswith(" ms")
    assert window.start_action.isEnabled() and not window.stop_action.isEnabled()


@needs_qt
def test_a_silent_moment_shows_silence_and_empty_bars(window, tmp_path):
    session, history = run_file_session(
        window, write_script(tmp_path / "end.wav", [(0.5, None), (3.0, "happy"), (2.0, None)])
    )
    assert history[0].label == "happy" and history[-1].label == "silence"
    assert window.panel.emotion.text() == "silence"
    assert set(window.panel.bars.values.values()) == {None}
    assert window.timeline.segments[-1].confidence is None


@needs_qt
def test_history_saves_as_csv_and_jsonl_and_reads_back(window, script_wav, tmp_path, monkeypatch):
    _, history = run_file_session(window, script_wav)

    saved = window.save_history(tmp_path / "out" / "history.csv")
    with open(saved, newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(float(r["time"]), r["label"]) for r in rows] == [(x.time, x.label) for x in history]
    speech = [(r, x) for r, x in zip(rows, history, strict=True) if x.speech]
    assert all(float(r["angry"]) == x.probabilities["angry"] for r, x in speech)

    saved = window.save_history(tmp_path / "history.jsonl")
    lines = [json.loads(line) for line in saved.read_text().splitlines()]
    assert lines == [x.to_dict() for x in history]

    from PySide6.QtWidgets import QFileDialog

    chosen = (str(tmp_path / "picked"), "JSON Lines (*.jsonl)")
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: chosen)
    window.save_button.click()
    assert len((tmp_path / "picked.jsonl").read_text().splitlines()) == len(history)

    assert window.save_history(tmp_path / "history.txt") is None
    assert "use a .csv or .jsonl" in window.error_banner.text()


@needs_qt
def test_stopping_and_closing_leave_no_running_threads(app, bundle, tmp_path):
    from sertk.gui.main_window import MainWindow
    from sertk.live import FileSource

    before = live_threads()
    long_wav = write_script(tmp_path / "long.wav", [(30.0, "happy")])
    window = MainWindow(model=str(bundle))
    window.show()
    pump(lambda: window.recognizer is not None)
    session = window.start_session(FileSource(long_wav, realtime=True))  # real time: 30 s
    pump(lambda: window.table.rowCount() >= 2)
    assert session.running and live_threads()
    assert window.stop_action.isEnabled() and not window.start_action.isEnabled()
    assert window.panel.meter.level_db is not None  # the level tap of a real-time source
    window.stop()
    settle()
    assert not session.running and window.start_action.isEnabled()
    assert window.table.rowCount() == len(session.engine.history)  # nothing after stop
    window.start_session(FileSource(long_wav, realtime=True))
    pump(lambda: window.table.rowCount() >= 1)
    window.close()  # closing stops the engine
    settle()
    assert live_threads() == before
    assert window.tasks.active == 0
    assert not window.session.running


# --- file analysis -------------------------------------------------------------------------


@needs_qt
def test_open_file_analysis_fills_the_timeline_and_the_table(
    window, recognizer, script_wav, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog

    from sertk.gui.history import summarise

    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(script_wav), ""))
    runs, timeline = [], window.recognizer.timeline
    monkeypatch.setattr(
        window.recognizer,
        "timeline",
        lambda *a, **k: (runs.append(threading.get_ident()), timeline(*a, **k))[1],
    )
    window.open_action.trigger()
    pump(lambda: window.mode == "file" or window.error_banner.text())
    expected = recognizer.timeline(script_wav, hop=window.hop, smooth=window.smooth, vad=window.vad)
    assert len(runs) == 1 and runs[0] != threading.get_ident()  # analysed off the UI thread

    assert [tuple(s) for s in window.timeline.segments] == [
        (s.start, s.end, s.label, s.confidence) for s in expected.segments
    ]
    assert window.timeline.visible_range() == (0.0, expected.duration)
    assert [row[1] for row in window.table.rows()] == [s.label for s in expected.segments]
    assert [s.label for s in expected.segments] == ["silence", "neutral", "silence", "angry"]
    label, confidence, probabilities = summarise(expected)
    assert window.panel.emotion.text() == label
    assert window.panel.bars.values == probabilities
    assert "whole file" in window.panel.confidence.text()

    window.table.selectRow(3)  # a row shows its own probabilities
    assert window.panel.emotion.text() == "angry"
    assert window.panel.bars.values == expected.segments[3].probabilities

    with open(window.save_history(tmp_path / "segments.csv"), newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert [(float(r["start"]), float(r["end"]), r["label"]) for r in rows] == [
        (s.start, s.end, s.label) for s in expected.segments
    ]
    lines = window.save_history(tmp_path / "segments.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [s.to_dict() for s in expected.segments]


# --- errors appear in the window -----------------------------------------------------------


@needs_qt
def test_a_bad_bundle_shows_its_error_in_the_window(window, tmp_path):
    model = window.recognizer
    window.load_model(str(tmp_path / "missing"))
    pump(lambda: window.error_banner.text())
    assert "no model bundle at" in window.error_banner.text()
    assert window.recognizer is model and window.start_action.isEnabled()

    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "bundle.json").write_text("{not json")
    window.error_banner.dismiss()
    window.load_model(str(broken))
    pump(lambda: window.error_banner.text())
    assert "Could not load the model" in window.error_banner.text()
    assert "bundle.json" in window.error_banner.text()
    assert window.model_combo.currentText() != "broken"


@needs_qt
def test_the_model_chooser_browses_to_a_bundle_and_goes_back_after_a_bad_one(
    window, bundle, tmp_path, monkeypatch
):
    from PySide6.QtWidgets import QFileDialog

    copy = shutil.copytree(bundle, tmp_path / "other" / "final" / "bundle")
    chooser, first = window.model_combo, window.recognizer
    from sertk.recognizer import Recognizer

    loads, load = [], Recognizer.load
    monkeypatch.setattr(
        Recognizer, "load", lambda *a, **k: (loads.append(threading.get_ident()), load(*a, **k))[1]
    )
    threads = []
    loaded = window._model_loaded
    monkeypatch.setattr(
        window, "_model_loaded", lambda *a: (threads.append(threading.get_ident()), loaded(*a))
    )
    browse = chooser.count() - 1
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(copy))
    chooser._activated(browse)
    pump(lambda: window.recognizer is not first)
    assert Path(window.recognizer.bundle.path) == copy
    assert threads == [threading.get_ident()] and threading.get_ident() not in loads

    assert chooser.currentText() == "other/final/bundle" and chooser.current_name == str(copy)
    assert window.model_label.text().startswith("model other/final/bundle · 3 classes")

    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(empty))
    chooser._activated(chooser.count() - 1)
    pump(lambda: window.error_banner.text())
    assert "Could not load the model" in window.error_banner.text()
    assert chooser.currentText() == "other/final/bundle"  # back to the model in use
    assert Path(window.recognizer.bundle.path) == copy


@needs_qt
def test_a_missing_microphone_is_reported_with_the_devices_there_are(app, bundle):
    from sertk.errors import AudioError
    from sertk.gui.main_window import MainWindow
    from sertk.live import format_devices, list_devices

    try:
        devices = list_devices()
    except AudioError as error:
        pytest.skip(f"no PortAudio here ({error}); the missing-package path is tested below")
    window = MainWindow(model=str(bundle), audio_input="no-such-microphone-xyz")
    pump(lambda: window.recognizer is not None)
    window.start()
    assert window.error_banner.text() == (
        "no audio input device has 'no-such-microphone-xyz' in its name.\n"
        f"{format_devices(devices)}"
    )
    assert window.session is None
    window.close()
    settle()


@needs_qt
def test_a_missing_sounddevice_package_and_unreadable_files_are_reported(
    app, bundle, tmp_path, monkeypatch
):
    from sertk.gui.main_window import MainWindow

    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import sounddevice -> ImportError
    window = MainWindow(model=str(bundle))
    pump(lambda: window.recognizer is not None)
    window.start()
    assert window.error_banner.text() == (
        "live microphone input needs the sounddevice package: pip install 'sertk[live]'"
    )
    assert window.session is None

    text = tmp_path / "notes.wav"
    text.write_text("not audio")
    window.analyse_file(text)
    pump(lambda: window.error_banner.text().startswith("Could not analyse"))
    assert "notes.wav" in window.error_banner.text()
    assert window.open_action.isEnabled()
    window.close()
    settle()


@needs_qt
def test_without_a_model_the_window_says_so(app, tmp_path):
    from sertk.gui.main_window import MainWindow

    window = MainWindow(model=str(tmp_path / "nothing"))
    pump(lambda: window.error_banner.text())
    assert window.recognizer is None and not window.start_action.isEnabled()
    window.start()
    window.analyse_file(tmp_path / "x.wav")
    assert "No model is loaded" in window.error_banner.text()
    window.close()
    settle()


@needs_qt
def test_uncaught_errors_go_to_the_window_not_a_traceback(window, capsys):
    from sertk.gui.app import error_hook

    hook = error_hook(window)
    try:
        raise ValueError("boom")
    except ValueError as error:
        hook(type(error), error, error.__traceback__)
    assert window.error_banner.text() == "unexpected error: ValueError: boom"
    err = capsys.readouterr().err
    assert "boom" in err and "Traceback" not in err


def test_palette_gives_each_emotion_one_colour_and_silence_grey():
    from sertk.gui.palette import SILENCE_COLOR, emotion_color

    names = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom", "surprised"]
    assert len({emotion_color(x) for x in names}) == len(names)
    assert emotion_color("silence") == emotion_color(None) == SILENCE_COLOR
    assert emotion_color("Angry") == emotion_color("angry")
    assert emotion_color("made-up") == emotion_color("made-up") != SILENCE_COLOR


# --- the command -------------------------------------------------------------------------


def test_gui_without_pyside6_says_how_to_install(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "PySide6", None)  # import PySide6 -> ImportError
    assert main(["gui"]) == 2
    assert "pip install 'sertk[gui]'" in capsys.readouterr().err


def test_gui_refuses_bad_options_and_a_missing_display(monkeypatch, capsys):
    assert main(["gui", "--hop", "0"]) == 2
    assert "--hop must be a positive" in capsys.readouterr().err
    assert main(["gui", "--smooth", "-2"]) == 2
    assert "--smooth must be a number of seconds >= 0" in capsys.readouterr().err
    assert main(["gui", "--device", "nonsense-gpu", "--input", "1"]) == 2
    assert "'nonsense-gpu' is not a compute device" in capsys.readouterr().err
    # the old spelling of the microphone, taken as --input with a message
    assert main(["gui", "--device", "USB mic", "--hop", "0"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "sertk gui: deprecated: --device USB mic names an audio input, not a compute device; use "
        "--input USB mic (--device is the compute device: cpu, cuda or cuda:N)",
        "sertk gui: error: --hop must be a positive number of seconds, got 0.0",
    ]
    if HAVE_QT and sys.platform == "linux":
        monkeypatch.delenv("QT_QPA_PLATFORM")
        monkeypatch.delenv("DISPLAY", raising=False)
        monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
        assert main(["gui"]) == 2
        assert "no display" in capsys.readouterr().err


def _gui_process(args: list[str], env: dict[str, str], timeout: float = 120.0):
    return subprocess.run(
        [sys.executable, "-m", "sertk", "gui", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )


@pytest.mark.slow
@needs_qt
def test_sertk_gui_runs_a_file_live_and_exits_cleanly(bundle, script_wav):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    args = ["--model", str(bundle), "--file", str(script_wav), "--autostart", "--quit-after", "3"]
    done = _gui_process(args, env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "error" not in done.stderr


REAL_WINDOW = """
import json, sys, time
from PySide6.QtCore import QCoreApplication
from sertk.gui.app import application
from sertk.gui.main_window import MainWindow
from sertk.live import FileSource
app = application()
window = MainWindow(model=sys.argv[1])
window.show()
def pump(until):
    deadline = time.monotonic() + 60
    while not until() and time.monotonic() < deadline:
        QCoreApplication.processEvents()
        time.sleep(0.01)
pump(lambda: window.recognizer is not None)
session = window.start_session(FileSource(sys.argv[2], realtime=False), deterministic=True)
pump(lambda: not session.running)
QCoreApplication.processEvents()
handle = window.windowHandle()
print(json.dumps({"platform": app.platformName(), "exposed": handle.isExposed(),
                  "rows": window.table.rowCount(), "results": len(session.engine.history)}))
window.close()
"""


@pytest.mark.slow
@needs_qt
def test_a_real_window_under_xvfb(bundle, script_wav, tmp_path):
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        pytest.skip("Xvfb is not installed (Debian: xvfb)")
    server = subprocess.Popen(  # -displayfd: Xvfb picks a free display and prints it
        [xvfb, "-displayfd", "1", "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        ready, _, _ = select.select([server.stdout], [], [], 20.0)
        number = server.stdout.readline().strip() if ready else ""
        if not number.isdigit():
            pytest.skip("Xvfb could not start")
        display = f":{number}"
        env = {k: v for k, v in os.environ.items() if k != "QT_QPA_PLATFORM"}
        env["DISPLAY"] = display
        script = tmp_path / "real_window.py"
        script.write_text(REAL_WINDOW)
        done = subprocess.run(
            [sys.executable, str(script), str(bundle), str(script_wav)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        server.terminate()
        server.wait(10)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["platform"] == "xcb" and report["exposed"]
    assert report["rows"] == report["results"] == 11


# --- screenshots for the docs --------------------------------------------------------------


def distinct_colours(widget) -> int:
    """How many different colours the widget's own grab has (a blank widget: one or two)."""
    image = widget.grab().toImage()
    step = max(1, image.width() // 200)
    return len(
        {image.pixel(x, y) for x in range(0, image.width(), step) for y in range(image.height())}
    )


def shown(window) -> dict:
    """What the window shows, read from its widgets (call right after a grab: the widgets only
    change when the event loop runs)."""
    return {
        "emotion": window.panel.emotion.text(),
        "confidence": window.panel.confidence.text(),
        "bars": window.panel.bars.labels,
        "rows": [row[1] for row in window.table.rows()],
        "segments": [s.label for s in window.timeline.segments],
        "timeline_title": window.timeline_card.title.text(),
        "model": window.model_label.text(),
        "input": window.input_combo.currentText(),
        "timeline_colours": distinct_colours(window.timeline),
    }


def clips_right(description: dict, segments) -> list[bool]:
    """Per clip of a ``scripts/make_recording.py`` recording: whether every speech segment over
    it has the clip's label."""
    speech = [s for s in segments if s.label != "silence"]
    right = []
    for clip in description["clips"]:
        mine = [s for s in speech if s.start < clip["end"] and s.end > clip["start"]]
        right.append(bool(mine) and all(s.label == clip["label"] for s in mine))
    return right


@needs_qt
def test_screenshots(app, bundle, tmp_path):
    """The README's two GUI pictures, grabbed while a file plays live and after it is analysed as
    a file, each checked for what its caption says: the model, the current emotion and bars, a
    history and a timeline with segments (painted, not blank), and in file mode the Recognizer's
    own timeline. Written to tmp_path with the tone bundle; ``SERTK_SCREENSHOTS=1`` regenerates
    docs/screenshots/gui-live.png and gui-file.png, with ``SERTK_SCREENSHOT_MODEL`` (README:
    ``default``) and ``SERTK_SCREENSHOT_AUDIO`` (README: ``scripts/make_recording.py gui``; its
    ``.json`` then checks the README's count of clips the file analysis gets right)."""
    from sertk.gui.choosers import bundle_title
    from sertk.gui.main_window import MainWindow
    from sertk.live import FileSource
    from sertk.recognizer import Recognizer

    regenerate = os.environ.get("SERTK_SCREENSHOTS") == "1"
    model = os.environ.get("SERTK_SCREENSHOT_MODEL", str(bundle)) if regenerate else str(bundle)
    audio = Path(
        (regenerate and os.environ.get("SERTK_SCREENSHOT_AUDIO"))
        or write_script(tmp_path / "demo.wav", [(2.0, "neutral"), (1.0, None), (2.5, "angry")])
    )
    out = REPO / "docs" / "screenshots" if regenerate else tmp_path
    out.mkdir(parents=True, exist_ok=True)
    reference = Recognizer.load(model)
    window = MainWindow(model=model, file=audio)
    window.resize(1180, 760)
    window.show()
    pump(lambda: window.recognizer is not None or window.error_banner.text())
    assert window.recognizer is not None, window.error_banner.text()
    labels = tuple(reference.labels)
    title = "default" if model == "default" else bundle_title(str(reference.bundle.path))
    duration = sf.info(str(audio)).duration

    window.start_session(FileSource(audio, realtime=True))  # a real live session
    pump(
        lambda: window.table.rowCount() and window.table.entries[-1].time >= duration * 0.7,
        timeout=3 * duration + 60,
    )
    picture = window.grab()
    live = shown(window)
    assert picture.save(str(out / "gui-live.png"))
    assert (picture.width(), picture.height()) == (1180, 760)
    assert live["model"] == f"model {title} · {len(labels)} classes · {reference.extractor.name}"
    assert live["input"] == f"File: {audio.name} (played live)"
    assert live["bars"] == labels
    assert live["rows"] and live["segments"] == live["rows"]
    assert live["emotion"] == live["rows"][-1] and live["emotion"] in (*labels, "silence")
    assert live["timeline_colours"] >= len(set(live["segments"])) + 1

    window.analyse_file(audio)
    pump(lambda: window.mode == "file" or window.error_banner.text(), timeout=120)
    picture = window.grab()
    analysed = shown(window)
    assert picture.save(str(out / "gui-file.png"))
    expected = reference.timeline(audio, hop=window.hop)
    assert analysed["segments"] == analysed["rows"] == [s.label for s in expected.segments]
    assert "silence" in analysed["segments"] and len(set(analysed["segments"])) >= 3
    assert analysed["timeline_title"] == f"Timeline · {audio.name}"
    assert "whole file" in analysed["confidence"] and analysed["emotion"] in labels
    assert analysed["timeline_colours"] >= len(set(analysed["segments"])) + 1
    description = audio.with_suffix(".json")
    if regenerate and description.exists():
        made = json.loads(description.read_text())
        right = clips_right(made, expected.segments)
        text = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
        claim = re.search(r"analysed as a file, where (\d+) of the (\d+) clips", text)
        assert claim and (sum(right), len(right)) == (int(claim[1]), int(claim[2])), right
    window.close()
    settle()
