"""Batch prediction on Ray Data: files -> read (tasks) -> an actor pool of Recognizers -> rows.

The pipeline::

    ray.data.from_items(paths)                              # files not yet in the output
      .map_batches(read_audio, sampling_rate=bundle's)      # hop 1: load_audio; errors -> rows
      .map_batches(Predictor, compute=ActorPoolStrategy(size=workers), num_gpus=...)
                                                            # hops 2-4: Recognizer.predict_batch
      -> the driver writes rows in atomic parts (sertk.scale.results) as blocks arrive

Each actor loads the bundle once (``Recognizer.load``) and calls ``predict_batch(signals,
sampling_rate=rate, on_error="return")`` on the signals its batch read with the very
``load_audio`` call the Recognizer makes for a path, so labels and probabilities equal local
``sertk predict``. A file that cannot be read or predicted becomes a row with its error; an
exception a batch did not expect is retried item by item, so one bad file never fails the
job. A worker process that dies (killed, out of memory, node lost) is restarted by Ray and its
batch retried; the driver keeps one row per path.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.bundle._hash import content_hash
from sertk.errors import ConfigError, SertkError
from sertk.recognizer import Recognizer, resolve_bundle
from sertk.scale.cluster import (
    Timing,
    block_count,
    cluster_slots,
    connect,
    gpus_for,
    require_ray,
    stream,
    worker_options,
)
from sertk.scale.reading import read_audio
from sertk.scale.results import ResultStore, columns


@dataclasses.dataclass
class PredictSummary:
    """What a :func:`predict_files` run did."""

    output: Path
    files: int  # asked for
    skipped: int  # already in the output
    predicted: int  # rows written by this run (errors included)
    errors: int  # rows of this run with an error
    workers: int
    bundle_hash: str
    timing: Timing = dataclasses.field(default_factory=Timing)  # zeros: nothing was left to do


def predict_files(
    files: Sequence[str | Path],
    *,
    output: str | Path,
    model: str | Path = "default",
    workers: int | None = None,
    address: str | None = None,
    device: str = "cpu",
    gpus_per_worker: float | None = None,
    backend: str = "torch",
    batch_size: int = 16,
    part_rows: int = 256,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
) -> PredictSummary:
    """Predict ``files`` on a Ray cluster into ``output`` (.parquet, .csv or .jsonl).

    Paths are made absolute (workers may run elsewhere: on a multi-node cluster the files, the
    bundle and the output must be on storage every node sees). ``workers``: actors in the pool
    (default: what the cluster fits); ``device="cuda"`` gives each actor ``gpus_per_worker``
    GPUs (default 1). Rows are written in atomic parts of ``part_rows`` rows (or every 10 s),
    and what arrived is written when the job is interrupted, so a killed job loses at most one
    part; rerunning with the same ``output`` skips the files it already holds (see
    :mod:`sertk.scale.results`).
    """
    store = ResultStore(output, flush_rows=part_rows)  # bad options fail before anything
    gpus = gpus_for(device, gpus_per_worker)
    require_ray()  # before any work: say how to install it
    bundle = resolve_bundle(model).resolve()
    recognizer = Recognizer.load(bundle, backend=backend)  # checks the bundle in the driver
    if recognizer.speaker_adapted:
        raise ConfigError(
            f"{bundle} is speaker-adapted: it normalises features with statistics over all of "
            "a speaker's utterances in one call, which a distributed job cannot gather; predict "
            "it locally with `sertk predict ... --adapt speaker` (or --adapt all)"
        )
    digest = content_hash(bundle)
    done = store.load(bundle_hash=digest)
    paths = [str(Path(f).resolve()) for f in files]
    todo = list(dict.fromkeys(p for p in paths if p not in done))
    summary = PredictSummary(store.output, len(paths), len(paths) - len(todo), 0, 0, 0, digest)
    if todo:
        constructor = {"bundle": str(bundle), "device": device, "backend": backend,
                       "bundle_hash": digest, "labels": list(recognizer.labels)}  # fmt: skip
        rate = recognizer.sampling_rate
        del recognizer  # the actors hold their own
        _run(todo, store, summary, constructor, workers=workers, address=address, gpus=gpus,
             batch_size=batch_size, rate=rate, progress=progress)  # fmt: skip
    store.finish()
    if log is not None:
        log(summary_line(summary))
    return summary


def summary_line(summary: PredictSummary) -> str:
    timing = summary.timing
    return (
        f"predicted {summary.predicted} files in {timing.seconds:.1f} s on {summary.workers} "
        f"workers ({timing.rate(summary.predicted):.1f} files/s; "
        f"{timing.steady_rate(summary.predicted):.1f} files/s after the first results at "
        f"{timing.startup:.1f} s), {summary.errors} errors, {summary.skipped} already in "
        f"{summary.output}"
    )


def _run(todo, store, summary, constructor, *, workers, address, gpus, batch_size, rate,
         progress):  # fmt: skip
    """The Ray job: stream rows into ``store`` with a files/s progress bar."""
    with connect(address, workers=workers) as ray:
        size = workers or cluster_slots(ray, gpus_per_worker=gpus)
        dataset, summary.workers = pipeline(ray, todo, constructor, workers=size, gpus=gpus,
                                            batch_size=batch_size, rate=rate)  # fmt: skip
        try:
            for batch in stream(dataset, summary.timing, total=len(todo), desc="predict",
                                progress=progress):  # fmt: skip
                rows = _rows(batch, constructor["labels"])
                store.add(rows)
                summary.predicted += len(rows)
                summary.errors += sum(row["error"] is not None for row in rows)
        finally:  # interrupted or failed: keep every row that arrived for the next run
            store.flush()


def pipeline(ray, paths, constructor, *, workers: int, gpus: float, batch_size: int, rate: int):
    """The Ray Dataset of result rows for ``paths`` (lazy; iterate it to run the job) and the
    size of its actor pool (no more actors than batches)."""
    blocks = block_count(len(paths), workers=workers, batch_size=batch_size)
    workers = min(workers, blocks)
    dataset = (
        ray.data.from_items([{"path": p} for p in paths], override_num_blocks=blocks)
        .map_batches(read_audio, fn_kwargs={"sampling_rate": rate}, batch_size=None)
        .map_batches(
            Predictor,
            fn_constructor_kwargs=constructor,
            compute=ray.data.ActorPoolStrategy(size=workers),
            batch_size=None,
            **worker_options(gpus_per_worker=gpus),
        )
    )
    return dataset, workers


class Predictor:
    """A Ray Data actor holding one Recognizer: a batch of read signals -> result columns."""

    def __init__(self, *, bundle: str, device: str, backend: str, bundle_hash: str,
                 labels: list[str]) -> None:  # fmt: skip
        self.recognizer = Recognizer.load(bundle, device=device, backend=backend)
        self.rate = self.recognizer.sampling_rate
        self.bundle_hash, self.labels = bundle_hash, labels

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        paths, errors = list(batch["path"]), [str(e) for e in batch["error"]]
        good = [i for i, error in enumerate(errors) if not error]
        results: list[Any] = list(errors)
        for i, result in zip(good, self._predict([batch["signal"][i] for i in good]), strict=True):
            results[i] = result
        return self._columns(paths, results)

    def _predict(self, signals: list[np.ndarray]) -> list[Any]:
        """Predictions, or the error (a message) of each signal; never raises."""
        if not signals:
            return []
        try:
            return self.recognizer.predict_batch(
                signals, sampling_rate=self.rate, on_error="return"
            )
        except Exception:  # noqa: BLE001 (a bug on one item must not fail the job)
            pass
        results: list[Any] = []
        for signal in signals:
            try:
                results += self.recognizer.predict_batch([signal], sampling_rate=self.rate)
            except Exception as error:  # noqa: BLE001
                results.append(error)
        return results

    def _columns(self, paths: list[str], results: list[Any]) -> dict[str, Any]:
        count = len(paths)
        out: dict[str, Any] = {
            "path": np.asarray(paths, dtype=object),
            "label": np.full(count, "", dtype=object),
            "confidence": np.full(count, np.nan),
            "speech": np.full(count, True),
            "duration": np.full(count, np.nan),
            "error": np.full(count, "", dtype=object),
        }
        probabilities = np.full((count, len(self.labels)), np.nan)
        for i, (path, result) in enumerate(zip(paths, results, strict=True)):
            if isinstance(result, str | BaseException):
                out["error"][i] = _message(path, result)
                continue
            out["label"][i], out["speech"][i] = result.label, result.speech
            out["confidence"][i] = np.nan if result.confidence is None else result.confidence
            out["duration"][i] = result.duration
            if result.probabilities is not None:
                probabilities[i] = [result.probabilities[x] for x in self.labels]
        for k, label in enumerate(self.labels):
            out[f"p_{label}"] = probabilities[:, k]
        out["bundle_hash"] = np.full(count, self.bundle_hash, dtype=object)
        return out


def _message(path: str, error: str | BaseException) -> str:
    """The error text as local ``sertk predict`` prints it (prefixed by the file when it lacks it)."""
    if isinstance(error, BaseException) and not isinstance(error, SertkError):
        error = f"{type(error).__name__}: {error}"
    text = str(error)
    return text if text.startswith(path) else f"{path}: {text}"


def _plain(value: Any) -> Any:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    return str(value)


def _rows(batch: dict[str, np.ndarray], labels: Sequence[str]) -> list[dict[str, Any]]:
    """Result columns of one block -> row dicts in output column order (None for missing)."""
    rows = []
    for i in range(len(batch["path"])):
        error = str(batch["error"][i]) or None
        row: dict[str, Any] = {}
        for name in columns(labels):
            value = batch[name][i]
            if name == "error" or (error is not None and name not in ("path", "bundle_hash")):
                row[name] = error if name == "error" else None  # no prediction for this file
            else:  # plain Python values; NaN (a "no speech" file's confidence): None
                row[name] = _plain(value)
        rows.append(row)
    return rows
