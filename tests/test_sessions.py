"""Adaptation over time: a live session (engine, ``sertk listen``, the GUI) and REST sessions
switch from the global model to the adapted one once enough speech was heard."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
from toy_adaptation import RATE, make_bundles, new_speaker

from sertk.cli import main
from sertk.errors import SertkError
from sertk.live import FileSource, StreamingEngine
from sertk.recognizer import Recognizer
from sertk.recognizer.adaptation import Session


@pytest.fixture(scope="module")
def toys(tmp_path_factory):
    return make_bundles(tmp_path_factory.mktemp("toys"), min_seconds=4.0)


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """An unseen speaker: nine 1 s clips with 0.5 s pauses of faint noise (14 s)."""
    signals, _ = new_speaker(3)
    gap = (1e-3 * np.random.default_rng(0).standard_normal(RATE // 2)).astype(np.float32)
    path = tmp_path_factory.mktemp("audio") / "speaker.wav"
    sf.write(path, np.concatenate([gap] + [np.concatenate([s, gap]) for s in signals]), RATE)
    return path


def test_the_engine_switches_from_global_to_adapted(toys, recording):
    recognizer = Recognizer.load(toys["pair"])
    engine = StreamingEngine.from_recognizer(recognizer, deterministic=True, hop=0.5)
    history = engine.run(FileSource(recording, sampling_rate=RATE, realtime=False))
    states = [r.adaptation for r in history if r.speech]
    assert states and all(s is not None for s in states)
    seconds = [s.seconds for s in states]
    assert seconds == sorted(seconds) and seconds[0] == pytest.approx(1.0)  # the first window
    first = next(k for k, s in enumerate(states) if s.adapted)
    assert all(not s.adapted for s in states[:first]) and all(s.adapted for s in states[first:])
    assert states[first].seconds >= 4.0 > states[first - 1].seconds
    assert states[0].describe() == "global 1/4 s" and states[-1].describe() == "adapted"
    assert engine.predict.seconds == pytest.approx(states[-1].seconds)
    # memory stays constant: the session holds sums per feature, one row of each
    assert engine.predict.statistics[(0, None)].total.shape == (recognizer.extractor.dim,)
    plain = StreamingEngine.from_recognizer(recognizer, deterministic=True, adapt=False)
    assert all(r.adaptation is None for r in plain.run(FileSource(recording, realtime=False)))


def test_a_session_needs_a_bundle_with_a_global_model(toys):
    with pytest.raises(SertkError, match="no global model to answer"):
        Session(Recognizer.load(toys["adapted"]), step=0.5)
    with pytest.raises(SertkError, match="cannot adapt"):
        Session(Recognizer.load(toys["global"]), step=0.5)


def test_listen_shows_the_switch_over(toys, recording, capsys):
    code = main(["listen", "--model", str(toys["pair"]), "--file", str(recording), "--fast",
                 "--smooth", "0"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = captured.out.splitlines()
    assert "[global 1/4 s]" in lines[0] and lines[-1].endswith("[adapted]")
    assert "the global model answers until 4 s of speech" in captured.err
    assert "adapted from" in captured.err
    code = main(["listen", "--model", str(toys["pair"]), "--file", str(recording), "--fast",
                 "--no-adapt"])  # fmt: skip
    assert code == 0 and "[" not in capsys.readouterr().out


def test_the_gui_shows_which_model_answers(toys, recording):
    from test_gui import HAVE_QT, pump, run_file_session, settle

    if not HAVE_QT:
        pytest.skip("PySide6 missing: pip install 'sertk[gui]'")
    from sertk.gui.app import application
    from sertk.gui.main_window import MainWindow

    application()
    window = MainWindow(model=str(toys["pair"]))
    window.show()
    try:
        pump(lambda: window.recognizer is not None or window.error_banner.text())
        shown = []
        original = window.panel.show_adaptation
        window.panel.show_adaptation = lambda state: (shown.append(
            window.panel.adaptation.text()), original(state))  # fmt: skip
        _, history = run_file_session(window, recording)
        assert history[-1].adaptation.adapted
        assert window.panel.adaptation.text().startswith("model: adapted to the speaker (")
        assert any(text.startswith("model: global until 4 s of speech") for text in shown)
    finally:
        window.close()
        settle()


# --- REST ----------------------------------------------------------------------------------


def test_the_session_store_is_bounded():
    from sertk.server.sessions import SessionStore

    now = [0.0]
    store = SessionStore(max_sessions=2, idle_seconds=10, clock=lambda: now[0])
    from sertk.features.normalization import FeatureStatistics

    piece = {(0, None): FeatureStatistics.of([np.ones((1, 8))], seconds=2.0)}
    for _ in range(50):
        store.add("a", piece)
    assert store.describe("a")["seconds"] == 100.0 and store.describe("a")["requests"] == 50
    assert store.describe("a")["bytes"] == 2 * 8 * 8  # two sums of 8 float64, however many
    store.add("b", None)
    store.add("c", piece)  # the least recently used ("a") goes
    assert store.statistics("a") is None and len(store) == 2 and store.counts["evicted"] == 1
    now[0] = 11.0
    assert len(store) == 0 and store.counts["expired"] == 2
    with pytest.raises(ValueError):
        SessionStore(max_sessions=0)


def test_rest_sessions_adapt_across_requests(toys):
    pytest.importorskip("fastapi")
    import httpx
    from test_server import encode, live_server

    from sertk.server import create_app
    from sertk.server.sessions import SessionStore

    signals, _ = new_speaker(2)
    store = SessionStore(max_sessions=10)
    app = create_app(toys["pair"], sessions=store)
    audio = {"Content-Type": "audio/wav"}
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        states = []
        for signal in signals[:5]:
            answer = client.post("/v1/predict", content=encode(signal),
                                 headers={**audio, "X-Sertk-Session": "alice"})  # fmt: skip
            assert answer.status_code == 200, answer.text
            states.append(answer.json()["adaptation"])
        assert [s["adapted"] for s in states] == [False, False, False, True, True]
        assert states[0]["speaker"] == "alice" and states[-1]["seconds"] > 4.0
        other = client.post("/v1/predict?session=bob", content=encode(signals[0]), headers=audio)
        assert other.json()["adaptation"]["seconds"] < 1.5  # sessions do not mix
        plain = client.post("/v1/predict", content=encode(signals[0]), headers=audio).json()
        assert plain["adaptation"] is None
        shown = client.get("/v1/sessions/alice").json()
        assert shown["requests"] == 5 and shown["seconds"] == pytest.approx(states[-1]["seconds"])
        silent = client.post("/v1/predict", content=encode(np.zeros(RATE, np.float32)),
                             headers={**audio, "X-Sertk-Session": "alice"})  # fmt: skip
        assert silent.status_code == 200 and silent.json()["speech"] is False
        assert client.get("/v1/sessions/alice").json()["seconds"] == shown["seconds"]
        assert client.delete("/v1/sessions/alice").json()["dropped"] is True
        assert client.get("/v1/sessions/alice").status_code == 404
        bad = client.post("/v1/predict", content=encode(signals[0]),
                          headers={**audio, "X-Sertk-Session": "no spaces"})  # fmt: skip
        assert bad.status_code == 422 and bad.json()["error"]["code"] == "bad_parameter"
    with live_server(create_app(toys["global"])) as url, httpx.Client(base_url=url) as client:
        answer = client.post("/v1/predict", content=encode(signals[0]),
                             headers={**audio, "X-Sertk-Session": "x"})  # fmt: skip
        assert answer.status_code == 422 and "cannot adapt" in answer.json()["error"]["message"]
