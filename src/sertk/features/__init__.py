"""Feature extractors: the ``FEATURES`` registry and ``build_extractor``.

``FEATURES`` maps each extractor name to ``"module:Class"``; the module is imported only when
that extractor is built, so ``import sertk.features`` costs numpy alone and never pulls torch,
transformers or scipy. The dict is still the one explicit, closed list of choices: configs name
an entry, never a module path. To add an extractor, add a line here.

A config is ``{"name": <key of FEATURES>, **options}``, exactly what ``extractor.config()``
returns, so ``build_extractor(extractor.config())`` rebuilds an equal extractor. Extractors and
their output shapes (see :mod:`sertk.features.base` for the contract):

- ``logmel``: :class:`~sertk.features.spectral.LogMel`, ``[frames, n_mels]`` at 100 Hz
- ``mfcc``: :class:`~sertk.features.spectral.Mfcc`, ``[frames, n_mfcc * (1 + deltas)]`` at 100 Hz
- ``ssl``: :class:`~sertk.features.ssl.SslEncoder`, ``[frames, dim]`` or ``[layers, frames, dim]``
  at 50 Hz (needs the ``ssl`` extra: transformers)
- ``lld``: :class:`~sertk.features.handcrafted.Lld`, ``[frames, dim]`` at 100 Hz
- ``functionals``: :class:`~sertk.features.handcrafted.Functionals`, ``[1, dim]``
- ``emotion_functionals``: :class:`~sertk.features.emotion.EmotionFunctionals`, ``[1, 2798]``
  (the hand-crafted SER recipe's utterance vector)
- ``opensmile``: :class:`~sertk.features.opensmile.OpenSmile`, eGeMAPS/GeMAPS/ComParE ``[1, dim]``
  or ``[frames, dim]`` at 100 Hz (needs the opt-in ``opensmile`` extra; non-commercial licence)
- ``stack``: :class:`~sertk.features.stack.Stack`, utterance-level extractors side by side,
  ``[1, sum of dims]``, widths in ``blocks``

>>> extractor = build_extractor({"name": "logmel", "n_mels": 40})
>>> extractor.dim, extractor.frame_rate
(40, 100.0)
>>> build_extractor(extractor.config()).config() == extractor.config()
True
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from sertk.errors import FeatureError
from sertk.features.base import Extractor, FeatureExtractor, check_params

__all__ = ["FEATURES", "Extractor", "FeatureExtractor", "build_extractor", "feature_class"]

FEATURES: dict[str, str] = {
    "logmel": "sertk.features.spectral:LogMel",
    "mfcc": "sertk.features.spectral:Mfcc",
    "ssl": "sertk.features.ssl:SslEncoder",
    "lld": "sertk.features.handcrafted:Lld",
    "functionals": "sertk.features.handcrafted:Functionals",
    "emotion_functionals": "sertk.features.emotion:EmotionFunctionals",
    "opensmile": "sertk.features.opensmile:OpenSmile",
    "stack": "sertk.features.stack:Stack",
}


def feature_class(name: str) -> type:
    """The extractor class registered under ``name`` (imports its module)."""
    target = FEATURES.get(name) if isinstance(name, str) else None
    if target is None:
        raise FeatureError(f"unknown feature extractor {name!r}; choose from {sorted(FEATURES)}")
    module_name, _, class_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise FeatureError(
            f"feature extractor {name!r} needs a package that is not installed ({error}); "
            "install the matching extra, e.g. pip install 'sertk[ssl]' for 'ssl'"
        ) from error
    return getattr(module, class_name)


def build_extractor(config: Mapping[str, Any] | str, **overrides: Any) -> FeatureExtractor:
    """Build an extractor from a name or a ``config()`` dict; ``overrides`` replace options.

    Unknown names and options raise :class:`~sertk.errors.FeatureError`.

    >>> build_extractor("mfcc", n_mfcc=13, deltas=2).dim
    39
    """
    if isinstance(config, str):
        params: dict[str, Any] = {"name": config}
    elif isinstance(config, Mapping):
        params = dict(config)
    else:
        raise FeatureError(
            f"a feature config is a name or a dict with 'name', got {type(config).__name__}"
        )
    name = params.pop("name", None)
    if name is None:
        raise FeatureError(
            f"feature config {dict(config)} has no 'name'; choose from {sorted(FEATURES)}"
        )
    params.update(overrides)
    cls = feature_class(name)
    if hasattr(cls, "from_config"):
        return cls.from_config(params)
    check_params(cls, params)
    return cls(**params)
