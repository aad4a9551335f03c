"""On-disk feature cache and ``extract_utterances``, the loop that fills it.

**Key.** An entry is keyed by sha256 of canonical JSON of its key parts. ``extract_utterances``
uses ``{"audio": audio_hash(signal), "extractor": ..., "preprocess": preprocess.to_dict()}``
where ``signal`` is the decoded, resampled, *preprocessed* float32 signal the extractor actually
sees. Hashing samples rather than file bytes makes the key exact: a change in decoding,
resampling or preprocessing code changes the samples and hence the key, identical audio in two
files shares an entry, and in-memory signals cache too. The price is decoding every file even on
a hit (about 1 ms per 3 s FLAC, small next to any extractor). The preprocessing config is in the
key as well, so entries stay self-describing. The extractor part is ``extractor.cache_key()``
when defined (SSL: the checkpoint fingerprint, not its path) else ``extractor.config()``.
:func:`key_base` and :func:`entry_key` build these keys for other writers (``sertk.scale``).

**Entries.** One safetensors file per entry, ``root/ab/abcd....safetensors``, holding the array
and, in its metadata, the sha256 of the array bytes and the full key. Writes go to a temporary
file in the same folder and ``os.replace`` it into place, so concurrent writers of one key and
crashes never leave a partial entry (a killed writer may leave a ``.tmp`` file; it is never
read). An unreadable, truncated or checksum-mismatched entry counts as ``corrupt``, is deleted and
recomputed. Files are read with safetensors (never pickle).

Default location: ``$SERTK_CACHE`` if set, else ``~/.cache/sertk/features``.

>>> from sertk.audio import Preprocess
>>> from sertk.corpora import scan_corpus
>>> from sertk.features.spectral import LogMel
>>> utterances = scan_corpus("emodb", "examples").utterances[:2]
>>> cache = FeatureCache("feature-cache")
>>> features = extract_utterances(utterances, LogMel(), preprocess=Preprocess(), cache=cache,
...                               progress=False)
>>> features[0].shape  # [frames, n_mels] of 3 s at 100 Hz
(301, 64)
>>> features = extract_utterances(utterances, LogMel(), preprocess=Preprocess(), cache=cache,
...                               progress=False)
>>> cache.misses, cache.hits  # the second pass reads both from the cache
(2, 2)
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm.auto import tqdm

from sertk.audio import load_audio
from sertk.errors import FeatureError
from sertk.features.base import runs_own_threads
from sertk.parallel import Workers, chunk_length, chunked, plan_jobs

FORMAT = "sertk-features/1"


def default_cache_dir() -> Path:
    """``$SERTK_CACHE`` if set, else ``~/.cache/sertk/features``."""
    return Path(os.environ.get("SERTK_CACHE") or Path.home() / ".cache" / "sertk" / "features")


def audio_hash(signal: np.ndarray, sampling_rate: int) -> str:
    """sha256 of a float32 signal's shape, rate and samples (hex)."""
    array = np.ascontiguousarray(signal, dtype=np.float32)
    digest = hashlib.sha256(f"float32 {array.shape} {int(sampling_rate)}\n".encode())
    digest.update(array.tobytes())
    return digest.hexdigest()


