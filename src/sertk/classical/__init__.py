"""Classical models on utterance-level functionals: SVMs, logistic regression, random forest, ridge.

Models are fit with scikit-learn (:func:`fit_classifier`) but kept as plain float64/int64 arrays
plus JSON meta (:meth:`ClassicalModel.to_arrays`), and evaluated with numpy alone, so a model
bundle never holds a pickle and inference never imports scikit-learn. The numpy evaluation
repeats scikit-learn's arithmetic: same predictions, probabilities equal up to rounding.

>>> import numpy as np
>>> from sertk.classical import fit_classifier, ClassicalModel
>>> y = np.repeat(np.arange(4), 20)  # 4 classes of 20 rows; class c moves feature c
>>> x = np.random.default_rng(0).normal(size=(80, 8)) + 2.0 * np.eye(4, 8)[y]
>>> speakers = np.tile(np.arange(5), 16)  # 5 speakers for the inner CV
>>> model = fit_classifier(x, y, kind="logreg", num_classes=4, groups=speakers,
...                        search={"C": [0.01, 0.1, 1]})
>>> model.to_arrays()[1]["search"]["best"], float((model.predict(x) == y).mean())
({'C': 0.01}, 0.9)
>>> arrays, meta = model.to_arrays()  # what a bundle stores: arrays + JSON, no pickle
>>> restored = ClassicalModel.from_arrays(arrays, meta)  # numpy only, no scikit-learn
>>> bool((restored.predict(x) == model.predict(x)).all())
True
"""

from __future__ import annotations

import importlib
from typing import Any

from sertk.classical.model import KINDS, PROJECTIONS, ClassicalModel

__all__ = ["KINDS", "PROJECTIONS", "ClassicalModel", "fit_classifier"]


def __getattr__(name: str) -> Any:
    # fitting needs scikit-learn; inference does not, so it is imported only when asked for
    if name == "fit_classifier":
        return importlib.import_module("sertk.classical.fit").fit_classifier
    raise AttributeError(f"module 'sertk.classical' has no attribute {name!r}")
