"""Long recordings in bounded memory: the streamed timeline equals the whole-file analysis, its
steps, one label for a long file, and the memory a long file costs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_recognizer import make_bundle, tone

from sertk.audio import audio_blocks, load_audio, resample, speech_regions
from sertk.errors import AudioError, AudioTooLongError
from sertk.recognizer import Recognizer
from sertk.recognizer.long_audio import LONG_RECORDING, cut_windows, speech_mean
from sertk.recognizer.timeline import build_timeline, plan_windows

RATE = 16000
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from bench_timeline_memory import sertk_peak_rss  # noqa: E402


def whole_file_timeline(recognizer, signal, rate, *, window, hop, smooth, min_speech=0.5):
    """The timeline as main computed it before streaming: the whole signal in memory, one
    speech_regions call, every window predicted in one predict_batch."""
    regions = speech_regions(signal, rate, min_duration=min_speech)
    spans = plan_windows(regions, window=window, hop=hop)
    pieces = [signal[round(s * rate) : round(e * rate)] for s, e, _ in spans]
    rows = [
        list(p.probabilities.values()) for p in recognizer.predict_batch(pieces, sampling_rate=rate)
    ]
    return build_timeline(
        duration=len(signal) / rate, regions=regions, spans=spans,
        probabilities=np.array(rows).reshape(len(spans), len(recognizer.labels)),
        labels=recognizer.labels, window=window, hop=hop, smooth=smooth,
    )  # fmt: skip


def corpus_recording(corpora_dir: Path, path: Path, *, clips: int = 16, rate: int = 48000) -> Path:
    """EmoDB clips separated by 1.5-3 s of near silence, written as a 48 kHz stereo float WAV
    (so reading it resamples and downmixes): about 67 s."""
    files = sorted((corpora_dir / "emodb" / "wav").glob("*.flac"))[:clips]
    rng = np.random.default_rng(0)
    parts = []
    for file in files:
        signal, _ = load_audio(file, sampling_rate=RATE)
        gap = rng.normal(0, 1e-4, round(rng.uniform(1.5, 3.0) * RATE)).astype(np.float32)
        parts += [signal, gap]
    mono = resample(np.concatenate(parts), RATE, rate)
    sf.write(path, np.stack([mono, 0.5 * mono]).T, rate, subtype="FLOAT")
    return path


@pytest.fixture(scope="module")
def default():
    return Recognizer.load("default")


@pytest.fixture(scope="module")
def recording(corpora_dir, tmp_path_factory):
    return corpus_recording(corpora_dir, tmp_path_factory.mktemp("long") / "rec48.wav")


def test_the_streamed_timeline_equals_the_whole_file_analysis(default, recording):
    streamed = default.timeline(recording, hop=0.5, smooth=1.5)
    signal, rate = load_audio(recording, sampling_rate=RATE)
    whole = whole_file_timeline(default, signal, rate, window=3.0, hop=0.5, smooth=1.5)
    assert streamed.duration == whole.duration and len(streamed.windows) == len(whole.windows)
    assert [(s.start, s.end, s.label) for s in streamed.segments] == [
        (s.start, s.end, s.label) for s in whole.segments
    ]
    assert sum(s.speech for s in streamed.segments) >= 14  # every clip found
    for mine, theirs in zip(streamed.windows, whole.windows, strict=True):
        assert (mine.start, mine.end) == (theirs.start, theirs.end)
        np.testing.assert_allclose(
            list(mine.probabilities.values()), list(theirs.probabilities.values()), atol=1e-6
        )
    assert streamed.model_sha256 == default.sha256 and len(default.sha256) == 64


def test_blocks_resample_like_the_whole_file(recording):
    whole, _ = load_audio(recording, sampling_rate=RATE)
    stream = audio_blocks(recording, sampling_rate=RATE)
    blocks = list(stream)
    assert len(blocks) > 1 and stream.duration == pytest.approx(len(whole) / RATE, abs=1e-3)
    np.testing.assert_allclose(np.concatenate(blocks), whole, atol=1e-6)
    assert np.array_equal(np.concatenate(list(stream)), np.concatenate(blocks))  # re-iterable


def test_timeline_blocks_are_bounded_steps_ending_in_the_timeline(default, recording):
    steps = list(default.timeline_blocks(recording, hop=1.0))
    stages = [step.stage for step in steps]
    assert stages[0] == "speech" and stages[-1] == "done" and "windows" in stages
    assert stages == sorted(stages, key=["speech", "windows", "done"].index)
    speech = [s for s in steps if s.stage == "speech"]
    assert speech[-1].done == pytest.approx(speech[-1].total, abs=1e-3)
    windows = [w for step in steps for w in step.windows]
    timeline = steps[-1].timeline
    assert all(len(step.windows) <= 16 for step in steps)
    assert windows == list(timeline.windows) and steps[-2].done == len(windows)
    assert timeline == default.timeline(recording, hop=1.0)


def test_a_long_file_gets_one_label_from_its_timeline(default, recording, tmp_path):
    assert sf.info(recording).duration > LONG_RECORDING
    prediction = default.predict_file(recording)
    timeline = default.timeline(recording)
    mean = speech_mean(timeline)
    assert prediction.windows == len(timeline.windows) > 14
    assert prediction.label == timeline.labels[int(mean.argmax())]
    np.testing.assert_allclose(list(prediction.probabilities.values()), mean, atol=1e-12)
    assert prediction.duration == timeline.duration and prediction.model_sha256 == default.sha256
    clip = tmp_path / "short.wav"  # a short file: the model sees it whole, as before
    sf.write(clip, load_audio(recording, sampling_rate=RATE)[0][: 20 * RATE], RATE)
    assert default.predict_file(clip).windows is None


def test_cut_windows_takes_each_window_from_the_passing_blocks():
    signal = np.arange(1000, dtype=np.float32)
    blocks = [signal[i : i + 70] for i in range(0, 1000, 70)]  # windows cross block edges
    bounds = [(0, 100), (50, 150), (140, 400), (600, 650), (990, 1000)]
    pieces = list(cut_windows(blocks, bounds))
    assert [p.tolist() for p in pieces] == [signal[a:b].tolist() for a, b in bounds]


def test_a_speaker_adapted_timeline_uses_the_statistics_of_all_its_windows(tmp_path):
    recognizer = Recognizer.load(make_bundle(tmp_path / "b", "mean_pool", speaker_adapted=True))
    gap = np.zeros(RATE, np.float32)
    signal = np.concatenate([tone(2.5, 200), gap, tone(3.0, 900, seed=1), gap, tone(2.0, 400)])
    streamed = recognizer.timeline(signal, sampling_rate=RATE, speaker="s1", window=1.0, hop=0.5)
    regions = speech_regions(signal, RATE, min_duration=0.5)
    spans = plan_windows(regions, window=1.0, hop=0.5)
    pieces = [signal[round(s * RATE) : round(e * RATE)] for s, e, _ in spans]
    whole = recognizer.predict_batch(pieces, sampling_rate=RATE, speakers=["s1"] * len(pieces))
    np.testing.assert_allclose(
        [list(w.probabilities.values()) for w in streamed.windows],
        [list(p.probabilities.values()) for p in whole],
        atol=1e-5,
    )


def test_long_recordings_without_speech_or_over_the_limit(default, tmp_path):
    silent = tmp_path / "silent.flac"
    sf.write(silent, np.zeros(70 * RATE, np.float32), RATE)
    with pytest.raises(AudioError, match=r"silent\.flac: no speech in its 70\.0 s"):
        default.predict_file(silent)
    timeline = default.timeline(silent)
    assert [s.label for s in timeline.segments] == ["silence"]
    with pytest.raises(
        AudioTooLongError, match=r"announces 0:01:10 \(70 s\), longer than the limit"
    ):
        default.timeline(silent, max_duration=60)
    with pytest.raises(AudioTooLongError, match=r"limit of 0:01:00 \(60 s\)"):
        default.predict_file(silent, max_duration=60)
    with pytest.raises(AudioTooLongError, match=r"signal: its header announces"):
        default.timeline(np.zeros(70 * RATE, np.float32), sampling_rate=RATE, max_duration=60)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="needs Linux /proc")
def test_three_hours_of_silence_in_bounded_memory(tmp_path):
    """A 3 h FLAC of digital silence (about 0.5 MB): the timeline reads it block by block."""
    path = tmp_path / "three_hours.flac"
    with sf.SoundFile(path, "w", RATE, 1, format="FLAC") as out:
        block = np.zeros(60 * RATE, np.float32)
        for _ in range(180):
            out.write(block)
    assert path.stat().st_size < 1_000_000
    arguments = ["predict", str(path), "--timeline", "--format", "json", "--no-progress"]
    peak, result, _ = sertk_peak_rss(arguments)  # the benchmark's measurement
    assert result.returncode == 0, result.stderr
    (timeline,) = json.loads(result.stdout)
    assert timeline["duration"] == 3 * 3600 and len(timeline["segments"]) == 1
    assert peak < 300, f"peak RSS {peak:.0f} MB"
