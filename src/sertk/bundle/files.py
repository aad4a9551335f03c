"""File handling shared by every bundle kind: atomic directory writes, JSON, checksums, arrays.

Nothing here imports torch: numpy arrays go through ``safetensors.numpy``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from sertk.bundle._hash import HASH_KEY, content_hash
from sertk.errors import BundleError

BUNDLE_FILE = "bundle.json"
WEIGHTS_FILE = "model.safetensors"
NORMALIZATION_FILE = "normalization.safetensors"


def write_bundle_dir(
    target: Path, document: dict[str, Any], fill: Callable[[Path], dict[str, Any]]
) -> Path:
    """Write a bundle atomically: ``fill(folder)`` writes the payload into a temporary folder
    beside ``target`` and returns the ``files`` section; then ``bundle.json`` is written and
    the folder renamed into place (an existing bundle there is replaced, never half-destroyed).
    ``bundle.json`` stores the bundle's content hash (:func:`write_document`).
    """
    to_json(document)  # fail on bad metadata before touching the disk
    check_target(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
    temporary.mkdir()
    try:
        document["files"] = fill(temporary)
        write_document(temporary, document)
        fsync(temporary / BUNDLE_FILE)
        fsync(temporary)
        swap_into_place(temporary, target)
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    return target


def write_document(folder: Path, document: dict[str, Any]) -> str:
    """Write ``document`` as ``folder/bundle.json`` with its ``content_hash``: the hash of the
    bundle as written (JSON without the hash, and every file it references, which must be in
    place); returns the hash. Replaces an existing ``bundle.json`` atomically."""
    document.pop(HASH_KEY, None)
    meta = folder / BUNDLE_FILE
    staged = folder / f".{BUNDLE_FILE}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        staged.write_text(to_json(document) + "\n", encoding="utf-8")
        os.replace(staged, meta)
        document[HASH_KEY] = digest = content_hash(folder)
        staged.write_text(to_json(document) + "\n", encoding="utf-8")
        os.replace(staged, meta)
    finally:
        staged.unlink(missing_ok=True)
    return digest


def check_target(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise BundleError(f"{target} is a file; give a directory path for the bundle")
    if target.is_dir() and any(target.iterdir()) and not (target / BUNDLE_FILE).exists():
        raise BundleError(
            f"{target} is a non-empty directory that is not a bundle; refusing to replace it"
        )


def swap_into_place(temporary: Path, target: Path) -> None:
    """Rename ``temporary`` to ``target``; an old bundle is moved aside first, removed last."""
    old = None
    if target.exists():
        old = target.parent / f".{target.name}.{uuid.uuid4().hex[:8]}.old"
        os.rename(target, old)
    try:
        os.rename(temporary, target)
    except BaseException:
        if old is not None:
            os.rename(old, target)
        raise
    fsync(target.parent)  # make the rename itself durable
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def file_entry(path: Path) -> dict[str, str]:
    """``{"name", "sha256"}`` of a written payload file (made world-readable and synced)."""
    os.chmod(path, 0o644)  # safetensors creates 0600 files; bundles are meant to be shared
    fsync(path)
    return {"name": path.name, "sha256": sha256(path)}


def write_arrays(arrays: dict[str, np.ndarray], path: Path) -> dict[str, str]:
    """Numpy arrays to a safetensors file (no torch); returns its ``files`` entry."""
    import safetensors.numpy

    contiguous = {name: np.ascontiguousarray(array) for name, array in arrays.items()}
    safetensors.numpy.save_file(contiguous, str(path), metadata={"format": "np"})
    return file_entry(path)


def to_json(document: dict) -> str:
    def default(value: Any) -> Any:
        if getattr(value, "ndim", None) == 0 and hasattr(value, "item"):
            return value.item()  # numpy (or torch) scalars
        if isinstance(value, tuple) or hasattr(value, "tolist"):
            return list(value) if isinstance(value, tuple) else value.tolist()
        if isinstance(value, Path):
            return str(value)
        raise TypeError(f"{type(value).__name__} is not JSON-serialisable")

    try:
        return json.dumps(document, indent=2, default=default, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise BundleError(
            f"bundle metadata must be plain JSON (numbers, strings, lists, dicts): {error}"
        ) from None


def entry_path(path: Path, entry: Any, what: str) -> Path:
    """The checked payload file named by ``files.<what>``: inside the bundle, present, intact."""
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise BundleError(f"{path / BUNDLE_FILE}: files.{what} must name a file")
    file = path / entry["name"]
    if file.parent != path:
        raise BundleError(f"{path / BUNDLE_FILE}: files.{what} must be a file inside the bundle")
    if not file.is_file():
        raise BundleError(f"{path} lacks {entry['name']} ({what}); the bundle is incomplete")
    if entry.get("sha256") not in (None, sha256(file)):
        raise BundleError(
            f"{file} does not match its checksum in {BUNDLE_FILE}; the file is corrupt"
        )
    return file


def read_arrays(path: Path, entry: Any, what: str) -> dict[str, np.ndarray]:
    """Numpy arrays of ``files.<what>`` (safetensors, no torch)."""
    import safetensors.numpy

    file = entry_path(path, entry, what)
    try:
        return safetensors.numpy.load_file(str(file))
    except Exception as error:  # safetensors raises its own SafetensorError for damaged files
        raise BundleError(f"{file} is not a readable safetensors file: {error}") from None


def read_normalization(path: Path, entry: Any) -> dict[str, np.ndarray] | None:
    """Global ``mean``/``std`` float32 statistics of ``files.normalization`` (None: no entry)."""
    if entry is None:
        return None
    stats = read_arrays(path, entry, "normalization")
    if set(stats) != {"mean", "std"}:
        raise BundleError(f"{path}: {NORMALIZATION_FILE} must hold exactly 'mean' and 'std'")
    return {key: stats[key].astype(np.float32) for key in ("mean", "std")}


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
