"""``--engine ray``: extraction and batch prediction on a real local Ray cluster, and its faults.

One cluster serves the whole session (``ray_cluster``: ``ray.init`` with its own temporary
folder and 3 logical CPUs, shut down at the end); the tests are marked for one pytest-xdist
group so they share it. The Ray pipelines must give exactly what the local paths give.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from test_experiment import write_toy_corpus
from test_recognizer import make_bundle, make_classical_bundle

from sertk.audio import Preprocess
from sertk.bundle import save_ensemble_bundle
from sertk.bundle._hash import content_hash
from sertk.cli import main
from sertk.corpora import Utterance, read_manifest, write_manifest
from sertk.errors import ClusterError, ConfigError
from sertk.features import build_extractor
from sertk.features.cache import FeatureCache, iter_features
from sertk.recognizer import Recognizer
from sertk.scale import predict_files
from sertk.scale.cluster import check_address
from sertk.scale.results import ResultStore, read_rows

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
pytestmark = [
    pytest.mark.xdist_group("ray"),
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context"),  # Ray's own
]


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster for the session: 3 logical CPUs (two actors and a reader)."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.data")
    folder = tempfile.mkdtemp(prefix="sertk-ray-test-")  # short: Ray's socket paths are limited
    ray.init(
        num_cpus=3, include_dashboard=False, _temp_dir=folder, object_store_memory=200 * 1024**2,
        logging_level=logging.WARNING, log_to_driver=False,
    )  # fmt: skip
    yield ray
    ray.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def probabilities(prediction, labels) -> list[float]:
    return [prediction.probabilities[label] for label in labels]


# --- batch prediction ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """The seven EmoDB example clips and a file that is not audio, in one folder."""
    folder = tmp_path_factory.mktemp("clips")
    for clip in EXAMPLES.glob("*.flac"):
        shutil.copy(clip, folder / clip.name)
    (folder / "broken.wav").write_bytes(b"RIFF....WAVEnot really")
    return folder


def test_predict_with_the_default_model_equals_local_predict(ray_cluster, clips, tmp_path):
    output = tmp_path / "preds.parquet"
    code, out, err = run_cli("predict", str(clips), "--engine", "ray", "--workers", "2",
                             "--output", str(output), "--no-progress")  # fmt: skip
    assert code == 1, err  # one file failed: reported, not fatal
    assert "1 files failed" in err and "predicted 8 files" in out and "files/s" in out
    rows = {Path(row["path"]).name: row for row in read_rows(output, "parquet")}
    assert len(rows) == 8
    broken = rows.pop("broken.wav")
    assert "broken.wav" in broken["error"] and broken["label"] is None
    recognizer = Recognizer.load("default")
    files = sorted(clips.glob("*.flac"))
    local = recognizer.predict_batch(files)
    digest = content_hash(recognizer.bundle.path)
    for file, prediction in zip(files, local, strict=True):
        row = rows[file.name]
        assert row["error"] is None and row["bundle_hash"] == digest
        assert row["label"] == prediction.label
        assert [row[f"p_{x}"] for x in recognizer.labels] == probabilities(
            prediction, recognizer.labels
        )


def test_predict_any_bundle_kind(ray_cluster, tmp_path):
    """An ensemble of a GRU-attention torch bundle and a classical one (different features)."""
    members = [make_bundle(tmp_path / "gru"), make_classical_bundle(tmp_path / "classical")]
    bundle = save_ensemble_bundle(tmp_path / "ensemble", members)
    folder = tmp_path / "audio"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k, frequency in enumerate((200, 300, 450, 220, 330, 470)):
        t = np.arange(16000 + 2000 * k) / 16000
        signal = 0.3 * np.sin(2 * np.pi * frequency * t) + 0.01 * rng.standard_normal(t.size)
        sf.write(folder / f"tone{k}.wav", signal.astype(np.float32), 16000)
    local = Recognizer.load(bundle)
    files = sorted(folder.glob("*.wav"))
    expected = {f.name: p for f, p in zip(files, local.predict_batch(files), strict=True)}
    output = tmp_path / "preds.jsonl"  # (CSV: the rerun test; Parquet: the default model's)
    summary = predict_files([folder / f.name for f in files], output=output, model=bundle,
                            workers=2, progress=False)  # fmt: skip
    assert (summary.predicted, summary.errors) == (6, 0)
    rows = read_rows(output, "jsonl")
    assert sorted(Path(r["path"]).name for r in rows) == sorted(expected)
    for row in rows:
        prediction = expected[Path(row["path"]).name]
        assert row["label"] == prediction.label
        np.testing.assert_allclose(
            [row[f"p_{x}"] for x in local.labels],
            probabilities(prediction, local.labels), rtol=0, atol=1e-6,
        )  # fmt: skip


def test_rerun_skips_files_already_done_and_reads_parts(ray_cluster, clips, tmp_path):
    files = sorted(clips.glob("*.flac"))
    output = tmp_path / "preds.csv"
    first = predict_files(files[:3], output=output, workers=2, progress=False)
    assert (first.predicted, first.skipped) == (3, 0)
    # an interrupted run left a part behind: its rows count as done too
    store = ResultStore(output)
    store.load(bundle_hash=first.bundle_hash)
    row = {**read_rows(output, "csv")[0], "path": str(files[3])}
    store.add([row])
    store.flush()  # no finish(): as if the job had been killed here
    assert len(list(store.parts.glob("part-*.jsonl"))) == 1
    again = predict_files([*files, clips / "broken.wav"], output=output, workers=2,
                          progress=False)  # fmt: skip
    assert (again.skipped, again.predicted, again.errors) == (4, 4, 1)
    rows = read_rows(output, "csv")
    assert sorted(r["path"] for r in rows) == sorted(map(str, [*files, clips / "broken.wav"]))
    assert not store.parts.exists()
    # the broken file is tried again on the next run; the others are not
    last = predict_files([*files, clips / "broken.wav"], output=output, progress=False)
    assert (last.skipped, last.predicted) == (7, 1)


def test_an_output_of_another_bundle_is_refused(ray_cluster, clips, tmp_path):
    output = tmp_path / "preds.jsonl"
    output.write_text(json.dumps({"path": "/x.wav", "bundle_hash": "0" * 64, "error": None}) + "\n")
    with pytest.raises(ConfigError, match="holds predictions of another bundle"):
        predict_files([clips / "03a02Wc.flac"], output=output, progress=False)


def ray_worker_pids(name: str) -> list[int]:
    """Pids of this session's Ray worker processes whose title names ``name`` (descendants of
    this test process only, never another user's Ray)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "MapWorker" in title and name in title and _descends_from_me(int(entry.name)):
            pids.append(int(entry.name))
    return pids


