"""ONNX bundles: a torch or classical bundle plus the graphs ``sertk export`` wrote, run by
onnxruntime without torch or scikit-learn.

The folder is the source bundle (it still loads with the torch/numpy backend) plus an ``onnx``
section in ``bundle.json``: ``head`` (``head.onnx``: a torch head, features + lengths ->
probabilities[, attention]; or a classical model, features ``[batch, dim]`` -> probabilities),
``encoder`` (SSL bundles: ``encoder.onnx``, waveform -> hidden states, with the geometry the
numpy side needs), checksums, opset, quantization and the parity figures measured at export.
Spectral and hand-crafted features and the normalisation stay numpy.

>>> from sertk.audio import Preprocess, load_audio
>>> from sertk.bundle import load_bundle
>>> from sertk.export import export_onnx
>>> _ = export_onnx("default", "default-onnx")  # the onnx extra
>>> bundle = load_bundle("default-onnx", backend="onnx")
>>> signal = Preprocess()(*load_audio("examples/03a02Wc.flac"))
>>> bundle.build_scorer(threads=1).predict_signals([signal], 16000).argmax(axis=1)  # angry
array([3])
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from sertk.bundle.base import Bundle, Runtime
from sertk.bundle.files import BUNDLE_FILE, entry_path, read_normalization
from sertk.errors import BundleError
from sertk.inference import Scorer
from sertk.inference.onnx import OnnxForward, OnnxSslEncoder, make_session

# 1: torch heads (features + lengths); 2: also classical graphs (features [batch, dim])
ONNX_FORMAT_VERSION = 2
SOURCE_KINDS = ("torch", "classical")


@dataclasses.dataclass(frozen=True, eq=False)
class OnnxBundle(Bundle):
    """The ONNX graphs of a ``source_kind`` (torch or classical) bundle; ``normalization``: a
    torch head's global statistics (or None)."""

    kind: ClassVar[str] = "onnx"
    source_kind: str = "torch"
    normalization: dict[str, np.ndarray] | None = None

    @classmethod
    def read(cls, path: Path, document: dict[str, Any], **_: Any) -> OnnxBundle:
        """Check the ``onnx`` section and the graphs' checksums; read the statistics."""
        section = document.get("onnx")
        if not isinstance(section, dict):
            raise not_exported(path)
        if section.get("format_version") not in range(1, ONNX_FORMAT_VERSION + 1):
            raise BundleError(
                f"{path}: ONNX bundle format {section.get('format_version')!r} is not readable by "
                f"this sertk (reads 1..{ONNX_FORMAT_VERSION}); re-export it or upgrade sertk"
            )
        if document["kind"] not in SOURCE_KINDS:
            raise BundleError(f"{path}: an ONNX section on a {document['kind']!r} bundle")
        for part in ("head", "encoder"):
            if section.get(part):
                entry_path(path, section[part], f"onnx.{part}")
        if not section.get("head"):
            raise BundleError(f"{path}: the ONNX bundle has no head graph; re-export it")
        return cls(
            **Bundle.common(path, document),
            source_kind=document["kind"],
            normalization=read_normalization(path, document["files"].get("normalization")),
        )

    def file(self, part: str) -> Path:
        """Path of the ``head`` or ``encoder`` graph (BundleError if the bundle has none)."""
        entry = (self.onnx or {}).get(part)
        if not entry:
            raise BundleError(f"{self.path}: the ONNX bundle has no {part} graph")
        return self.path / entry["name"]

    def build_extractor(self, *, threads: int | None = None, **options: Any) -> Any:
        """``OnnxSslEncoder`` for SSL bundles (no torch), else the numpy extractor."""
        encoder = (self.onnx or {}).get("encoder")
        if encoder:
            return OnnxSslEncoder(self.file("encoder"), encoder, self.features, threads=threads)
        return super().build_extractor(**options)

    def make_scorer(self, runtime: Runtime) -> Scorer:
        session = make_session(self.file("head"), threads=runtime.threads)
        extractor = runtime.extractor or self.build_extractor(threads=runtime.threads)
        forward = OnnxForward(session, batch_size=runtime.batch_size)
        return self.model_scorer(forward, extractor, self.normalization)


def not_exported(path: Path) -> BundleError:
    """The error for a bundle without an ``onnx`` section, saying how to make one."""
    return BundleError(
        f"{path} is not an ONNX bundle ({BUNDLE_FILE} has no 'onnx' section); make one with "
        f"`sertk export {path} -o OUT --format onnx` and run OUT with --backend onnx"
    )
