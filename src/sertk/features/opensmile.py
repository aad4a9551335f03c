"""openSMILE acoustic parameter sets (eGeMAPS, GeMAPS, ComParE) as a sertk extractor.

Wraps audEERING's ``opensmile`` Python package, installed by the opt-in ``opensmile`` extra
(``pip install 'sertk[opensmile]'``). openSMILE is licensed for research and non-commercial use
only (see audEERING's licence); sertk itself never imports it unless this extractor is built.

>>> extractor = OpenSmile()  # eGeMAPSv02 functionals
>>> extractor.dim, extractor.frame_rate
(88, 0.0)
"""

from __future__ import annotations

import importlib
import warnings
from typing import Any

import numpy as np

from sertk.errors import FeatureError
from sertk.features.base import Extractor, check_number

__all__ = ["FEATURE_SETS", "LEVELS", "OpenSmile"]

FEATURE_SETS = ("eGeMAPSv02", "GeMAPSv01b", "ComParE_2016")
LEVELS = {"functionals": "Functionals", "lld": "LowLevelDescriptors"}
MISSING = (
    "opensmile features need the opt-in 'opensmile' extra: pip install 'sertk[opensmile]' "
    "(openSMILE is licensed for research and non-commercial use only; see audEERING's licence)"
)


def _import_opensmile() -> Any:
    """The ``opensmile`` module, or FeatureError saying how to install it."""
    try:
        return importlib.import_module("opensmile")
    except ImportError as error:
        raise FeatureError(MISSING) from error


class OpenSmile(Extractor):
    """openSMILE features: functionals ``[1, dim]`` or low-level descriptors ``[frames, dim]``.

    ``feature_set`` is one of ``FEATURE_SETS`` (eGeMAPSv02: 88 functionals / 25 LLDs;
    GeMAPSv01b: 62 / 18; ComParE_2016: 6373 / 65); ``level`` is ``"functionals"``
    (``frame_rate`` 0) or ``"lld"`` (10 ms hop, ``frame_rate`` 100). ``columns`` holds the
    openSMILE feature names. Signals must be mono float at ``sampling_rate`` Hz.

    Licence: openSMILE (and its ``opensmile`` Python package) is licensed by audEERING for
    research, educational and non-commercial use only; commercial use needs a licence from
    audEERING. It is therefore an opt-in extra, never a sertk dependency.
    """

    name = "opensmile"

    def __init__(
        self,
        *,
        feature_set: str = "eGeMAPSv02",
        level: str = "functionals",
        sampling_rate: int = 16000,
    ) -> None:
        if feature_set not in FEATURE_SETS:
            raise FeatureError(
                f"unknown openSMILE feature_set {feature_set!r}; choose from {list(FEATURE_SETS)}"
            )
        if level not in LEVELS:
            raise FeatureError(f"unknown openSMILE level {level!r}; choose from {list(LEVELS)}")
        self.sampling_rate = check_number("sampling_rate", sampling_rate, minimum=8000)
        self.feature_set, self.level = feature_set, level
        module = _import_opensmile()
        self._smile = module.Smile(
            feature_set=getattr(module.FeatureSet, feature_set),
            feature_level=getattr(module.FeatureLevel, LEVELS[level]),
        )
        self.columns: tuple[str, ...] = tuple(self._smile.feature_names)
        self.dim = len(self.columns)
        self.frame_rate = 0.0 if level == "functionals" else 100.0

    def config(self) -> dict[str, Any]:
        """JSON-serialisable settings that ``build_extractor`` rebuilds this extractor from."""
        return {
            "name": self.name,
            "feature_set": self.feature_set,
            "level": self.level,
            "sampling_rate": self.sampling_rate,
        }

    def _extract(self, signal: np.ndarray) -> np.ndarray:
        """Features ``[1, dim]`` (functionals) or ``[frames, dim]`` (lld) float32 of ``[samples]``."""
        seconds = len(signal) / self.sampling_rate
        with warnings.catch_warnings():
            # openSMILE warns "Segment too short, filling with NaN"; the NaN check below raises
            warnings.simplefilter("ignore", UserWarning)
            table = self._smile.process_signal(signal, self.sampling_rate)
        values = table.to_numpy(dtype=np.float32)
        if values.ndim != 2 or values.shape[1] != self.dim or len(values) == 0:
            raise FeatureError(
                f"openSMILE {self.feature_set} {self.level} returned shape {values.shape} for a "
                f"{seconds:.3f} s signal (expected [frames>0, {self.dim}]): the signal is too short"
            )
        bad = ~np.isfinite(values).all(axis=0)
        if bad.any():
            names = [self.columns[i] for i in np.flatnonzero(bad)]
            shown = ", ".join(names[:5]) + (f" and {len(names) - 5} more" if len(names) > 5 else "")
            raise FeatureError(
                f"openSMILE {self.feature_set} {self.level} gave NaN/inf for {shown} on a "
                f"{seconds:.3f} s signal: the segment is probably too short or silent; "
                "drop or lengthen it (sertk does not fill missing features silently)"
            )
        return np.ascontiguousarray(values)
