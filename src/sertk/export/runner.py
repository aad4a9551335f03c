"""Read an ONNX bundle (written by :func:`sertk.export.export_onnx`) without torch.

:func:`load_onnx_bundle` reads ``bundle.json`` (with its ``onnx`` section), checks the files against
their checksums and reads the normalisation statistics with numpy. :class:`OnnxBundleModel` has the
API of :class:`sertk.inference.BundleModel` (``labels``, ``prepare``, ``predict_features``) and gives
the same probabilities within the tolerance recorded in ``bundle.json`` (``onnx.parity``).
``OnnxBundle.build_extractor()`` returns the bundle's spectral extractor (numpy) or, for SSL bundles,
an :class:`~sertk.export.ssl_runner.OnnxSslEncoder` running ``encoder.onnx``.

>>> scorer = OnnxBundleModel.load("model-onnx", threads=1)  # doctest: +SKIP
>>> scorer.predict_features([features]).shape  # doctest: +SKIP
(1, 4)
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from sertk.bundle._files import BUNDLE_FILE, sha256
from sertk.errors import BundleError, SertkError

ONNX_FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True, eq=False)  # arrays have no truth value for ==
class OnnxBundle:
    """An ONNX bundle as read from disk. ``onnx`` is the ``bundle.json`` section the export added;
    ``normalization`` maps ``mean``/``std`` to float32 ``[dim]`` (or ``[layers, dim]``) or is None."""

    path: Path
    kind: str  # of the bundle it was exported from: "torch"
    model_name: str
    labels: tuple[str, ...]
    label_map: dict[str, Any]
    features: dict[str, Any]
    preprocess: dict[str, Any]
    normalization: dict[str, np.ndarray] | None
    extra: dict[str, Any] | None
    onnx: dict[str, Any]

    def normalize(self, features: np.ndarray) -> np.ndarray:
        """The bundle's global mean/std applied to ``[frames, dim]`` (or ``[layers, frames, dim]``)."""
        from sertk.normalization import apply_statistics

        if self.normalization is None:
            return np.asarray(features, dtype=np.float32)
        return apply_statistics(features, self.normalization)

    def file(self, part: str) -> Path:
        """Path of the ``head`` or ``encoder`` graph (BundleError if the bundle has none)."""
        entry = self.onnx.get(part)
        if not entry:
            raise BundleError(f"{self.path}: the ONNX bundle has no {part} graph")
        return self.path / entry["name"]

    def build_preprocess(self) -> Any:
        """The ``sertk.audio.Preprocess`` chain stored in the bundle."""
        from sertk.audio import Preprocess

        return Preprocess.from_dict(self.preprocess)

    def build_label_map(self) -> Any:
        """The ``sertk.corpora.LabelMap`` stored in the bundle."""
        from sertk.corpora import LabelMap

        return LabelMap.from_dict(self.label_map)

    def build_extractor(self, *, threads: int | None = None) -> Any:
        """The feature extractor: ``OnnxSslEncoder`` for SSL bundles, else the numpy extractor."""
        if self.onnx.get("encoder"):
            from sertk.export.ssl_runner import OnnxSslEncoder

            return OnnxSslEncoder(
                self.file("encoder"), self.onnx["encoder"], self.features, threads=threads
            )
        from sertk.features import build_extractor

        return build_extractor(self.features)


@dataclasses.dataclass(frozen=True)
class OnnxFeatureInput:
    """The bundle's one preprocessing + extractor pair (as ``sertk.inference.FeatureInput``),
    whose extractor is the ONNX encoder for SSL bundles."""

    features: dict[str, Any]
    preprocess: dict[str, Any]
    bundle: OnnxBundle = dataclasses.field(repr=False, compare=False)
    threads: int | None = None

    def build_preprocess(self) -> Any:
        """The ``sertk.audio.Preprocess`` chain."""
        return self.bundle.build_preprocess()

    def build_extractor(self) -> Any:
        """``OnnxSslEncoder`` for SSL bundles, else the numpy extractor."""
        return self.bundle.build_extractor(threads=self.threads)


def load_onnx_bundle(path: str | Path) -> OnnxBundle:
    """Read and check an ONNX bundle directory (see the module docstring)."""
    path = Path(path)
    meta = path / BUNDLE_FILE
    if not meta.is_file():
        what = "does not exist" if not path.exists() else f"has no {BUNDLE_FILE}"
        raise BundleError(f"ONNX bundle {path} {what}; give the folder `sertk export` wrote")
    try:
        document = json.loads(meta.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{meta} is not valid JSON ({error}); the bundle is corrupt") from None
    section = document.get("onnx") if isinstance(document, dict) else None
    if not isinstance(section, dict):
        raise BundleError(
            f"{path} is not an ONNX bundle (bundle.json has no 'onnx' section); make one with "
            f"`sertk export {path} -o OUT --format onnx`"
        )
    if section.get("format_version") != ONNX_FORMAT_VERSION:
        raise BundleError(
            f"{path}: ONNX bundle format {section.get('format_version')!r} is not readable by "
            f"this sertk (reads {ONNX_FORMAT_VERSION}); re-export it or upgrade sertk"
        )
    for part in ("head", "encoder"):
        if section.get(part):
            check_file(path, section[part], part)
    return OnnxBundle(
        path=path,
        kind=str(document.get("kind", "torch")),
        model_name=str(document.get("model", {}).get("name", "")),
        labels=tuple(document["labels"]),
        label_map=dict(document["label_map"]),
        features=dict(document["features"]),
        preprocess=dict(document["preprocess"]),
        normalization=_read_normalization(path, document.get("files", {}).get("normalization")),
        extra=document.get("extra"),
        onnx=section,
    )


def check_file(path: Path, entry: Any, what: str) -> Path:
    """The file ``entry["name"]`` inside ``path``, checked against ``entry["sha256"]``."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise BundleError(f"{path / BUNDLE_FILE}: the {what} entry must name a file")
    file = path / entry["name"]
    if file.parent != path or not file.is_file():
        raise BundleError(f"{path} lacks {entry['name']} ({what}); the bundle is incomplete")
    if entry.get("sha256") not in (None, sha256(file)):
        raise BundleError(f"{file} does not match its checksum in {BUNDLE_FILE}; it is corrupt")
    return file


def _read_normalization(path: Path, entry: Any) -> dict[str, np.ndarray] | None:
    if entry is None:
        return None
    import safetensors.numpy

    file = check_file(path, entry, "normalization")
    try:
        stats = safetensors.numpy.load_file(str(file))
    except Exception as error:  # safetensors raises its own error type for damaged files
        raise BundleError(f"{file} is not a readable safetensors file: {error}") from None
    if set(stats) != {"mean", "std"}:
        raise BundleError(f"{file} must hold exactly 'mean' and 'std'")
    return {key: stats[key].astype(np.float32) for key in ("mean", "std")}


def make_session(path: str | Path, *, threads: int | None = None) -> Any:
    """An onnxruntime CPU session for ``path``; ``threads`` intra-op threads (None: ORT's default)."""
    try:
        import onnxruntime
    except ImportError as error:
        raise SertkError("ONNX bundles need onnxruntime: pip install 'sertk[onnx]'") from error
    options = onnxruntime.SessionOptions()
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise SertkError(f"threads must be a positive integer or None; got {threads!r}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own exception types
        raise BundleError(f"onnxruntime cannot load {path}: {error}") from None