def _descends_from_me(pid: int) -> bool:
    me = os.getpid()
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return False
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # field 4: the parent's pid
        if pid == me:
            return True
    return False


def test_a_killed_worker_is_retried_and_every_file_is_written_once(ray_cluster, tmp_path):
    rng = np.random.default_rng(1)
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(40):
        t = np.arange(3 * 16000) / 16000
        signal = 0.3 * np.sin(2 * np.pi * (150 + 10 * k) * t) + 0.02 * rng.standard_normal(t.size)
        sf.write(folder / f"clip{k:02d}.wav", signal.astype(np.float32), 16000)
    files = sorted(folder.glob("*.wav"))
    output = tmp_path / "preds.parquet"
    outcome: dict = {}

    def job():
        try:
            outcome["summary"] = predict_files(files, output=output, workers=2, batch_size=2,
                                               part_rows=2, progress=False)  # fmt: skip
        except BaseException as error:  # noqa: BLE001 (reported by the assertion below)
            outcome["error"] = error

    thread = threading.Thread(target=job)
    thread.start()
    parts = output.with_name(output.name + ".parts")
    deadline = time.monotonic() + 120
    killed = None
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        pids = ray_worker_pids("Predictor")
        if pids and parts.is_dir() and any(parts.glob("part-*")):  # rows done, job running
            os.kill(pids[0], 9)
            killed = pids[0]
        time.sleep(0.02)
    thread.join(timeout=300)
    assert killed is not None, "the job ended before a worker could be killed"
    assert "error" not in outcome, outcome.get("error")
    rows = read_rows(output, "parquet")
    assert sorted(r["path"] for r in rows) == [str(f) for f in files]  # each exactly once
    assert all(r["error"] is None for r in rows)
    assert killed not in ray_worker_pids("Predictor")


