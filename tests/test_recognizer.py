"""The Recognizer: one inference path from audio to Prediction, timelines, and the explain plot."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import voice
from test_experiment import toy_overrides, write_toy_corpus

import sertk.bundle.resolve
from sertk.audio import Preprocess, load_audio
from sertk.bundle import save_bundle, save_classical_bundle, save_ensemble_bundle
from sertk.classical import fit_classifier
from sertk.config import load_config
from sertk.corpora import Utterance
from sertk.errors import AudioError, BundleError, ConfigError, SertkError
from sertk.experiment import run_experiment
from sertk.features import build_extractor
from sertk.features.cache import FeatureCache, extract_utterances
from sertk.inference import Scores
from sertk.models import build_model
from sertk.plotting import plot_prediction
from sertk.recognizer import NO_SPEECH, SILENCE, Prediction, Recognizer, Timeline, resolve_bundle
from sertk.recognizer.timeline import plan_windows
from sertk.smoothing import average_over_span, seconds_from_windows

LABELS = ["neutral", "happy", "angry"]
RATE = 16000


def make_bundle(
    path, model_name="gru_attention", *, duration=1.0, n_mels=16, extra=None, speaker_adapted=False
):
    """Save an untrained (seeded) model over log-mel features as a bundle; returns its path."""
    torch.manual_seed(0)
    small = {"hidden": 8, "layers": 1} if model_name == "gru_attention" else {}
    model = build_model(model_name, input_dim=n_mels, num_classes=len(LABELS), **small)
    rng = np.random.default_rng(0)
    stats = {"mean": rng.normal(-8, 1, n_mels), "std": rng.uniform(1, 3, n_mels)}
    return save_bundle(
        path,
        model=model,
        model_name=model_name,
        labels=LABELS,
        label_map={"name": None, "labels": LABELS, "mapping": {x: x for x in LABELS}},
        features=build_extractor({"name": "logmel", "n_mels": n_mels}),
        preprocess=Preprocess(duration=duration, normalize="peak"),
        normalization=stats,
        speaker_adapted=speaker_adapted,
        extra=extra,
    )


def make_classical_bundle(path):
    """A logistic regression on utterance functionals of six tones (pitch carries the class)."""
    extractor = build_extractor("functionals")
    rows = [
        extractor(tone(1.0, f, seed=i), RATE) for i, f in enumerate((200, 210, 300, 310, 450, 460))
    ]
    model = fit_classifier(np.concatenate(rows), [0, 0, 1, 1, 2, 2], kind="logreg", num_classes=3)
    return save_classical_bundle(
        path,
        model=model,
        labels=LABELS,
        label_map={"name": None, "labels": LABELS, "mapping": {x: x for x in LABELS}},
        features=extractor,
        preprocess=Preprocess(duration=1.0),
    )


def tone(seconds, frequency=220.0, *, rate=RATE, amplitude=0.3, seed=0):
    """A synthetic voice at pitch ``frequency`` (a pure tone would be "no speech")."""
    return voice(seconds, frequency, sampling_rate=rate, amplitude=amplitude, seed=seed)


@pytest.fixture(scope="module")
def gru(tmp_path_factory):
    return Recognizer.load(make_bundle(tmp_path_factory.mktemp("gru") / "bundle"))


@pytest.fixture(scope="module")
def pool(tmp_path_factory):
    return Recognizer.load(make_bundle(tmp_path_factory.mktemp("pool") / "b", "mean_pool"))


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    """A finished toy run (class carried by pitch) with a final model and its feature cache."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("toy")
    csv_path = write_toy_corpus(root / "corpus", speakers=3, per_class=3)
    config = load_config(None, toy_overrides(csv_path, root, "final_model=true"))
    run_dir = run_experiment(config, cache_dir=root / "cache", progress=False)
    yield {"run_dir": run_dir, "cache": root / "cache", "corpus": root / "corpus"}
    torch.set_num_threads(threads)


# --- import cost ---------------------------------------------------------------------------