def _canonical(key_parts: Any) -> str:
    try:
        return json.dumps(key_parts, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as error:
        raise FeatureError(f"cache key parts must be JSON-serialisable: {error}") from error


class FeatureCache:
    """Content-addressed feature arrays under ``root`` (see the module docstring).

    ``hits``, ``misses`` and ``corrupt`` count lookups since construction.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_cache_dir()
        self.hits = self.misses = self.corrupt = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"FeatureCache({str(self.root)!r})"

    def path(self, key_parts: Any) -> Path:
        """Where the entry for ``key_parts`` lives (whether or not it exists)."""
        key = hashlib.sha256(_canonical(key_parts).encode()).hexdigest()
        return self.root / key[:2] / f"{key}.safetensors"

    def get(self, key_parts: Any) -> np.ndarray | None:
        """The cached array, or None on a miss (a corrupt entry is deleted and counts as a miss)."""
        path, canonical = self.path(key_parts), _canonical(key_parts)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._count("misses")
            return None
        except OSError as error:
            raise FeatureError(f"cannot read feature cache entry {path}: {error}") from error
        array = _decode(data, canonical)
        if array is None:
            self._count("corrupt", "misses")
            path.unlink(missing_ok=True)
            return None
        self._count("hits")
        return array

    def put(self, key_parts: Any, array: np.ndarray) -> np.ndarray:
        """Store ``array`` atomically; returns the (contiguous) array stored."""
        if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiub":
            raise FeatureError(
                f"only numeric numpy arrays can be cached, got {type(array).__name__}"
            )
        array = np.ascontiguousarray(array)
        path = self.path(key_parts)
        data = _encode(array, _canonical(key_parts))
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem[:16]}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, path)
            tmp = None
        except OSError as error:
            raise FeatureError(
                f"cannot write feature cache entry {path}: {error}; free disk space or choose "
                "another cache folder ($SERTK_CACHE or --cache)"
            ) from error
        finally:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
        return array

    def get_or_compute(self, key_parts: Any, compute_fn: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached array for ``key_parts``, else ``compute_fn()`` stored and returned."""
        array = self.get(key_parts)
        if array is None:
            array = self.put(key_parts, compute_fn())
        return array

    def add_counts(self, hits: int, misses: int, corrupt: int) -> None:
        """Add lookups counted elsewhere (e.g. by a worker process's cache of this folder)."""
        with self._lock:
            self.hits, self.misses = self.hits + hits, self.misses + misses
            self.corrupt += corrupt

    def _count(self, *names: str) -> None:
        with self._lock:
            for name in names:
                setattr(self, name, getattr(self, name) + 1)


def _encode(array: np.ndarray, canonical: str) -> bytes:
    from safetensors.numpy import save

    checksum = hashlib.sha256(array.tobytes()).hexdigest()
    return save(
        {"features": array}, metadata={"format": FORMAT, "sha256": checksum, "key": canonical}
    )


def _decode(data: bytes, canonical: str) -> np.ndarray | None:
    """The entry's array if it is intact and belongs to ``canonical``, else None."""
    from safetensors.numpy import load

    try:
        size = int.from_bytes(data[:8], "little")
        metadata = json.loads(data[8 : 8 + size])["__metadata__"]
        array = load(data)["features"]
    except Exception:  # any damage to the bytes: treat as corrupt
        return None
    intact = metadata.get("sha256") == hashlib.sha256(array.tobytes()).hexdigest()
    return array if intact and metadata.get("key") == canonical else None


class Extracted(NamedTuple):
    """One result of :func:`iter_features`."""

    utterance: Any
    features: np.ndarray
    seconds: float  # duration of the (preprocessed) signal the features came from
    cached: bool


def iter_features(
    utterances: Sequence[Any],
    extractor: Any,
    *,
    preprocess: Any = None,
    cache: FeatureCache | None = None,
    progress: bool = True,
    chunk_size: int = 16,
    jobs: int | None = None,
) -> Iterator[Extracted]:
    """Yield :class:`Extracted` per utterance, in order, working on chunks of ``chunk_size`` files.

    Each file is read with ``sertk.audio.load_audio`` at the rate of ``preprocess`` (else of the
    extractor, else 16 kHz), passed through ``preprocess(signal, rate)`` (inference mode), looked
    up in ``cache``; misses are extracted together (``extractor.extract_batch`` when present)
    and stored. ``jobs`` worker processes take a chunk each (None: one per core, or 1 for an
    extractor with its own threads; see :mod:`sertk.parallel`); results and errors are those of
    ``jobs=1``, in the same order. Only the chunks in flight are in memory.
    """
    rate = extraction_rate(extractor, preprocess)
    base = key_base(extractor, preprocess=preprocess)
    jobs = plan_jobs(jobs, items=len(utterances), own_threads=runs_own_threads(extractor))
    size = chunk_length(len(utterances), jobs, limit=chunk_size)
    work = _ChunkExtraction(
        extractor, preprocess, None if cache is None else cache.root, base, rate
    )
    chunks = chunked(utterances, size)
    with tqdm(
        total=len(utterances), unit="file", desc=f"{extractor.name} features", disable=not progress
    ) as bar, Workers(work, jobs=jobs) as workers:  # fmt: skip
        for chunk, (results, counts) in zip(chunks, workers.map(chunks), strict=True):
            if cache is not None:
                cache.add_counts(*counts)
            for utterance, (features, seconds, cached) in zip(chunk, results, strict=True):
                yield Extracted(utterance, features, seconds, cached)
            bar.update(len(chunk))


class _ChunkExtraction:
    """:func:`iter_features`' work on one chunk of utterances, in this process or a worker:
    per utterance ``(features, seconds, cached)``, and the chunk's cache counts (a worker's
    lookups are counted in its own ``FeatureCache`` of the same folder and added up here)."""

    def __init__(self, extractor: Any, preprocess: Any, root: Path | None, base: dict, rate: int):
        self.extractor, self.preprocess, self.root, self.base, self.rate = (
            extractor, preprocess, root, base, rate,
        )  # fmt: skip

    def __call__(self, chunk: Sequence[Any]) -> tuple[list, tuple[int, int, int]]:
        cache = None if self.root is None else FeatureCache(self.root)
        signals = []
        for utterance in chunk:
            signal, _ = load_audio(utterance.path, sampling_rate=self.rate)
            preprocess = self.preprocess
            signals.append(preprocess(signal, self.rate) if preprocess is not None else signal)
        keys = [entry_key(self.base, s, self.rate) for s in signals]
        found = [cache.get(key) if cache is not None else None for key in keys]
        missing = [i for i, features in enumerate(found) if features is None]
        computed = _extract(
            self.extractor, [chunk[i] for i in missing], [signals[i] for i in missing], self.rate
        )
        for i, features in zip(missing, computed, strict=True):
            found[i] = cache.put(keys[i], features) if cache is not None else features
        results = [
            (found[i], len(signals[i]) / self.rate, i not in missing) for i in range(len(chunk))
        ]
        counts = (0, 0, 0) if cache is None else (cache.hits, cache.misses, cache.corrupt)
        return results, counts


def extract_utterances(
    utterances: Sequence[Any],
    extractor: Any,
    *,
    preprocess: Any = None,
    cache: FeatureCache | None = None,
    progress: bool = True,
    jobs: int | None = None,
) -> list[np.ndarray]:
    """Features of each utterance (``[frames, dim]`` or ``[layers, frames, dim]``), in order.

    ``utterances`` are ``sertk.corpora.Utterance`` (anything with ``.path``); see
    :func:`iter_features` for loading, preprocessing, batching, caching and ``jobs``.
    """
    return [
        item.features
        for item in iter_features(
            utterances,
            extractor,
            preprocess=preprocess,
            cache=cache,
            progress=progress,
            jobs=jobs,
        )  # fmt: skip
    ]


def cached_extract(
    extractor: Any, signal: np.ndarray, sampling_rate: int, *, preprocess: Any,
    cache: FeatureCache | None,
) -> np.ndarray:  # fmt: skip
    """``extractor`` on one preprocessed ``signal`` (e.g. an augmented copy or a test-time view
    of an utterance), through ``cache`` keyed by the samples themselves, as
    :func:`iter_features` keys utterances; ``preprocess`` (its config is part of the key)."""
    if cache is None:
        return extractor(signal, sampling_rate)
    key = entry_key(key_base(extractor, preprocess=preprocess), signal, sampling_rate)
    features = cache.get(key)
    return cache.put(key, extractor(signal, sampling_rate)) if features is None else features


def key_base(extractor: Any, *, preprocess: Any = None) -> dict[str, Any]:
    """The key parts every entry of ``extractor`` after ``preprocess`` shares (computed once per
    run: an SSL extractor's ``cache_key`` fingerprints its checkpoint)."""
    key_fn = getattr(extractor, "cache_key", None) or extractor.config
    base = {"format": FORMAT, "extractor": key_fn()}
    base["preprocess"] = preprocess.to_dict() if preprocess is not None else None
    return base


def entry_key(base: dict[str, Any], signal: np.ndarray, sampling_rate: int) -> dict[str, Any]:
    """The full key of one entry: ``base`` (:func:`key_base`) plus the hash of the preprocessed
    float32 ``signal`` ``[samples]`` the extractor sees. Any process that writes entries with
    this key (a distributed extraction, say) fills the cache :func:`iter_features` reads."""
    return {**base, "audio": audio_hash(signal, sampling_rate)}


def extraction_rate(extractor: Any, preprocess: Any) -> int:
    """The rate files are read at: the preprocessing's (else the extractor's, else 16 kHz);
    FeatureError when the extractor needs another one."""
    needed = getattr(extractor, "sampling_rate", None)
    rate = preprocess.sampling_rate if preprocess is not None else (needed or 16000)
    if needed is not None and rate != needed:
        raise FeatureError(
            f"extractor {extractor.name!r} needs {needed} Hz audio but preprocessing produces "
            f"{rate} Hz: set the preprocessing sampling_rate to {needed}"
        )
    return rate


def _extract(extractor: Any, utterances: list, signals: list[np.ndarray], rate: int) -> list:
    """Features of ``signals``, batched when possible; an error names its utterance."""
    batch = getattr(extractor, "extract_batch", None)
    if batch is not None and len(signals) > 1:
        try:
            return batch(signals, rate)
        except FeatureError:
            pass  # redo one by one below to name the utterance that fails
    results = []
    for utterance, signal in zip(utterances, signals, strict=True):
        try:
            results.append(extractor(signal, rate))
        except FeatureError as error:
            name = getattr(utterance, "id", None) or utterance.path
            raise FeatureError(f"utterance {name} ({utterance.path}): {error}") from error
    return results
