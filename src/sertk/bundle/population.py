"""The training population's prior statistics a shrinkage adaptation pulls a speaker towards.

A speaker-adapted bundle whose contract names ``adaptation.method: shrinkage`` stores, per
feature key (input and view), the population's ``{"mean", "std"}``
(:func:`sertk.features.normalization.population_prior`: the mean of the training speakers'
means, the root of the mean of their variances) in ``population.safetensors``
(``files.population``). Tensor names are ``<input>/<view>/<mean|std>`` with ``<view>``
``utterance`` or the view's JSON. Any bundle may carry it (a later ``shrinkage`` needs it);
only shrinkage reads it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from sertk.augment import View
from sertk.bundle.files import read_arrays, write_arrays
from sertk.errors import BundleError, ConfigError
from sertk.features.normalization import Adaptation

POPULATION_FILE = "population.safetensors"
Priors = dict[tuple[int, View | None], dict[str, np.ndarray]]


def check_priors(population: Any) -> Priors | None:
    """``population`` as feature key -> float32 ``{"mean", "std"}``: a mapping of keys, or one
    ``{"mean", "std"}`` for the utterance's features (key ``(0, None)``)."""
    if population is None:
        return None
    if not isinstance(population, Mapping):
        raise BundleError(
            f"population must be {{'mean', 'std'}} or a mapping of feature keys to them, got {type(population).__name__}"
        )
    entries = {(0, None): population} if set(population) == {"mean", "std"} else dict(population)
    priors: Priors = {}
    for key, stats in entries.items():
        if not (isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], int)):
            raise BundleError(f"population keys are feature keys (input, view), got {key!r}")
        if not isinstance(stats, Mapping) or set(stats) != {"mean", "std"}:
            raise BundleError(f"population {key}: give exactly 'mean' and 'std'")
        mean, std = (np.asarray(stats[k], dtype=np.float32) for k in ("mean", "std"))
        if mean.shape != std.shape or not np.isfinite(mean).all() or not (std > 0).all():
            raise BundleError(f"population {key}: mean and std must be finite, std > 0, one shape")
        priors[key] = {"mean": mean, "std": std}
    return priors


def check_adaptation(
    adaptation: Adaptation | None, priors: Priors | None, *, speaker: bool
) -> None:
    """BundleError when ``adaptation`` cannot work with the bundle (no speaker normalisation, or
    shrinkage without a population prior)."""
    if adaptation is None:
        return
    if not speaker:
        raise BundleError(
            "adaptation applies to speaker-adapted bundles only (speaker_adapted=True)"
        )
    if adaptation.needs_prior and not priors:
        raise BundleError(
            "shrinkage adaptation needs the training population's prior: pass "
            "population=population_prior(training speakers' statistics)"
        )


def write_population(priors: Priors, folder: Path) -> dict[str, str]:
    """Write ``population.safetensors`` into ``folder``; returns its ``files`` entry."""
    arrays = {
        f"{_name(key)}/{part}": np.ascontiguousarray(stats[part])
        for key, stats in priors.items()
        for part in ("mean", "std")
    }
    return write_arrays(arrays, folder / POPULATION_FILE)


def read_population(path: Path, entry: Any) -> Priors | None:
    """The priors of ``files.population`` (None: the bundle has none)."""
    if entry is None:
        return None
    arrays = read_arrays(path, entry, "population")
    found: dict[str, dict[str, np.ndarray]] = {}
    for name, array in arrays.items():
        key, _, part = name.rpartition("/")
        found.setdefault(key, {})[part] = array.astype(np.float32)
    try:
        return check_priors({_key(name): stats for name, stats in found.items()})
    except (BundleError, ConfigError, ValueError, json.JSONDecodeError) as error:
        raise BundleError(f"{path}: {POPULATION_FILE} is malformed: {error}") from None


def _name(key: tuple[int, View | None]) -> str:
    view = "utterance" if key[1] is None else json.dumps(key[1].to_dict(), sort_keys=True)
    return f"{key[0]}/{view}"


def _key(name: str) -> tuple[int, View | None]:
    index, _, view = name.partition("/")
    return int(index), None if view == "utterance" else View.from_dict(json.loads(view))