def test_importing_the_recognizer_and_plotting_pulls_no_heavy_modules():
    code = (
        "import sys, sertk.recognizer, sertk.plotting\n"
        "heavy = [m for m in ('transformers', 'torch', 'matplotlib', 'PySide6', 'fastapi')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


def test_a_classical_bundle_predicts_without_torch(tmp_path):
    bundle = make_classical_bundle(tmp_path / "classical")
    path = tmp_path / "a.wav"
    sf.write(path, tone(1.2, 450), RATE)
    code = (
        "import sys\n"
        "from sertk.recognizer import Recognizer\n"
        f"recognizer = Recognizer.load({str(bundle)!r})\n"
        f"assert recognizer.predict_file({str(path)!r}).label in {LABELS!r}\n"
        "assert recognizer.timeline(" + repr(str(path)) + ").segments\n"
        "heavy = [m for m in ('torch', 'transformers', 'sklearn') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- identical to training -----------------------------------------------------------------


def test_features_fed_to_the_model_equal_those_training_cached(toy_run, monkeypatch):
    recognizer = Recognizer.load(toy_run["run_dir"])  # a run folder resolves to final/bundle
    assert recognizer.bundle.path == toy_run["run_dir"] / "final" / "bundle"
    path = sorted((toy_run["corpus"] / "happy").glob("*.wav"))[0]
    seen = []
    original = recognizer.scorer.score
    monkeypatch.setattr(
        recognizer.scorer,
        "score",
        lambda features, **kw: (
            seen.extend(f[(0, None)] for f in features) or original(features, **kw)
        ),
    )
    recognizer.predict_file(path)
    # the training pipeline's own loop over the training cache: a hit means the recognizer's
    # preprocessed samples hash to the entry training wrote
    cache = FeatureCache(toy_run["cache"])
    utterance = Utterance("x", str(path), "happy", "spk0", {})
    (cached,) = extract_utterances(
        [utterance],
        recognizer.bundle.build_extractor(),
        preprocess=recognizer.bundle.build_preprocess(),
        cache=cache,
        progress=False,
    )
    assert (cache.hits, cache.misses) == (1, 0)
    assert len(seen) == 1 and np.array_equal(seen[0], cached)
    assert np.array_equal(recognizer.features([path])[0], cached)


def test_a_trained_bundle_recognises_the_toy_classes(toy_run):
    recognizer = Recognizer.load(toy_run["run_dir"] / "final" / "bundle")
    paths = sorted(toy_run["corpus"].glob("*/*.wav"))
    predictions = recognizer.predict_batch(paths, batch_size=4)
    truth = [p.parent.name for p in paths]
    accuracy = np.mean([p.label == t for p, t in zip(predictions, truth, strict=True)])
    assert accuracy > 0.6  # chance is 1/3
    assert all(list(p.probabilities) == list(recognizer.labels) for p in predictions)


# --- predictions ---------------------------------------------------------------------------


def test_file_signal_and_batch_agree(gru, tmp_path):
    stereo = np.stack([tone(1.7, 300, rate=44100), tone(1.7, 500, rate=44100, seed=1)])
    path = tmp_path / "stereo.wav"
    sf.write(path, stereo.T, 44100)
    signal, rate = sf.read(path, dtype="float32", always_2d=True)
    from_file = gru.predict_file(path)
    from_signal = gru.predict_signal(signal.T, rate)
    short = tone(0.4, 700, rate=44100)
    batch = gru.predict_batch([path, signal.T, short], sampling_rate=rate, batch_size=2)
    alone = gru.predict_signal(short, rate)
    for first, second in [(from_file, from_signal), (from_file, batch[0]), (batch[2], alone)]:
        np.testing.assert_allclose(
            list(first.probabilities.values()), list(second.probabilities.values()), atol=1e-5
        )
    assert from_file.duration == pytest.approx(1.7) and batch[2].duration == pytest.approx(0.4)


def test_prediction_fields_and_json(pool, tmp_path):
    path = tmp_path / "a.flac"
    sf.write(path, tone(2.0), RATE)
    prediction = pool.predict_file(path)
    assert isinstance(prediction, Prediction)
    assert list(prediction.probabilities) == LABELS
    values = np.array(list(prediction.probabilities.values()))
    assert values.sum() == pytest.approx(1.0, abs=1e-5)
    assert prediction.label == LABELS[int(values.argmax())]
    assert prediction.confidence == pytest.approx(values.max())
    assert prediction.duration == pytest.approx(2.0) and prediction.attention is None
    assert prediction.top(2)[0] == (prediction.label, prediction.confidence)
    document = json.loads(json.dumps(prediction.to_dict()))
    assert document["label"] == prediction.label and document["attention"] is None


def test_attention_weights_over_time(gru, pool):
    prediction = gru.predict_signal(tone(2.5), RATE, attention=True)
    # the bundle crops to 1 s: 101 log-mel frames at 100 frames/s
    assert prediction.attention.shape == (101,) and prediction.attention_rate == 100.0
    assert prediction.attention.sum() == pytest.approx(1.0, abs=1e-4)
    assert (prediction.attention >= 0).all()
    plain = gru.predict_signal(tone(2.5), RATE)
    assert plain.probabilities == pytest.approx(prediction.probabilities, abs=1e-5)
    assert json.dumps(prediction.to_dict())  # the weights serialise as a list
    assert gru.has_attention and not pool.has_attention
    with pytest.raises(SertkError, match="has no attention weights"):
        pool.predict_signal(tone(1.0), RATE, attention=True)


def test_speaker_adapted_bundle_needs_several_utterances(tmp_path):
    path = make_bundle(tmp_path / "b", "mean_pool", speaker_adapted=True)
    recognizer = Recognizer.load(path)
    assert recognizer.speaker_adapted
    signals = [tone(1.0, f, seed=i) for i, f in enumerate((200, 300, 400, 500))]
    with pytest.raises(SertkError, match="several utterances of the speaker"):
        recognizer.predict_signal(signals[0], RATE)
    with pytest.raises(SertkError, match="speakers="):
        recognizer.predict_batch(signals, sampling_rate=RATE)
    together = recognizer.predict_batch(signals, sampling_rate=RATE, speakers=["a"] * 4)
    apart = recognizer.predict_batch(signals, sampling_rate=RATE, speakers=["a", "a", "b", "b"])
    assert len(together) == 4
    # each speaker is normalised with its own statistics: the grouping changes the inputs
    assert together[0].probabilities != pytest.approx(apart[0].probabilities, abs=1e-6)
    with pytest.raises(SertkError, match="pass adapt=True"):
        recognizer.timeline(np.concatenate(signals), sampling_rate=RATE)
    pause = np.zeros(RATE // 2, np.float32)  # the background the speech detector learns first
    timeline = recognizer.timeline(
        np.concatenate([pause, *signals]), sampling_rate=RATE, speaker="a"
    )
    assert any(segment.speech for segment in timeline.segments)


def test_an_ensemble_of_different_features_averages_its_members(tmp_path):
    members = [make_bundle(tmp_path / "gru"), make_classical_bundle(tmp_path / "classical")]
    ensemble = Recognizer.load(save_ensemble_bundle(tmp_path / "ensemble", members))
    assert len(ensemble.inputs) == 2 and not ensemble.has_attention
    signals = [tone(1.5, 250), tone(0.8, 400, seed=1)]
    got = ensemble.predict_batch(signals, sampling_rate=RATE)
    each = [Recognizer.load(m).predict_batch(signals, sampling_rate=RATE) for m in members]
    for row, prediction in enumerate(got):
        expected = np.mean([list(e[row].probabilities.values()) for e in each], axis=0)
        np.testing.assert_allclose(list(prediction.probabilities.values()), expected, atol=1e-5)
    with pytest.raises(SertkError, match="has no attention weights"):
        ensemble.predict_signal(signals[0], RATE, attention=True)


def test_bad_inputs_raise_precise_errors(pool, tmp_path):
    with pytest.raises(AudioError, match="no such file"):
        pool.predict_file(tmp_path / "missing.wav")
    (tmp_path / "text.wav").write_text("not audio")
    with pytest.raises(AudioError, match="not a recognised audio format"):
        pool.predict_file(tmp_path / "text.wav")
    nan = tone(1.0)
    nan[100] = np.nan
    with pytest.raises(AudioError, match="non-finite"):
        pool.predict_signal(nan, RATE)
    with pytest.raises(AudioError, match="sampling_rate must be a whole number of Hz"):
        pool.predict_signal(tone(1.0), 10)
    with pytest.raises(AudioError, match="needs its sampling_rate"):
        pool.predict_batch([tone(1.0)])
    with pytest.raises(AudioError, match="is empty"):
        pool.predict_signal(np.zeros(0, np.float32), RATE)
    for single in (tone(1.0), str(tmp_path / "a.wav")):
        with pytest.raises(SertkError, match="takes a list of items"):
            pool.predict_batch(single, sampling_rate=RATE)
    with pytest.raises(SertkError, match="nothing to predict"):
        pool.predict_batch([])
    with pytest.raises(ConfigError, match="batch_size"):
        pool.predict_batch([tone(1.0)], sampling_rate=RATE, batch_size=0)
    with pytest.raises(SertkError, match="2 items but 1 speakers"):
        pool.predict_batch([tone(1.0)] * 2, sampling_rate=RATE, speakers=["a"])


def test_on_error_return_keeps_the_good_items(pool, tmp_path):
    good = tmp_path / "good.wav"
    sf.write(good, tone(1.0), RATE)
    results = pool.predict_batch(
        [good, tmp_path / "missing.wav", tone(0.5)], sampling_rate=RATE, on_error="return"
    )
    assert isinstance(results[0], Prediction) and isinstance(results[2], Prediction)
    assert isinstance(results[1], AudioError) and "no such file" in str(results[1])
    assert results[0].probabilities == pytest.approx(pool.predict_file(good).probabilities)


def test_resolve_bundle_names_and_paths(tmp_path, monkeypatch):
    monkeypatch.setattr(sertk.bundle.resolve, "DEFAULT_MODEL", tmp_path / "none")
    with pytest.raises(BundleError, match="default model is not shipped"):
        resolve_bundle("default")
    with pytest.raises(BundleError, match="default model is not shipped"):
        Recognizer.load()
    bundle = make_bundle(tmp_path / "shipped", "mean_pool")
    monkeypatch.setattr(sertk.bundle.resolve, "DEFAULT_MODEL", bundle)
    assert resolve_bundle("default") == bundle
    assert Recognizer.load().labels == tuple(LABELS)
    with pytest.raises(BundleError, match="no model bundle at"):
        resolve_bundle(tmp_path / "nowhere")
    (tmp_path / "run" / "final").mkdir(parents=True)
    make_bundle(tmp_path / "run" / "final" / "bundle", "mean_pool")
    assert resolve_bundle(tmp_path / "run") == tmp_path / "run" / "final" / "bundle"
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="no bundle.json"):
        Recognizer.load(tmp_path / "empty")


# --- timelines -----------------------------------------------------------------------------

# (seconds, kind): silent gaps between bursts of a (synthetic) voice and of noise
SCRIPT = [(1.0, "gap"), (3.0, "tone"), (2.0, "gap"), (4.0, "noise"), (1.5, "gap"),
          (2.5, "tone"), (1.0, "gap")]  # fmt: skip


def recording(rate=RATE):
    rng = np.random.default_rng(3)
    parts, bursts, cursor = [], [], 0.0
    for seconds, kind in SCRIPT:
        n = round(seconds * rate)
        if kind == "gap":
            parts.append(rng.normal(0, 1e-4, n))
        elif kind == "tone":
            parts.append(tone(seconds, 330, rate=rate))
        else:
            parts.append(rng.normal(0, 0.2, n))
        if kind != "gap":
            bursts.append((cursor, cursor + seconds))
        cursor += seconds
    return np.concatenate(parts).astype(np.float32), bursts


def test_timeline_marks_silence_in_the_gaps_and_speech_in_the_bursts(gru):
    signal, bursts = recording()
    timeline = gru.timeline(signal, sampling_rate=RATE, hop=0.5)
    assert isinstance(timeline, Timeline) and timeline.duration == pytest.approx(15.0)
    assert timeline.window == 1.0  # the bundle's crop duration
    segments = timeline.segments
    assert segments[0].start == 0 and segments[-1].end == pytest.approx(15.0)
    for before, after in zip(segments, segments[1:], strict=False):
        assert after.start == pytest.approx(before.end)  # segments tile the recording
    merged = {True: [], False: []}  # adjacent segments of one kind form one burst
    for segment in segments:
        if segment.label == SILENCE:
            continue
        runs = merged[segment.speech]
        if runs and segment.start == pytest.approx(runs[-1][1]):
            runs[-1] = (runs[-1][0], segment.end)
        else:
            runs.append((segment.start, segment.end))
    voices = [bursts[0], bursts[2]]  # the noise burst has sound but no speech
    assert len(merged[True]) == len(voices) and len(merged[False]) == 1
    for (start, end), (true_start, true_end) in zip(merged[True], voices, strict=True):
        assert abs(start - true_start) < 0.1 and abs(end - true_end) < 0.1
    noise = merged[False][0]
    assert abs(noise[0] - bursts[1][0]) < 0.1 and abs(noise[1] - bursts[1][1]) < 0.1
    for segment in segments:
        if segment.speech:
            assert segment.label in LABELS and list(segment.probabilities) == LABELS
            assert sum(segment.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
        else:
            assert segment.label in (SILENCE, NO_SPEECH)
            assert segment.probabilities is None and segment.confidence is None
    # the 4 s noise burst (6-10 s): 1 s windows every 0.5 s, the last aligned to its end;
    # each one analysed and found to hold no speech
    inside = [w for w in timeline.windows if 5.5 < (w.start + w.end) / 2 < 10.5]
    assert len(inside) == 7 and all(w.end - w.start == pytest.approx(1.0) for w in inside)
    assert all(w.label == NO_SPEECH and not w.speech for w in inside)
    assert np.diff([w.start for w in inside]) == pytest.approx(0.5)
    assert inside[-1].end == pytest.approx(noise[1], abs=0.5 / 4)  # tail under hop / 4
    assert all(any(a - 0.1 <= w.start and w.end <= b + 0.1 for a, b in bursts)
               for w in timeline.windows)  # fmt: skip


def test_timeline_of_a_file_equals_the_timeline_of_its_signal(gru, tmp_path):
    signal, _ = recording(rate=22050)
    path = tmp_path / "long.wav"
    sf.write(path, signal, 22050)
    from_file = gru.timeline(path)
    from_signal = gru.timeline(load_audio(path, sampling_rate=None)[0], sampling_rate=22050)
    assert from_file.to_dict() == from_signal.to_dict()  # same decoding and resampling
    assert any(s.speech for s in from_file.segments)


def test_silence_only_recording_is_one_silence_segment(gru):
    timeline = gru.timeline(np.zeros(RATE * 4, np.float32), sampling_rate=RATE)
    assert len(timeline.segments) == 1 and not timeline.windows
    only = timeline.segments[0]
    assert (only.start, only.end, only.label, only.speech) == (0.0, 4.0, SILENCE, False)


def test_plan_windows_align_the_tail_to_the_region_end():
    spans = plan_windows([(0.0, 3.3), (5.0, 5.4), (6.0, 8.2)], window=1.0, hop=1.0)
    starts = [(round(a, 6), round(b, 6), r) for a, b, r in spans]
    assert starts == [(0, 1, 0), (1, 2, 0), (2, 3, 0), (2.3, 3.3, 0), (5, 5.4, 1),
                      (6, 7, 2), (7, 8, 2)]  # fmt: skip  # a 0.2 s tail needs no extra window
    with pytest.raises(ConfigError, match="must not exceed window"):
        plan_windows([(0.0, 3.0)], window=1.0, hop=1.5)


def test_smoothing_averages_over_a_span_of_seconds():
    spike = np.array([[0.9, 0.1], [0.9, 0.1], [0.1, 0.9], [0.9, 0.1], [0.9, 0.1]])
    centres = np.arange(5) + 0.5
    bounds = np.arange(6.0)  # each window stands for one second
    smoothed = average_over_span(spike, bounds=bounds, at=centres, span=3.0)
    np.testing.assert_allclose(smoothed[2], [0.633333, 0.366667], atol=1e-5)  # 3 windows
    np.testing.assert_allclose(smoothed[0], [0.9, 0.1])  # the span is cut at the region's edge
    np.testing.assert_allclose(average_over_span(spike, bounds=bounds, at=centres, span=0), spike)
    half = average_over_span(spike, bounds=bounds, at=centres, span=2.0)[2]  # 1 + 2 halves
    np.testing.assert_allclose(half, [0.5, 0.5])
    causal = average_over_span(spike, bounds=bounds, at=bounds[1:], span=3.0, causal=True)
    np.testing.assert_allclose(causal[3], [0.633333, 0.366667], atol=1e-5)  # the last 3
    # the old forms: a number of windows (or median) at a hop, read as seconds
    assert seconds_from_windows(3, hop=0.5) == (1.5, "read as 1.5 s (3 windows every 0.5 s)")
    assert seconds_from_windows("median", hop=1.0)[0] == 3.0
    assert seconds_from_windows(1, hop=1.0)[0] == seconds_from_windows("0", hop=1.0)[0] == 0.0
    for bad in (-1, "mode", "median:x", 1.5, True):
        with pytest.raises(ConfigError, match="smoothing must be"):
            seconds_from_windows(bad, hop=1.0)


def test_timeline_smoothing_removes_a_one_window_flip(gru, monkeypatch):
    def flip(features, **_):  # window 3 says "angry", the others "neutral"
        rows = np.tile([0.6, 0.1, 0.3], (len(features), 1))
        rows[3] = [0.2, 0.1, 0.7]
        return Scores(rows, [None] * len(rows))

    monkeypatch.setattr(gru.scorer, "score", flip)
    signal = np.concatenate([np.zeros(RATE, np.float32), tone(6.0), np.zeros(RATE, np.float32)])
    raw = gru.timeline(signal, sampling_rate=RATE, hop=1.0)
    assert [s.label for s in raw.segments] == [SILENCE, "neutral", "angry", "neutral", SILENCE]
    assert raw.windows[3].label == "angry"
    smoothed = gru.timeline(signal, sampling_rate=RATE, hop=1.0, smooth=3.0)
    assert [s.label for s in smoothed.segments] == [SILENCE, "neutral", SILENCE]
    assert smoothed.windows[3].label == "angry"  # window rows keep the raw output
    merged = smoothed.segments[1]
    assert (merged.start, merged.end) == pytest.approx((1.0, 7.0), abs=0.05)
    for old in (3, "median"):  # the old forms, for one release: windows at the hop
        with pytest.warns(DeprecationWarning, match=r"use smooth=SECONDS.*read as 3 s"):
            again = gru.timeline(signal, sampling_rate=RATE, hop=1.0, smoothing=old)
        assert again == smoothed


def test_timeline_rows_and_json(gru):
    signal, _ = recording()
    timeline = gru.timeline(signal, sampling_rate=RATE, smooth=2.0)
    rows = timeline.to_rows()
    assert len(rows) == len(timeline.segments)
    assert list(rows[0]) == ["start", "end", "label", "confidence", "speech", *LABELS]
    assert rows[0]["label"] == SILENCE and rows[0]["neutral"] is None
    assert len(timeline.to_rows(windows=True)) == len(timeline.windows)
    document = json.loads(json.dumps(timeline.to_dict()))
    assert document["smooth"] == 2.0 and len(document["segments"]) == len(rows)


def test_timeline_rejects_bad_options(gru):
    signal = tone(3.0)
    for options, message in [
        ({"hop": 0}, "hop must be a number of seconds > 0"),
        ({"window": -1}, "window must be"),
        ({"window": 1.0, "hop": 2.0}, "must not exceed window"),
        ({"smooth": -1}, "smooth must be a number of seconds >= 0"),
        ({"smoothing": "mode"}, "smoothing must be"),
        ({"smooth": 2.0, "smoothing": 3}, "not both"),
        ({"min_speech": -0.1}, "min_speech"),
        ({"vad": {"min_duration": 1}}, "min_speech="),
        ({"vad": {"floor": -70}}, r"vad= takes floor_db, margin_db, frame_ms, hop_ms, merge_gap"),
        ({"vad": {"margin_db": -1}}, "margin_db must be"),
    ]:
        with pytest.raises(ConfigError, match=message):
            gru.timeline(signal, sampling_rate=RATE, **options)
    with pytest.raises(AudioError, match="needs its sampling_rate"):
        gru.timeline(signal)


# --- the explain picture -------------------------------------------------------------------


def test_plot_prediction_and_timeline_write_pngs(gru, tmp_path):
    signal = tone(1.5)
    prediction = gru.predict_signal(signal, RATE, attention=True)
    out = plot_prediction(tmp_path / "p" / "one.png", gru.preprocess(signal, RATE), RATE,
                          prediction, gru.labels)  # fmt: skip
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    long, _ = recording()
    timeline = gru.timeline(long, sampling_rate=RATE)
    out = plot_prediction(tmp_path / "t.png", long, RATE, timeline, gru.labels)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SertkError, match="needs a Prediction or a Timeline"):
        plot_prediction(tmp_path / "x.png", long, RATE, {"label": "x"}, gru.labels)
    with pytest.raises(AudioError, match="non-finite"):
        plot_prediction(tmp_path / "x.png", np.full(10, np.nan), RATE, prediction, gru.labels)
