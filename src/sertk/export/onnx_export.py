"""``export_onnx``: a model bundle -> an ONNX bundle directory, verified before it is written.

The ONNX bundle is the source bundle plus graphs, so it still loads with ``load_bundle``::

    bundle.json                the source's, plus an "onnx" section (files, checksums, opset,
                               quantization, encoder geometry, parity figures, versions)
    model.safetensors          copied (the torch/numpy backend and later re-checks can use it)
    normalization.safetensors  copied when present
    head.onnx                  the model: a torch head (sertk.export.graphs) or a linear
                               classical model (sertk.export.classical_graph)
    encoder.onnx               SSL bundles only: the encoder, waveform -> hidden states
    members/<i>/               ensembles: each member exported the same way

Spectral features (logmel, mfcc), hand-crafted LLDs/functionals and the normalisation stay in
numpy: they take a few ms per clip and need no graph. Every graph is checked against the model
it came from (torch: :mod:`sertk.export.parity`; classical: numpy) before anything is written;
the output appears atomically. Torch bundles need torch to export; classical ones do not.

>>> export_onnx("default", "default-onnx", quantize="int8")  # or "runs/x/bundle"
PosixPath('default-onnx')
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from sertk.bundle import ONNX_FORMAT_VERSION, Bundle, load_bundle
from sertk.bundle.files import BUNDLE_FILE, sha256, swap_into_place, write_document
from sertk.errors import BundleError
from sertk.export.classical_graph import export_classical, verify_classical
from sertk.export.quantize import QUANTIZED_OPS, quantize_onnx

HEAD_FILE = "head.onnx"
ENCODER_FILE = "encoder.onnx"
DEFAULT_OPSET = 18
OPSETS = range(18, 24)  # what the dynamo exporter and onnxruntime 1.17+ both handle
QUANTIZE = (None, "int8")


def export_onnx(
    bundle_path: str | Path,
    out_dir: str | Path,
    *,
    quantize: str | None = None,
    opset: int = DEFAULT_OPSET,
    threads: int | None = None,
) -> Path:
    """Export the bundle at ``bundle_path`` to an ONNX bundle at ``out_dir``; returns ``out_dir``.

    ``bundle_path``: a bundle folder, a run folder or ``default``. ``quantize="int8"``:
    onnxruntime dynamic quantization of MatMul/Gemm (QInt8 weights) of a torch head and encoder,
    after the fp32 graphs passed the parity check (a linear classical model is left in float64
    and the reason recorded in ``onnx.quantize_skipped``). ``threads``: onnxruntime threads for
    the checks. Raises BundleError for a bad bundle, an unexportable model or a graph that does
    not match its source; nothing is written then.
    """
    if quantize not in QUANTIZE:
        raise BundleError(f"quantize must be None or 'int8'; got {quantize!r}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset not in OPSETS:
        raise BundleError(f"opset must be an integer {OPSETS[0]}..{OPSETS[-1]}; got {opset!r}")
    bundle = load_bundle(bundle_path)
    target = _check_target(Path(out_dir), bundle.path)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    options = {"quantize": quantize, "opset": opset, "threads": threads}
    try:
        if bundle.kind in ("ensemble", "adaptive"):  # made of member bundles
            _export_ensemble(bundle, staging, **options)
        else:
            _export_one(bundle, staging, **options)
        swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _export_one(bundle: Bundle, folder: Path, **options: Any) -> dict[str, Any]:
    """Graphs of a torch or classical bundle plus a copy of its files into ``folder`` (created);
    returns the ``onnx`` section written into its ``bundle.json``."""
    folder.mkdir()
    if bundle.kind == "classical":
        section = _classical_section(bundle, folder, **options)
    else:
        section = _torch_section(bundle, folder, **options)
    _copy_bundle(bundle.path, folder, section)
    return section


def _export_ensemble(bundle: Any, folder: Path, **options: Any) -> None:
    """Every member of an ensemble or adaptive bundle exported into its own folder; the
    ``bundle.json`` gets the new member checksums and an ``onnx`` section listing the members'
    graphs."""
    document = json.loads((bundle.path / BUNDLE_FILE).read_text(encoding="utf-8"))
    folder.mkdir()
    members = []
    for entry, member in zip(document["members"], bundle.members, strict=True):
        target = folder / entry["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        # an ensemble's members carry their bundle; an adaptive bundle's are bundles
        section = _export_one(getattr(member, "bundle", member), target, **options)
        entry["bundle_sha256"] = sha256(target / BUNDLE_FILE)
        members.append({"path": entry["path"], "quantize": section["quantize"],
                        "parity": section["parity"]})  # fmt: skip
    document["onnx"] = {**_header(options["opset"], options["quantize"]), "members": members}
    write_document(folder, document)  # the new content gets its own content hash


def _header(opset: int, quantize: str | None) -> dict[str, Any]:
    return {
        "format_version": ONNX_FORMAT_VERSION,
        "opset": opset,
        "quantize": quantize,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": _versions(),
    }


def _classical_section(
    bundle: Any, folder: Path, *, quantize: str | None, opset: int, threads: int | None
) -> dict[str, Any]:
    """A linear classical model as ``head.onnx`` (float64 inside), checked against numpy."""
    model = bundle.build_model()
    head = export_classical(model, folder / HEAD_FILE, opset=opset)
    parity = {"head": verify_classical(model, folder / HEAD_FILE, threads=threads)}
    head["bytes"] = head["fp32_bytes"] = (folder / HEAD_FILE).stat().st_size
    head["sha256"] = sha256(folder / HEAD_FILE)
    skipped = None
    if quantize == "int8":
        skipped = (
            f"a linear head of {head['bytes'] / 1e3:.0f} kB scores a row in "
            f"{parity['head']['microseconds_per_row']:.0f} us, so int8 cannot speed up a "
            "prediction whose time goes to feature extraction, and it would add rounding error "
            "to the probabilities: exported in float64 instead"
        )
    return {
        **_header(opset, None),
        "precision": "float64",
        "quantize_skipped": skipped,
        "head": head,
        "encoder": None,
        "parity": parity,
    }


def _torch_section(
    bundle: Any, folder: Path, *, quantize: str | None, opset: int, threads: int | None
) -> dict[str, Any]:
    """Export, verify and (optionally) quantize a torch bundle's graphs into ``folder``; the
    ``onnx`` section."""
    from sertk.export.graphs import export_encoder, export_head  # torch
    from sertk.export.parity import verify_encoder, verify_head  # torch

    model = bundle.build_model()
    head = export_head(model, folder / HEAD_FILE, opset=opset)
    parity: dict[str, Any] = {"head": verify_head(model, folder / HEAD_FILE, threads=threads)}
    encoder = encoder_meta = None
    if bundle.features.get("name") == "ssl":
        encoder = bundle.build_extractor()
        encoder_meta = export_encoder(encoder, folder / ENCODER_FILE, opset=opset)
        parity["encoder"] = verify_encoder(
            encoder, folder / ENCODER_FILE, encoder_meta, threads=threads
        )
    entries = [entry for entry in (head, encoder_meta) if entry is not None]
    for entry in entries:
        entry["fp32_bytes"] = (folder / entry["name"]).stat().st_size
    if quantize == "int8":
        parity["int8"] = _quantize(folder, model, encoder, encoder_meta, threads=threads)
    for entry in entries:
        entry["bytes"] = (folder / entry["name"]).stat().st_size
        entry["sha256"] = sha256(folder / entry["name"])
    return {
        **_header(opset, quantize),
        "head": head,
        "encoder": encoder_meta,
        "parity": parity,
    }


def _quantize(
    folder: Path, model: Any, encoder: Any, encoder_meta: Any, *, threads: int | None
) -> dict[str, Any]:
    """Replace the graphs in ``folder`` by int8 ones; how far they move from torch fp32."""
    from sertk.export.parity import compare_encoder, compare_head  # torch

    report: dict[str, Any] = {"method": "onnxruntime dynamic, QInt8", "ops": list(QUANTIZED_OPS)}
    for name in (HEAD_FILE, ENCODER_FILE) if encoder is not None else (HEAD_FILE,):
        staged = folder / f"{name}.int8"
        quantize_onnx(folder / name, staged)
        os.replace(staged, folder / name)
    report["head"] = compare_head(model, folder / HEAD_FILE, threads=threads)
    if encoder is not None:
        report["encoder"] = compare_encoder(
            encoder, folder / ENCODER_FILE, encoder_meta, threads=threads
        )
    return report


def _check_target(target: Path, source: Path) -> Path:
    if target.resolve() == source.resolve() or source.resolve() in target.resolve().parents:
        raise BundleError(f"write the ONNX bundle next to {source}, not into it; pick another -o")
    if target.exists() and not target.is_dir():
        raise BundleError(f"{target} is a file; give a directory path for the ONNX bundle")
    if target.is_dir() and any(target.iterdir()):
        try:
            document = json.loads((target / BUNDLE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            document = None
        if not isinstance(document, dict) or "onnx" not in document:
            raise BundleError(
                f"{target} is a non-empty directory that is not an ONNX bundle; "
                "refusing to replace it"
            )
    return target


def _copy_bundle(source: Path, folder: Path, section: dict[str, Any]) -> None:
    """Copy the source bundle's files into ``folder`` and write its ``bundle.json`` + section."""
    document = json.loads((source / BUNDLE_FILE).read_text(encoding="utf-8"))
    for entry in document["files"].values():
        if isinstance(entry, dict) and isinstance(entry.get("name"), str):
            shutil.copy2(source / entry["name"], folder / entry["name"])
    document["onnx"] = section
    write_document(folder, document)  # the new content gets its own content hash


def _versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in ("torch", "onnx", "onnxruntime", "onnxscript", "transformers"):
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions
