"""Typed experiment configuration: frozen dataclasses, one YAML file, ``--set`` overrides.

Defaults live in code; a YAML file states only what differs; ``--set key=value`` overrides use
dotted paths (``train.lr=1e-4``, ``model.hparams.hidden=128``). Values are parsed with
``yaml.safe_load`` and checked against the field types; unknown keys and wrong types raise
:class:`~sertk.errors.ConfigError` naming the key. Nothing in a config is ever evaluated or
instantiated: names such as ``model.name`` are looked up in explicit registries elsewhere.

Coercions, all lossless: an int where a float is expected becomes a float, and a string such as
``1e-5`` (which YAML 1.1 reads as a string) is parsed as a float for float fields. Sequences are
stored as tuples so a config is immutable; ``dump_config`` writes them as YAML lists.

>>> cfg = load_config(None, ["train.lr=1e-4", "model.hparams.hidden=128"])
>>> cfg.train.lr, cfg.model.hparams["hidden"]
(0.0001, 128)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from sertk.config.sections import (
    CorpusSource,
    DataConfig,
    ExperimentConfig,
    FeatureConfig,
    FoldConfig,
    ModelConfig,
    RunAugmentConfig,
    TrainConfig,
)
from sertk.config.typed import apply_override, build, plain
from sertk.errors import ConfigError

__all__ = [
    "CorpusSource",
    "DataConfig",
    "ExperimentConfig",
    "FeatureConfig",
    "FoldConfig",
    "ModelConfig",
    "RunAugmentConfig",
    "TrainConfig",
    "config_from_dict",
    "config_to_dict",
    "dump_config",
    "load_config",
]


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read one YAML file (None: defaults only), apply ``key=value`` overrides, type-check."""
    data: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as error:
            raise ConfigError(
                f"cannot read config file {path}: {error.strerror or error}"
            ) from None
        try:
            loaded = yaml.safe_load(text)
        except yaml.YAMLError as error:
            raise ConfigError(f"{path} is not valid YAML: {error}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise ConfigError(
                f"{path} must hold a mapping of sections; got {type(loaded).__name__}"
            )
        data = loaded or {}
    for override in overrides:
        apply_override(data, override, ExperimentConfig)
    return config_from_dict(data)


def config_from_dict(data: Mapping[str, Any]) -> ExperimentConfig:
    """Build a checked ``ExperimentConfig`` from plain nested dicts (as YAML gives them)."""
    return build(ExperimentConfig, data, "")


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """Plain nested dicts and lists (tuples become lists), ready for YAML or JSON."""
    return plain(dataclasses.asdict(cfg))


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML; ``load_config`` of this text gives back ``cfg``."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False, allow_unicode=True)
