"""FeatureCache (hits, keys, corruption, concurrency, atomicity), extract_utterances, sertk extract."""

from __future__ import annotations

import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from sertk.audio import Preprocess, load_audio
from sertk.cli import main
from sertk.corpora import Utterance
from sertk.errors import FeatureError
from sertk.features import build_extractor
from sertk.features.cache import (
    FeatureCache,
    audio_hash,
    default_cache_dir,
    extract_utterances,
    iter_features,
)

KEY = {"audio": "abc", "extractor": {"name": "logmel", "n_mels": 64}, "preprocess": None}


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


class Counter:
    """compute_fn that counts its calls and returns a fixed array."""

    def __init__(self, value: float = 1.0) -> None:
        self.calls = 0
        self.value = value

    def __call__(self) -> np.ndarray:
        self.calls += 1
        return np.full((5, 3), self.value, dtype=np.float32)


def test_hit_and_miss(tmp_path):
    cache, compute = FeatureCache(tmp_path), Counter()
    first = cache.get_or_compute(KEY, compute)
    second = cache.get_or_compute(KEY, compute)
    assert compute.calls == 1 and (cache.hits, cache.misses) == (1, 1)
    np.testing.assert_array_equal(first, second)
    assert second.dtype == np.float32 and second.shape == (5, 3)
    [entry] = files(tmp_path)
    assert entry == cache.path(KEY) and entry.suffix == ".safetensors"


def test_key_changes_with_each_part(tmp_path):
    cache = FeatureCache(tmp_path)
    variants = [
        KEY,
        {**KEY, "audio": "abd"},
        {**KEY, "extractor": {"name": "logmel", "n_mels": 80}},
        {**KEY, "preprocess": {"duration": 3.0}},
    ]
    assert len({cache.path(key) for key in variants}) == len(variants)
    reordered = {"preprocess": None, "extractor": {"n_mels": 64, "name": "logmel"}, "audio": "abc"}
    assert cache.path(reordered) == cache.path(KEY)  # canonical JSON: key order is irrelevant
    with pytest.raises(FeatureError, match="JSON-serialisable"):
        cache.path({"audio": b"bytes"})


def test_audio_hash_depends_on_samples_and_rate():
    signal = np.linspace(-1, 1, 100, dtype=np.float32)
    assert audio_hash(signal, 16000) == audio_hash(signal.astype(np.float64), 16000)
    assert audio_hash(signal, 16000) != audio_hash(signal, 8000)
    changed = signal.copy()
    changed[50] += 1e-6
    assert audio_hash(changed, 16000) != audio_hash(signal, 16000)


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage", "other_entry"])
def test_corrupt_entry_is_recomputed(tmp_path, damage):
    cache = FeatureCache(tmp_path)
    path = cache.path(KEY)
    cache.get_or_compute(KEY, Counter(1.0))
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) - 7])
    elif damage == "flip":  # one bit in the array data: only the checksum can tell
        path.write_bytes(data[:-3] + bytes([data[-3] ^ 1]) + data[-2:])
    elif damage == "garbage":
        path.write_bytes(b"\x00" * 40)
    else:  # a valid entry of another key copied over this one
        other = {**KEY, "audio": "zzz"}
        cache.get_or_compute(other, Counter(5.0))
        path.write_bytes(cache.path(other).read_bytes())
    compute = Counter(2.0)
    result = cache.get_or_compute(KEY, compute)
    assert compute.calls == 1 and cache.corrupt == 1
    np.testing.assert_array_equal(result, np.full((5, 3), 2.0, np.float32))
    again = Counter(3.0)
    np.testing.assert_array_equal(cache.get_or_compute(KEY, again), result)  # rewritten intact
    assert again.calls == 0


def test_no_files_left_when_compute_fails(tmp_path):
    cache = FeatureCache(tmp_path / "cache")

    def broken():
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        cache.get_or_compute(KEY, broken)
    with pytest.raises(FeatureError, match="numeric numpy arrays"):
        cache.get_or_compute(KEY, lambda: [1, 2, 3])
    assert not (tmp_path / "cache").exists() or files(tmp_path / "cache") == []


