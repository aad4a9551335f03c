"""Before any training: resolve and check a config, then corpus -> label map -> folds.

Relative paths in a config (``data.root``, ``data.manifest``, the roots of ``data.corpora``,
``output_dir`` and a local SSL model folder in ``features.params.model``) are resolved against
the current working directory, as every path given to the ``sertk`` command line is, and the run
folder stores the resolved, absolute config, so a run can be resumed from anywhere.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

from sertk.classical import KINDS as CLASSICAL_KINDS
from sertk.config import ExperimentConfig
from sertk.corpora import CORPORA, LabelMap, default_label_map, read_manifest, scan_corpus
from sertk.corpora.labels import canonical_order
from sertk.errors import ConfigError, CorpusError, require
from sertk.experiment.augmentation import check_augment
from sertk.experiment.classical import check_classical
from sertk.features import FEATURES
from sertk.folds import STRATEGIES, make_folds

# model kinds the runner trains: torch heads and sertk.classical on [1, dim] functionals
RUNNABLE_KINDS = ("torch", "classical")
# fields set by the runner from the data, never by a recipe
_DERIVED_HPARAMS = ("input_dim", "num_classes")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclasses.dataclass
class ExperimentData:
    """Utterances after the label map, the folds over them and what was dropped on the way."""

    utterances: list[Any]
    label_map: Any
    dropped: dict[str, int]
    problems: list[str]
    folds: list[Any]
    source: str


def resolve_config(config: ExperimentConfig) -> ExperimentConfig:
    """``config`` with its relative paths made absolute (against the working directory)."""
    data = config.data
    data = dataclasses.replace(
        data,
        root=None if data.root is None else os.path.abspath(data.root),
        manifest=None if data.manifest is None else os.path.abspath(data.manifest),
        corpora=None
        if data.corpora is None
        else tuple(dataclasses.replace(c, root=os.path.abspath(c.root)) for c in data.corpora),
    )
    features = config.features
    model = features.params.get("model") if features.name == "ssl" else None
    if isinstance(model, str) and Path(model).expanduser().is_dir():
        params = {**features.params, "model": str(Path(model).expanduser().resolve())}
        features = dataclasses.replace(features, params=params)
    return dataclasses.replace(
        config, data=data, features=features, output_dir=os.path.abspath(config.output_dir)
    )


def model_kind(name: str) -> str:
    """``"classical"`` for a ``sertk.classical`` kind, ``"torch"`` for a ``sertk.models.MODELS``
    head (which needs torch: the ``neural`` extra)."""
    if name in CLASSICAL_KINDS:
        return "classical"
    require("torch", extra="neural", what=f"model.name {name!r} (not a classical kind: "
            f"{', '.join(CLASSICAL_KINDS)})")  # fmt: skip
    from sertk.models import MODELS  # torch

    if name in MODELS:
        return "torch"
    choices = ", ".join([*sorted(MODELS), *CLASSICAL_KINDS])
    raise ConfigError(f"unknown model.name {name!r}; choose one of {choices}")


def check_config(config: ExperimentConfig) -> None:
    """Raise ConfigError for names and combinations that cannot run; reads no data.

    Checks the corpus/manifest choice, label map, fold strategy, extractor name, preprocessing,
    model name and hyper-parameter keys (classical: parameters, search grid, utterance-level
    features), augmentation settings, and that a final model can be trained.
    """
    if not _NAME.fullmatch(config.name):
        raise ConfigError(
            f"name {config.name!r} names the run folder: use letters, digits, '.', '_' or '-'"
        )
    _check_data(config.data)
    if config.folds.strategy not in STRATEGIES:
        raise ConfigError(
            f"unknown folds.strategy {config.folds.strategy!r}; choose one of {', '.join(STRATEGIES)}"
        )
    if config.features.name not in FEATURES:
        raise ConfigError(
            f"unknown features.name {config.features.name!r}; choose one of {', '.join(FEATURES)}"
        )
    kind = model_kind(config.model.name)
    if kind not in RUNNABLE_KINDS:
        raise ConfigError(
            f"model {config.model.name!r} is a {kind} model; the cross-validation runner trains "
            f"{', '.join(RUNNABLE_KINDS)} models"
        )
    check_augment(config, kind)
    if kind == "classical":
        check_classical(config)
        return
    if config.model.search is not None:
        raise ConfigError(
            "model.search (an inner-CV grid) applies to classical models; a neural model's "
            "epoch is chosen on the validation speakers"
        )
    derived = sorted(set(config.model.hparams) & set(_DERIVED_HPARAMS))
    if derived:
        raise ConfigError(
            f"model.hparams must not set {', '.join(derived)}: the runner takes them from the "
            "features and the label map"
        )
    if config.final_model is True and config.train.scheduler == "plateau":
        raise ConfigError(
            "final_model trains on all speakers without a validation set, which the 'plateau' "
            "scheduler needs; use train.scheduler 'cosine' or 'none', or final_model: false "
            "(or ensemble)"
        )


def _check_data(data: Any) -> None:
    sources = [data.corpus, data.manifest, data.corpora]
    if sum(source is not None for source in sources) != 1:
        raise ConfigError(
            "set exactly one of data.corpus (with data.root) and data.manifest (a CSV), or "
            "data.corpora (a list of {corpus, root})"
        )
    if data.corpora is not None:
        _check_corpora(data.corpora, CORPORA)
    if data.corpus is not None:
        if data.corpus not in CORPORA:
            raise ConfigError(
                f"unknown data.corpus {data.corpus!r}; choose one of {', '.join(CORPORA)}"
            )
        if data.root is None:
            raise ConfigError(f"data.corpus {data.corpus!r} needs data.root, the corpus folder")
    elif data.root is not None:
        raise ConfigError("data.root goes with data.corpus; a manifest lists its own paths")
    data.label_map()  # a bad preset or mapping raises here


def _check_corpora(corpora: Any, adapters: Any) -> None:
    if not corpora:
        raise ConfigError("data.corpora is empty; list at least one {corpus, root}")
    for source in corpora:
        if source.corpus not in adapters:
            raise ConfigError(
                f"unknown corpus {source.corpus!r} in data.corpora; choose one of "
                f"{', '.join(adapters)}"
            )
        if not _NAME.fullmatch(source.prefix):
            raise ConfigError(
                f"data.corpora name {source.prefix!r} prefixes speaker ids: use letters, digits, "
                "'.', '_' or '-'"
            )
    prefixes = [source.prefix for source in corpora]
    repeated = sorted({p for p in prefixes if prefixes.count(p) > 1})
    if repeated:
        raise ConfigError(
            f"data.corpora lists {', '.join(repeated)} more than once; give each entry a "
            "distinct 'name' (it prefixes that corpus's speakers and utterance ids)"
        )


def _scan_sources(data: Any) -> tuple[list[Any], list[str], str]:
    """Utterances, scan problems and a description of ``data.corpus`` or ``data.corpora``;
    with ``corpora``, speakers and ids become ``<prefix>:<speaker>`` / ``<prefix>:<id>`` and
    each utterance gets the field ``corpus``."""
    if data.corpora is None:
        scanned = scan_corpus(data.corpus, data.root)
        return scanned.utterances, list(scanned.problems), f"{data.corpus} corpus at {data.root}"
    utterances, problems = [], []
    for source in data.corpora:
        scanned = scan_corpus(source.corpus, source.root)
        problems += [f"{source.prefix}: {problem}" for problem in scanned.problems]
        utterances += [
            dataclasses.replace(
                u,
                id=f"{source.prefix}:{u.id}",
                speaker=f"{source.prefix}:{u.speaker}",
                fields={**u.fields, "corpus": source.prefix},
            )
            for u in scanned.utterances
        ]
    names = ", ".join(f"{s.corpus} at {s.root}" for s in data.corpora)
    return utterances, problems, f"corpora {names}"


def prepare_data(config: ExperimentConfig) -> ExperimentData:
    """Corpus (adapter scan or manifest) -> label map applied -> verified folds."""
    data = config.data
    if data.manifest is None:
        utterances, problems, source = _scan_sources(data)
    else:
        utterances, problems = read_manifest(data.manifest), []
        source = f"manifest {data.manifest}"
    label_map = data.label_map()
    if label_map is None:
        if data.corpus is not None:
            label_map = default_label_map(data.corpus, utterances)
        else:
            label_map = LabelMap.from_labels(canonical_order(u.label for u in utterances))
    kept, dropped = label_map.apply(utterances)
    if not kept:
        raise CorpusError(
            f"no utterance of the {source} maps to the classes {list(label_map.labels)} "
            f"(labels found: {', '.join(sorted(dropped))}); choose another data.labels preset"
        )
    folds = make_folds(kept, **config.folds.kwargs())
    return ExperimentData(kept, label_map, dropped, problems, folds, source)
