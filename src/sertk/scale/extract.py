"""Feature extraction on Ray Data into the content-keyed feature cache.

The pipeline::

    ray.data.from_items(utterances)
      .map_batches(read_audio, sampling_rate, preprocess)   # load_audio + Preprocess (tasks)
      .map_batches(Extractor, compute=ActorPoolStrategy(size=workers), num_gpus=...)
            # per batch: entry_key -> FeatureCache.get; misses -> extract_batch -> FeatureCache.put
      -> the driver counts one small row per utterance (features never leave the workers)

The actors write through ``FeatureCache.put`` with the keys of ``sertk.features.cache.key_base``
/ ``entry_key``, the very keys ``iter_features`` (local ``sertk extract``, ``sertk train``) looks
up, so a local run afterwards finds every entry; writes are atomic, so a worker killed
mid-write leaves no partial entry, and a retried batch rewrites identical bytes. On a
multi-node cluster the cache folder must be shared storage (NFS, a parallel file system).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.audio import Preprocess
from sertk.features import build_extractor
from sertk.features.cache import FeatureCache, entry_key, extraction_rate, key_base
from sertk.scale.cluster import (
    Timing,
    block_count,
    cluster_slots,
    connect,
    require_ray,
    stream,
    worker_options,
)
from sertk.scale.reading import read_audio


@dataclasses.dataclass
class ExtractSummary:
    """What :func:`extract_to_cache` did; ``errors`` holds ``(utterance id, message)``."""

    files: int
    seconds_audio: float
    computed: int  # cache misses filled by this run
    cached: int  # entries that were there already
    errors: list[tuple[str, str]]
    workers: int
    timing: Timing


def extract_to_cache(
    utterances: Sequence[Any],
    extractor: Any,
    *,
    preprocess: Any,
    cache_root: str | Path,
    runtime: Mapping[str, Any] | None = None,
    workers: int | None = None,
    address: str | None = None,
    gpus_per_worker: float = 0.0,
    batch_size: int = 16,
    progress: bool = True,
) -> ExtractSummary:
    """Fill the cache at ``cache_root`` with ``extractor``'s features of every utterance.

    ``extractor`` is rebuilt in each actor from ``extractor.config()`` plus ``runtime`` options
    that are not part of its config (``{"device": "cuda"}``); ``preprocess`` is a
    ``sertk.audio.Preprocess``. Unreadable files are reported in ``errors``; the others are
    cached. ``workers``/``address``/``gpus_per_worker``: see :func:`sertk.scale.predict_files`.
    """
    require_ray()
    rate = extraction_rate(extractor, preprocess)
    items = [{"index": i, "path": str(Path(u.path).resolve())} for i, u in enumerate(utterances)]
    constructor = {
        "config": extractor.config(), "runtime": dict(runtime or {}),
        "preprocess": preprocess.to_dict(), "cache_root": str(Path(cache_root).resolve()),
    }  # fmt: skip
    seen: dict[int, Any] = {}
    timing = Timing()
    with connect(address, workers=workers) as ray:
        size = workers or cluster_slots(ray, gpus_per_worker=gpus_per_worker)
        blocks = block_count(len(items), workers=size, batch_size=batch_size)
        size = min(size, blocks)
        dataset = (
            ray.data.from_items(items, override_num_blocks=blocks)
            .map_batches(
                read_audio,
                batch_size=None,
                fn_kwargs={"sampling_rate": rate, "preprocess": constructor["preprocess"]},
            )  # fmt: skip
            .map_batches(
                Extractor,
                fn_constructor_kwargs=constructor,
                compute=ray.data.ActorPoolStrategy(size=size),
                batch_size=None,
                **worker_options(gpus_per_worker=gpus_per_worker),
            )
        )
        name = f"{extractor.name} features"
        for batch in stream(dataset, timing, total=len(items), desc=name, progress=progress):
            columns = (batch["index"], batch["cached"], batch["seconds"], batch["error"])
            for i, cached, seconds, error in zip(*columns, strict=True):
                seen[int(i)] = (bool(cached), float(seconds), str(error))
    errors = [(utterances[i].id, e) for i, (_, _, e) in sorted(seen.items()) if e]
    ok = [v for v in seen.values() if not v[2]]
    return ExtractSummary(
        files=len(seen), seconds_audio=sum(v[1] for v in ok),
        computed=sum(not v[0] for v in ok), cached=sum(v[0] for v in ok), errors=errors,
        workers=size, timing=timing,
    )  # fmt: skip


class Extractor:
    """A Ray Data actor holding one feature extractor and a handle on the shared cache."""

    def __init__(self, *, config: dict, runtime: dict, preprocess: dict, cache_root: str) -> None:
        self.extractor = build_extractor(config, **runtime)
        chain = Preprocess.from_dict(preprocess)
        self.rate = extraction_rate(self.extractor, chain)
        self.base = key_base(self.extractor, preprocess=chain)
        self.cache = FeatureCache(cache_root)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, Any]:
        errors = [str(e) for e in batch["error"]]
        good = [i for i, e in enumerate(errors) if not e]
        keys = {i: entry_key(self.base, batch["signal"][i], self.rate) for i in good}
        cached = {i: self.cache.get(keys[i]) is not None for i in good}
        missing = [i for i in good if not cached[i]]
        for i, result in zip(missing, self._extract([batch["signal"][i] for i in missing]),
                             strict=True):  # fmt: skip
            if isinstance(result, Exception):
                errors[i] = f"{batch['path'][i]}: {result}"
            else:
                self.cache.put(keys[i], result)
        return {
            "index": batch["index"],
            "cached": np.asarray([cached.get(i, False) for i in range(len(errors))]),
            "seconds": batch["seconds"],
            "error": np.asarray(errors, dtype=object),
        }

    def _extract(self, signals: list[np.ndarray]) -> list[Any]:
        """Features of each signal (``extract_batch`` when offered), or the item's exception."""
        batch = getattr(self.extractor, "extract_batch", None)
        if batch is not None and len(signals) > 1:
            try:
                return list(batch(signals, self.rate))
            except Exception:  # noqa: BLE001 (redone one by one to find the item that fails)
                pass
        results: list[Any] = []
        for signal in signals:
            try:
                results.append(self.extractor(signal, self.rate))
            except Exception as error:  # noqa: BLE001 (one bad file must not fail the job)
                results.append(error)
        return results