# --- feature extraction ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_manifest(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    write_toy_corpus(root / "corpus", speakers=2, per_class=2)
    from sertk.corpora import scan_corpus

    utterances = scan_corpus("generic", root / "corpus" / "labels.csv").utterances
    return write_manifest(utterances, root / "toy.csv")


def test_extract_on_ray_fills_the_cache_a_local_run_reads(ray_cluster, toy_manifest, tmp_path):
    shared = tmp_path / "shared-cache"
    code, out, err = run_cli("extract", str(toy_manifest), "--features", "logmel",
                             "--set", "n_mels=24", "--duration", "0.5", "--cache", str(shared),
                             "--engine", "ray", "--workers", "2", "--no-progress")  # fmt: skip
    assert code == 0, err
    utterances = read_manifest(toy_manifest)
    assert f"cache {shared}: 0 hits, {len(utterances)} computed, 0 failed" in out
    extractor = build_extractor("logmel", n_mels=24)
    preprocess = Preprocess(duration=0.5, crop="center")
    cache = FeatureCache(shared)
    from_ray = [x.features for x in iter_features(utterances, extractor, preprocess=preprocess,
                                                  cache=cache, progress=False)]  # fmt: skip
    assert (cache.hits, cache.misses) == (len(utterances), 0)  # every entry found
    fresh = FeatureCache(tmp_path / "local-cache")
    local = [x.features for x in iter_features(utterances, extractor, preprocess=preprocess,
                                               cache=fresh, progress=False)]  # fmt: skip
    assert fresh.misses == len(utterances)
    for a, b in zip(from_ray, local, strict=True):
        np.testing.assert_array_equal(a, b)  # identical features


def test_extract_on_ray_reports_a_bad_file_and_caches_the_rest(ray_cluster, toy_manifest,
                                                              tmp_path):  # fmt: skip
    utterances = read_manifest(toy_manifest)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"nothing here")
    extra = Utterance("bad", str(bad), "neutral", "spk9", {})
    manifest = write_manifest([*utterances, extra], tmp_path / "with-bad.csv")
    code, out, err = run_cli("extract", "--manifest", str(manifest), "--features", "mfcc",
                             "--cache", str(tmp_path / "c"), "--engine", "ray",
                             "--no-progress")  # fmt: skip
    assert code == 1
    assert f"0 hits, {len(utterances)} computed, 1 failed" in out
    assert "sertk extract: bad:" in err and "bad.wav" in err


