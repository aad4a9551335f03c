"""sertk: speech emotion recognition toolkit.

Heavy modules (torch, transformers) load only when a name that needs them is
first used, so ``import sertk`` and ``sertk --help`` stay fast.

>>> import sertk
>>> sertk.__version__
'0...'
"""

import importlib

from sertk._version import __version__
from sertk.errors import (
    AudioError,
    BundleError,
    ConfigError,
    CorpusError,
    FeatureError,
    FoldError,
    SertkError,
)

# public name -> module that defines it (imported on first access)
_LAZY = {
    "load_audio": "sertk.audio",
    "Preprocess": "sertk.audio",
    "scan_corpus": "sertk.corpora",
    "read_manifest": "sertk.corpora",
    "write_manifest": "sertk.corpora",
    "LabelMap": "sertk.corpora",
    "make_folds": "sertk.folds",
    "build_extractor": "sertk.features",
    "FeatureCache": "sertk.features.cache",
    "Recognizer": "sertk.recognizer",
    "Prediction": "sertk.recognizer",
    "Timeline": "sertk.recognizer",
    "resolve_bundle": "sertk.recognizer",
    "load_bundle": "sertk.bundle",
    "load_scorer": "sertk.bundle",
    "load_config": "sertk.config",
    "run_experiment": "sertk.experiment",
    "evaluate_bundle": "sertk.experiment",
}

__all__ = [
    "__version__",
    "SertkError",
    "AudioError",
    "BundleError",
    "ConfigError",
    "CorpusError",
    "FeatureError",
    "FoldError",
    *_LAZY,
]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sertk' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
