"""A benchmark recipe: an experiment config plus a ``benchmark:`` section.

The recipe is an ordinary experiment YAML (``data.corpora``, ``features``, ``preprocess``,
``model``, ``train``) with one more section read only by ``sertk benchmark``:

.. code-block:: yaml

    benchmark:
      protocols: [global, speaker]     # which protocols to run (each its own fits)
      inner_groups: corpus             # inner CV of model.search: corpus (nested LOCO) | speaker
      weights: none                    # none | class (class-balanced, as train.class_weights)
      train_norm: none                 # global protocol: none | corpus (training rows z-normalised
                                       # per training corpus)
      adapt:                           # speaker protocol: per-unit statistics
        statistic: mean_std            # mean_std | median_mad | mean (centre only)
        shrink: 0.0                    # pseudo-count of population statistics (0: none)
        units: {urdu: corpus}          # corpus -> unit field (default: speaker)
      one_sided: [0.7, 1.0]            # speaker protocol: dominant shares measured at test time

``features.normalization`` stays ``global``: the protocols are chosen by
``benchmark.protocols``. ``--set benchmark.adapt.shrink=10`` overrides work like any other key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import yaml

from sertk.config import ExperimentConfig
from sertk.config.typed import apply_override, build, plain
from sertk.errors import ConfigError

PROTOCOLS = ("global", "speaker")
STATISTICS = ("mean_std", "median_mad", "mean")


@dataclasses.dataclass(frozen=True)
class AdaptSettings:
    """How the speaker protocol normalises a unit (a speaker, or the field named in ``units``).

    ``statistic``: ``mean_std`` (z-normalisation, the toolkit's speaker protocol),
    ``median_mad`` (median and 1.4826 x MAD) or ``mean`` (centre only, training-population std).
    ``shrink``: pseudo-count ``k`` of the training population's statistics: a unit of ``n``
    utterances uses ``(n * own + k * population) / (n + k)`` (0: its own only).
    ``units``: corpus name -> utterance field whose value is the unit (``corpus`` for URDU,
    whose speaker ids are approximate and mostly single-emotion).
    """

    statistic: Literal["mean_std", "median_mad", "mean"] = "mean_std"
    shrink: float = 0.0
    units: dict[str, str] = dataclasses.field(default_factory=lambda: {"urdu": "corpus"})

    def __post_init__(self) -> None:
        if self.shrink < 0:
            raise ConfigError(f"benchmark.adapt.shrink must be >= 0, got {self.shrink}")


@dataclasses.dataclass(frozen=True)
class BenchmarkSettings:
    """The ``benchmark:`` section (see the module docstring)."""

    protocols: tuple[str, ...] = PROTOCOLS
    inner_groups: Literal["corpus", "speaker"] = "corpus"
    weights: Literal["none", "class"] = "none"
    train_norm: Literal["none", "corpus"] = "none"
    adapt: AdaptSettings = dataclasses.field(default_factory=AdaptSettings)
    one_sided: tuple[float, ...] = (0.7, 1.0)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.protocols) - set(PROTOCOLS))
        if unknown or not self.protocols or len(set(self.protocols)) != len(self.protocols):
            raise ConfigError(
                f"benchmark.protocols must list distinct protocols among {', '.join(PROTOCOLS)}, "
                f"got {list(self.protocols)}"
            )
        if any(not 0.5 <= share <= 1.0 for share in self.one_sided):
            raise ConfigError(
                f"benchmark.one_sided: each dominant share must lie in [0.5, 1], got "
                f"{list(self.one_sided)}"
            )


@dataclasses.dataclass(frozen=True)
class BenchmarkConfig(ExperimentConfig):
    """An ``ExperimentConfig`` with the ``benchmark`` section."""

    benchmark: BenchmarkSettings = dataclasses.field(default_factory=BenchmarkSettings)


def load_benchmark_config(path: str | Path, overrides: Sequence[str] = ()) -> BenchmarkConfig:
    """Read a benchmark recipe, apply ``key=value`` overrides, type-check every section."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigError(f"cannot read recipe {path}: {error.strerror or error}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {error}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections; got {type(data).__name__}")
    data = data or {}
    for override in overrides:
        apply_override(data, override, BenchmarkConfig)
    config = build(BenchmarkConfig, data, "")
    if config.features.normalization != "global":
        raise ConfigError(
            "a benchmark recipe leaves features.normalization at 'global'; choose the protocols "
            "with benchmark.protocols (global, speaker)"
        )
    return config


def dump_benchmark_config(config: BenchmarkConfig) -> str:
    """The resolved recipe as YAML (``load_benchmark_config`` reads it back)."""
    return yaml.safe_dump(plain(dataclasses.asdict(config)), sort_keys=False, allow_unicode=True)