def test_failed_write_leaves_no_temp_file(tmp_path, monkeypatch):
    cache = FeatureCache(tmp_path)

    def failing_replace(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("sertk.features.cache.os.replace", failing_replace)
    with pytest.raises(FeatureError, match="free disk space"):
        cache.get_or_compute(KEY, Counter())
    assert files(tmp_path) == []


def test_concurrent_threads_write_one_key(tmp_path):
    cache = FeatureCache(tmp_path)
    barrier = threading.Barrier(8)

    def work(_):
        barrier.wait()
        return cache.get_or_compute(KEY, Counter(7.0))

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    for result in results:
        np.testing.assert_array_equal(result, np.full((5, 3), 7.0, np.float32))
    assert files(tmp_path) == [cache.path(KEY)]
    assert cache.hits + cache.misses == 8 and cache.corrupt == 0


def _process_writer(root: str, rounds: int) -> int:
    cache = FeatureCache(root)
    for _ in range(rounds):
        cache.put(KEY, np.arange(20000, dtype=np.float32).reshape(100, 200))
        assert cache.get(KEY) is not None
    return cache.corrupt


@pytest.mark.slow
def test_concurrent_processes_write_one_key(tmp_path):
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        corrupt = pool.starmap(_process_writer, [(str(tmp_path), 30)] * 3)
    assert corrupt == [0, 0, 0]  # a reader never saw a partial entry
    assert files(tmp_path) == [FeatureCache(tmp_path).path(KEY)]
    np.testing.assert_array_equal(
        FeatureCache(tmp_path).get(KEY), np.arange(20000, dtype=np.float32).reshape(100, 200)
    )


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SERTK_CACHE", str(tmp_path / "mine"))
    assert default_cache_dir() == tmp_path / "mine" == FeatureCache().root
    monkeypatch.delenv("SERTK_CACHE")
    assert default_cache_dir() == Path.home() / ".cache" / "sertk" / "features"


# --- extract_utterances --------------------------------------------------------------------------


@pytest.fixture
def utterances(make_wav):
    """Four synthetic utterances at 16 kHz (two identical in content), one at 22.05 kHz."""
    items = []
    for index, (frequency, duration, rate) in enumerate(
        [(200, 1.0, 16000), (300, 0.5, 16000), (200, 1.0, 16000), (400, 0.7, 22050)]
    ):
        path = make_wav(f"u{index}.wav", frequency=frequency, duration=duration, sampling_rate=rate)
        items.append(Utterance(f"u{index}", str(path), "neutral", "s1"))
    return items


def test_extract_utterances_caches_and_equals_direct_extraction(utterances, tmp_path):
    extractor, preprocess = build_extractor("logmel"), Preprocess(duration=None)
    cache = FeatureCache(tmp_path / "cache")
    first = extract_utterances(
        utterances, extractor, preprocess=preprocess, cache=cache, progress=False
    )
    assert cache.hits == 0 and cache.misses == 4
    for utterance, features in zip(utterances, first, strict=True):
        signal, rate = load_audio(utterance.path, sampling_rate=16000)
        np.testing.assert_array_equal(features, extractor(preprocess(signal, rate), rate))
    assert len(files(tmp_path / "cache")) == 3  # u0 and u2 have identical audio: one entry
    again = list(
        iter_features(utterances, extractor, preprocess=preprocess, cache=cache, progress=False)
    )
    assert [item.cached for item in again] == [True] * 4 and cache.hits == 4
    assert [round(item.seconds, 2) for item in again] == [1.0, 0.5, 1.0, 0.7]
    for item, features in zip(again, first, strict=True):
        np.testing.assert_array_equal(item.features, features)
    cropped = Preprocess(duration=0.5)
    extract_utterances(utterances[:1], extractor, preprocess=cropped, cache=cache, progress=False)
    assert cache.misses == 5  # other preprocessing: other key
    extract_utterances(
        utterances[:1], build_extractor("logmel", n_mels=40), cache=cache, progress=False
    )
    assert cache.misses == 6  # other extractor config: other key


def test_extract_utterances_without_cache_and_errors(utterances):
    extractor = build_extractor("mfcc", n_mfcc=13)
    features = extract_utterances(utterances, extractor, progress=False)
    assert [f.shape[1] for f in features] == [13] * 4
    with pytest.raises(FeatureError, match="needs 16000 Hz audio but preprocessing produces 8000"):
        extract_utterances(utterances, extractor, preprocess=Preprocess(sampling_rate=8000))

    class Picky:
        name, dim, frame_rate, sampling_rate = "picky", 1, 100.0, 16000

        def __call__(self, signal, sampling_rate):
            if len(signal) < 10000:
                raise FeatureError("too short")
            return np.zeros((1, 1), np.float32)

        def config(self):
            return {"name": "picky"}

    with pytest.raises(FeatureError, match=r"utterance u1 \(.*u1.wav\): too short"):
        extract_utterances(utterances, Picky(), progress=False)


# --- sertk extract -------------------------------------------------------------------------------


def test_cli_extract_fills_cache(utterances, tmp_path, capsys):
    manifest = tmp_path / "m.csv"
    lines = ["id,path,label,speaker"] + [
        f"{u.id},{u.path},{u.label},{u.speaker}" for u in utterances
    ]
    manifest.write_text("\n".join(lines) + "\n")
    args = ["extract", "--manifest", str(manifest), "--features", "mfcc", "--set", "n_mfcc=13"]
    args += ["--set", "deltas=1", "--cache", str(tmp_path / "cache"), "--duration", "0.5"]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "mfcc: 4 files, 2.0 s of audio" in out and "s audio/s" in out and "files/s" in out
    assert "0 hits, 4 misses" in out
    assert main([*args, "--no-progress"]) == 0
    assert "4 hits, 0 misses" in capsys.readouterr().out
    assert main([*args[:5], "--set", "n_mfcc"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err
    assert main([*args[:3], "--features", "nope"]) == 2
    assert "unknown feature extractor 'nope'" in capsys.readouterr().err
    assert main([*args[:5], "--model", "x"]) == 2
    assert "unknown option(s) ['model']" in capsys.readouterr().err
