"""Batch work on every core (``sertk.parallel``): the ordered map of chunks over worker processes,
and, in every caller, the same results in the same order with one job and with several."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from sertk import parallel
from sertk.audio import Preprocess
from sertk.bundle import DEFAULT_MODEL, rehash_bundle
from sertk.cli import main
from sertk.corpora import Utterance
from sertk.errors import AudioError, ConfigError, FeatureError, SertkError
from sertk.experiment import evaluate_bundle
from sertk.features import build_extractor
from sertk.features.cache import FeatureCache, iter_features
from sertk.parallel import Workers, check_jobs, map_chunks, plan_jobs
from sertk.recognizer import Recognizer

FORKED = pytest.mark.skipif(not parallel.FORK, reason="workers are threads on this platform")


def emodb(corpora_dir: Path, count: int) -> list[Path]:
    return sorted((corpora_dir / "emodb" / "wav").glob("*.flac"))[:count]


def with_pid(chunk):
    return [(x * x, os.getpid()) for x in chunk]


# --- the helper -------------------------------------------------------------------------------


def test_map_chunks_keeps_the_order_with_one_job_or_several():
    serial = list(map_chunks(with_pid, range(23), jobs=1, chunk_size=3))
    workers = list(map_chunks(with_pid, range(23), jobs=2, chunk_size=3))
    assert [x for x, _ in serial] == [x for x, _ in workers] == [x * x for x in range(23)]
    assert {pid for _, pid in serial} == {os.getpid()}
    if parallel.FORK:
        assert os.getpid() not in {pid for _, pid in workers}


def test_where_fork_is_unsafe_the_workers_are_threads(monkeypatch):
    monkeypatch.setattr(parallel, "FORK", False)
    results = list(map_chunks(with_pid, range(9), jobs=2, chunk_size=2))
    assert results == [(x * x, os.getpid()) for x in range(9)]


@pytest.mark.parametrize("jobs", [1, 2])
def test_an_error_is_raised_at_its_place_after_the_results_before_it(jobs):
    def work(chunk):
        if 7 in chunk:
            raise FeatureError("item seven is bad")
        return list(chunk)

    seen = []
    with pytest.raises(FeatureError, match="item seven is bad"):
        for result in map_chunks(work, list(range(12)), jobs=jobs, chunk_size=2):
            seen.append(result)
    assert seen == list(range(6))


@FORKED
def test_workers_stay_between_maps_until_closed():
    def pids(chunk):
        return [os.getpid() for _ in chunk]

    with Workers(pids, jobs=2) as workers:
        first = {pid for chunk in workers.map([[0]] * 6) for pid in chunk}
        executor = workers._executor
        again = {pid for chunk in workers.map([[0]] * 6) for pid in chunk}
        assert workers._executor is executor  # kept between maps
        pool = set(executor._processes)  # its worker processes (2 at most)
        # the same processes did both maps (which of them took a chunk depends on the load)
        assert first | again <= pool and len(pool) <= 2 and os.getpid() not in pool
        workers.close()
        fresh = {pid for chunk in workers.map([[0]] * 6) for pid in chunk}
    assert not fresh & first
    assert workers._executor is None  # the with block closed them


@FORKED
def test_each_worker_sizes_blas_and_openmp_to_its_share_of_the_cores(monkeypatch):
    pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(parallel, "usable_cores", lambda: 4)

    def threads(chunk):
        from threadpoolctl import threadpool_info

        return [max(pool["num_threads"] for pool in threadpool_info()) for _ in chunk]

    assert set(map_chunks(threads, range(4), jobs=2, chunk_size=1)) == {2}


def test_the_live_engine_runs_blas_on_one_thread():
    pytest.importorskip("threadpoolctl")
    from threadpoolctl import threadpool_info, threadpool_limits

    from sertk.live import StreamingEngine

    with threadpool_limits(limits=2, user_api="blas"):  # the test session's pools come back after
        StreamingEngine.from_recognizer(Recognizer.load("default"))
        assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} == {1}


def test_jobs_are_checked_and_planned(monkeypatch):
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ConfigError, match="jobs must be a positive number of workers"):
            check_jobs(bad)
    monkeypatch.setattr(parallel, "usable_cores", lambda: 4)
    monkeypatch.setattr(parallel, "FORK", True)
    assert plan_jobs(None, items=100) == 4
    assert plan_jobs(None, items=9) == 2  # at least MIN_ITEMS_PER_WORKER items each
    assert plan_jobs(None, items=3) == 1
    assert plan_jobs(None, items=100, own_threads=True) == 1  # torch/onnxruntime, a GPU
    assert plan_jobs(3, items=100, own_threads=True) == 3  # asked for: done
    assert plan_jobs(8, items=2) == 2  # never more workers than items
    monkeypatch.setattr(parallel, "FORK", False)  # threads: one job unless asked
    assert plan_jobs(None, items=100) == 1 and plan_jobs(2, items=100) == 2
    monkeypatch.setattr(parallel, "FORK", True)
    planned = []  # a server's or the live engine's worker thread keeps one process
    thread = threading.Thread(target=lambda: planned.extend([plan_jobs(None, items=100),
                                                            plan_jobs(2, items=100)]))  # fmt: skip
    thread.start()
    thread.join()
    assert planned == [1, 2]


# --- the callers: serial == parallel ------------------------------------------------------------


def same_results(serial: list, other: list) -> None:
    assert len(serial) == len(other)
    for index, (a, b) in enumerate(zip(serial, other, strict=True)):
        assert type(a) is type(b), index
        if isinstance(a, SertkError):
            assert str(a) == str(b), index
        else:
            assert a.to_dict() == b.to_dict(), index  # label, probabilities, duration: exact


@pytest.fixture(scope="module")
def recognizers():
    with Recognizer.load("default", jobs=1) as serial, Recognizer.load("default", jobs=2) as two:
        yield serial, two


def test_predict_batch_in_workers_equals_serial_with_errors_in_place(
    recognizers, corpora_dir, tmp_path
):
    files = emodb(corpora_dir, 12)
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really a wave file")
    empty = tmp_path / "empty.flac"
    empty.write_bytes(b"")
    items = [*files[:5], tmp_path / "missing.wav", files[5].read_bytes(), broken, *files[6:], empty]
    items.insert(3, np.zeros(8000, np.float32) + 0.1)  # a signal among the files
    serial, two = recognizers
    expected = serial.predict_batch(items, sampling_rate=16000, on_error="return", batch_size=5)
    got = two.predict_batch(items, sampling_rate=16000, on_error="return", batch_size=5)
    same_results(expected, got)
    assert sum(isinstance(r, SertkError) for r in got) == 3  # missing, broken, empty
    if parallel.FORK:
        assert two._workers is not None and two._workers.jobs == 2  # workers did run
    # and again on the kept workers, in another batch size: still the same
    same_results(expected, two.predict_batch(items, sampling_rate=16000, on_error="return"))


def test_predict_batch_raises_the_first_failing_item_as_serial_does(recognizers, corpora_dir):
    files = emodb(corpora_dir, 10)
    items = [*files[:6], Path("/nonexistent/first.wav"), *files[6:], Path("/nonexistent/2.wav")]
    messages = []
    for recognizer in recognizers:
        with pytest.raises(AudioError) as caught:
            recognizer.predict_batch(items, batch_size=3)
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and "first.wav" in messages[0]


def test_file_objects_are_read_in_this_process(recognizers, corpora_dir):
    files = emodb(corpora_dir, 8)
    serial, two = recognizers
    two.close()
    with open(files[0], "rb") as handle:
        got = two.predict_batch([handle, *files[1:]])
    assert two._workers is None  # a file object cannot travel to a worker: no workers started
    same_results(serial.predict_batch(files), got)


@pytest.mark.parametrize("name", ["emotion_functionals", "logmel"])
def test_feature_cache_in_workers_equals_serial(name, corpora_dir, tmp_path):
    utterances = [Utterance(p.stem, str(p), "neutral", p.stem[:2]) for p in emodb(corpora_dir, 20)]
    extractor = build_extractor(name)
    preprocess = Preprocess(duration=2.0, crop="start")

    def run(jobs, cache):
        found = list(iter_features(utterances, extractor, preprocess=preprocess, cache=cache,
                                   progress=False, chunk_size=6, jobs=jobs))  # fmt: skip
        return [(item.utterance, item.features, item.seconds, item.cached) for item in found]

    serial = run(1, None)
    cache = FeatureCache(tmp_path / "cache")
    cold, warm = run(2, cache), run(3, cache)
    assert (cache.hits, cache.misses, cache.corrupt) == (20, 20, 0)  # workers' lookups counted
    for results, cached in ((cold, False), (warm, True)):
        assert [r[0] for r in results] == utterances
        assert [r[2] for r in results] == [r[2] for r in serial]
        assert all(r[3] is cached for r in results)
        for (_, expected, *_), (_, features, *_) in zip(serial, results, strict=True):
            assert features.dtype == expected.dtype and np.array_equal(features, expected)


def test_a_failing_utterance_is_named_by_workers_as_in_serial(make_wav):
    utterances = [
        Utterance(f"u{i}", str(make_wav(f"u{i}.wav", duration=0.2 if i == 5 else 1.0)), "x", "s")
        for i in range(9)
    ]

    class Picky:
        name, dim, frame_rate, sampling_rate = "picky", 1, 100.0, 16000

        def __call__(self, signal, sampling_rate):
            if len(signal) < 10000:
                raise FeatureError("too short")
            return np.full((1, 1), len(signal), np.float32)

        def config(self):
            return {"name": "picky"}

    messages = []
    for jobs in (1, 2):
        with pytest.raises(FeatureError) as caught:
            list(iter_features(utterances, Picky(), progress=False, chunk_size=2, jobs=jobs))
        messages.append(str(caught.value))
    assert messages[0] == messages[1] and messages[0].startswith("utterance u5 (")


def test_evaluate_with_views_in_workers_equals_serial(corpora_dir, tmp_path):
    bundle = tmp_path / "with-views"
    shutil.copytree(DEFAULT_MODEL, bundle)
    document = json.loads((bundle / "bundle.json").read_text())
    document["extra"].update(tta_speeds=[0.9], tta_crops=[[0.0, 0.7]])  # format-1 views
    (bundle / "bundle.json").write_text(json.dumps(document))
    rehash_bundle(bundle)  # edited on purpose
    labels = {"W": "angry", "N": "neutral", "F": "happy", "T": "sad"}
    utterances = [
        Utterance(p.stem, str(p), labels[p.stem[5]], p.stem[:2])
        for p in emodb(corpora_dir, 60)
        if p.stem[5] in labels
    ]
    results = [
        evaluate_bundle(
            bundle, utterances, cache=FeatureCache(tmp_path / f"cache{jobs}"), jobs=jobs
        )  # fmt: skip
        for jobs in (1, 2)
    ]
    assert len(utterances) >= 8 and results[0] == results[1]


def test_training_with_workers_equals_serial(tmp_path):
    from test_experiment import toy_overrides, write_toy_corpus

    from sertk.config import load_config
    from sertk.experiment import run_experiment

    csv_path = write_toy_corpus(tmp_path / "toy", speakers=3, per_class=2)
    overrides = toy_overrides(
        csv_path, tmp_path, "features.name=functionals", "features.params={statistics: [mean]}",
        "model.name=ridge", "features.tta_speeds=[0.9]", "preprocess.duration=null",
        "train.augment={speed_factors: [1.1], copies: 1, crops: [[0.0, 0.7]]}",
    )  # fmt: skip
    runs = [
        run_experiment(
            load_config(None, overrides),
            cache_dir=tmp_path / f"cache{jobs}",
            run_dir=tmp_path / f"run{jobs}",
            progress=False,
            jobs=jobs,
        )  # fmt: skip
        for jobs in (1, 2)
    ]
    files = sorted(p.relative_to(runs[0]) for p in runs[0].rglob("predictions.csv"))
    assert len(files) == 3  # one per fold: augmented copies, views and features all in workers
    for name in files:
        assert (runs[0] / name).read_text() == (runs[1] / name).read_text(), name
    summaries = [json.loads((run / "summary.json").read_text()) for run in runs]
    assert summaries[0]["pooled"] == summaries[1]["pooled"]


def test_cli_jobs(corpora_dir, tmp_path, capsys):
    folder = tmp_path / "clips"
    folder.mkdir()
    for path in emodb(corpora_dir, 9):
        shutil.copy(path, folder / path.name)
    outputs = []
    for jobs in ("1", "2"):
        code = main(["predict", str(folder), "--format", "csv", "--no-progress", "--jobs", jobs])
        outputs.append((code, capsys.readouterr().out))
    assert outputs[0] == outputs[1] and outputs[0][0] == 0
    assert len(outputs[0][1].splitlines()) == 10  # header + 9 files
    for command in (["predict", str(folder)], ["evaluate", "default", "--manifest", "m.csv"],
                    ["extract", "--manifest", "m.csv", "--features", "lld"], ["train", "r.yaml"]):  # fmt: skip
        assert main([*command, "--jobs", "0"]) == 2
        assert "--jobs must be a positive number of worker processes, got 0" in (
            capsys.readouterr().err
        )