def test_extract_joins_a_running_cluster_by_address(ray_cluster, toy_manifest, tmp_path):
    """A second process joins the session's cluster with --address HOST:PORT."""
    address = ray_cluster.get_runtime_context().gcs_address
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    process = subprocess.run(
        [sys.executable, "-m", "sertk", "extract", str(toy_manifest), "--features", "mfcc",
         "--cache", str(tmp_path / "c"), "--engine", "ray", "--address", address,
         "--workers", "1", "--no-progress"],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr[-3000:]
    assert "on 1 Ray workers" in process.stdout
    assert len(list((tmp_path / "c").rglob("*.safetensors"))) == len(read_manifest(toy_manifest))


# --- faults and options ------------------------------------------------------------------------


def test_an_unreachable_address_fails_fast_with_a_clear_message(clips, tmp_path):
    pytest.importorskip("ray")
    start = time.monotonic()
    code, _, err = run_cli("predict", str(clips), "--engine", "ray", "--address",
                           "127.0.0.1:1", "--output", str(tmp_path / "p.csv"))  # fmt: skip
    assert code == 2 and time.monotonic() - start < 30
    assert "cannot reach the Ray cluster at 127.0.0.1:1" in err and "ray start --head" in err
    with socket.create_server(("127.0.0.1", 0)) as server:  # a port that is open, but not Ray
        port = server.getsockname()[1]
        start = time.monotonic()
        with pytest.raises(ClusterError, match="the port is open but no Ray GCS answers"):
            check_address(f"127.0.0.1:{port}", timeout=2)
        assert time.monotonic() - start < 10
    with pytest.raises(ClusterError, match="is not HOST:PORT"):
        check_address("headnode")


def test_without_ray_the_engine_says_how_to_install_it(clips, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if not installed
    for argv in (
        ["predict", str(clips), "--engine", "ray", "--output", str(tmp_path / "p.csv")],
        ["extract", str(tmp_path / "m.csv"), "--features", "mfcc", "--engine", "ray"],
    ):
        if argv[0] == "extract":
            write_manifest(read_manifest_of(clips), tmp_path / "m.csv")
        code, _, err = run_cli(*argv)
        assert code == 2 and "Traceback" not in err
        assert "--engine ray needs Ray" in err and "pip install 'sertk[ray]'" in err


def read_manifest_of(folder: Path) -> list:
    return [Utterance(p.stem, str(p), "neutral", "s1") for p in sorted(folder.glob("*.flac"))]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--engine", "ray"], "give --output preds.parquet"),
        (["--engine", "ray", "--output", "p.xlsx"], "use .parquet, .csv or .jsonl"),
        (["--engine", "ray", "--output", "p.csv", "--timeline"], "--timeline do not apply"),
        (["--workers", "2"], "--workers go with --engine ray"),
        (["--engine", "ray", "--output", "p.csv", "--workers", "0"], "--workers must be"),
        (["--engine", "ray", "--output", "p.csv", "--gpus-per-worker", "1"], "needs --device cuda"),
    ],
)
def test_predict_engine_options_are_checked(clips, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli("predict", str(clips), *argv)
    assert code == 2 and message in err


def test_extract_takes_the_manifest_positionally_or_as_an_option(tmp_path):
    code, _, err = run_cli("extract", "--features", "mfcc")
    assert code == 2 and "no manifest" in err
    code, _, err = run_cli("extract", "a.csv", "--manifest", "b.csv", "--features", "mfcc")
    assert code == 2 and "two different manifests" in err


# --- data-parallel training on Ray Train --------------------------------------------------------


def test_train_on_ray_train_workers_equals_one_process(ray_cluster, tmp_path):
    """``sertk train --engine ray --ddp 2``: two Ray Train workers (gloo), one fold."""
    from test_ddp import fold_histories, toy_recipe

    folds = {"strategy": "explicit", "folds": [["spk0", "spk1"]], "valid_speakers": 1}
    recipe = toy_recipe(tmp_path, folds=folds, final_model=False)
    folders = {}
    for name, extra in (("one", []), ("ray", ["--engine", "ray", "--ddp", "2"])):
        code, out, err = run_cli("train", str(recipe), "--cache", str(tmp_path / "cache"),
                                 "--output-dir", str(tmp_path / name), "--no-progress", *extra)  # fmt: skip
        assert code == 0, err
        folders[name] = Path(out.strip().splitlines()[-1].removeprefix("run folder: "))
    one, ray = fold_histories(folders["one"]), fold_histories(folders["ray"])
    assert list(one) == list(ray) and len(one) == 1
    (fold,) = one
    np.testing.assert_allclose(ray[fold]["train_loss"], one[fold]["train_loss"], rtol=1e-4)
    assert ray[fold]["valid_ua"] == one[fold]["valid_ua"]
    bundle = folders["ray"] / "folds" / fold / "bundle"
    assert Recognizer.load(bundle).labels == Recognizer.load(
        folders["one"] / "folds" / fold / "bundle").labels  # fmt: skip
    assert not (folders["ray"] / "folds" / fold / ".ray-train").exists()


def test_workers_that_cannot_start_fail_the_job_with_their_message(ray_cluster, toy_manifest,
                                                                  tmp_path):  # fmt: skip
    """E.g. a node without the model: the workers' own error, as a ClusterError, no hang."""
    from sertk.scale import extract_to_cache

    with pytest.raises(ClusterError, match=r"failed in a worker: FeatureError: unknown option"):
        extract_to_cache(read_manifest(toy_manifest), build_extractor("logmel"),
                         preprocess=Preprocess(duration=0.5), cache_root=tmp_path / "c",
                         runtime={"lenses": 2}, workers=1, progress=False)  # fmt: skip


def test_predict_takes_a_manifest(ray_cluster, toy_manifest, tmp_path):
    output = tmp_path / "preds.jsonl"
    code, out, err = run_cli("predict", str(toy_manifest), "--engine", "ray", "--workers", "1",
                             "--output", str(output), "--no-progress")  # fmt: skip
    assert code == 0, err
    paths = sorted(str(Path(u.path).resolve()) for u in read_manifest(toy_manifest))
    assert sorted(row["path"] for row in read_rows(output, "jsonl")) == paths


def test_an_interrupted_predict_keeps_its_rows_and_the_rerun_finishes(ray_cluster, tmp_path):
    """Ctrl-C (SIGINT) to a `sertk predict --engine ray` process mid-job, then the same command.
    The job is long (150 files, one worker) next to the moment it is interrupted (3 files done),
    so results already in flight cannot finish it first."""
    import re
    import signal

    total = 150
    folder = tmp_path / "clips"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for k in range(total):
        signal_ = 0.3 * np.sin(2 * np.pi * (180 + 7 * k) * np.arange(48000) / 16000)
        sf.write(folder / f"c{k:03d}.wav", (signal_ + 0.02 * rng.standard_normal(48000))
                 .astype(np.float32), 16000)  # fmt: skip
    output = tmp_path / "preds.csv"
    address = ray_cluster.get_runtime_context().gcs_address
    argv = [sys.executable, "-m", "sertk", "predict", str(folder), "--engine", "ray",
            "--address", address, "--workers", "1", "--batch-size", "1", "--output", str(output)]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    # as from a terminal: Ctrl-C's default action (a test runner's worker may ignore SIGINT,
    # and an ignored signal stays ignored in its children)
    process = subprocess.Popen(
        argv, stderr=subprocess.PIPE, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    seen, text = 0, b""
    while process.poll() is None and not 3 <= seen < total:
        text += os.read(process.stderr.fileno(), 4096)
        counts = re.findall(rb"(\d+)/%d" % total, text)
        seen = int(counts[-1]) if counts else 0
    assert process.poll() is None, "the job ended before it could be interrupted"
    process.send_signal(signal.SIGINT)
    remaining = process.communicate(timeout=120)[1]
    assert process.returncode == 130, remaining[-2000:]
    parts = list(output.with_name(output.name + ".parts").glob("part-*.jsonl"))
    kept = sum(len(read_rows(part, "jsonl")) for part in parts)
    assert kept >= seen and not output.exists()
    summary = predict_files(sorted(folder.glob("*.wav")), output=output, progress=False)
    assert (summary.skipped, summary.predicted) == (kept, total - kept)
    assert sorted(Path(r["path"]).name for r in read_rows(output, "csv")) == [
        f"c{k:03d}.wav" for k in range(total)
    ]
