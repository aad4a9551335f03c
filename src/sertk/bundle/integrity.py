"""A bundle you can trust: its content hash checked against the one stored in it, and pinned.

Every bundle has a content hash (:func:`sertk.bundle._hash.content_hash`: ``bundle.json`` in
canonical form without the hash itself, every file it references, an ensemble's members). Saving
stores it in ``bundle.json`` as ``content_hash`` (:func:`sertk.bundle.files.write_document`), so
an edit of the JSON (a label list reversed together with its label map, a crop duration, a
feature setting) or of any file no longer matches, and loading refuses the bundle
(:func:`verify_content`). Bundles saved before this (formats 1 and 2 without the key, such as
bundles of older runs) still load; their hash is computed and reported, not checked.

A deployment pins the bundle it tested with ``--model-sha256 HASH`` / ``sha256=`` (:func:`check_pin`):
any other content is refused, stored hash or not.

A ``bundle.json`` edited on purpose gets its new hash with ``sertk info BUNDLE --rehash``
(:func:`sertk.bundle.rehash_bundle`), which first checks that the edited bundle loads.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

from sertk.bundle._hash import HASH_KEY, content_hash
from sertk.bundle.files import BUNDLE_FILE, sha256
from sertk.errors import BundleError, ConfigError

_HEX = re.compile(r"[0-9a-f]{64}")
REHASH_HINT = "sertk info {path} --rehash"


def check_sha256(value: Any, *, name: str = "--model-sha256") -> str:
    """``value`` as 64 lower-case hex digits (a sha256), else ConfigError."""
    text = value.strip().lower() if isinstance(value, str) else None
    if text is None or not _HEX.fullmatch(text):
        raise ConfigError(
            f"{name} must be a sha256 content hash (64 hex digits, as `sertk info BUNDLE` prints "
            f"it), got {value!r}"
        )
    return text


def with_content_hash(bundle: Any, document: dict[str, Any], digest: str) -> Any:
    """``bundle`` (read from ``document``) with its ``content_hash`` ``digest``, after checking
    the hash stored in ``document`` (:func:`verify_content`)."""
    verify_content(Path(bundle.path), document, digest)
    return dataclasses.replace(bundle, content_hash=digest)


def verify_content(path: Path, document: dict[str, Any], digest: str | None = None) -> str:
    """The content hash of the bundle at ``path`` (``digest`` if already computed);
    BundleError when ``document`` (its parsed ``bundle.json``) stores another one, saying which
    file changed or that the JSON did."""
    digest = digest or content_hash(path)
    stored = document.get(HASH_KEY)
    if stored is None or stored == digest:
        return digest
    meta = path / BUNDLE_FILE
    for where, name, expected in _entries(document):
        file = path / name
        if expected is not None and file.is_file() and sha256(file) != expected:
            raise BundleError(
                f"{file} ({where}) does not match its checksum in {BUNDLE_FILE}; the file is "
                "corrupt or was replaced: re-export or re-download the bundle"
            )
    raise BundleError(
        f"{meta} was changed after the bundle was saved: its content hash is now {digest}, the "
        f"one stored in it is {stored!r}. Labels, preprocessing or model settings may no longer "
        "match the weights, so the bundle is refused. If you edited it on purpose, store the "
        f"new hash with `{REHASH_HINT.format(path=path)}`"
    )


def _entries(document: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """``(where, file name, stored sha256)`` of the files ``files`` and ``onnx`` reference."""
    found = []
    for section in ("files", "onnx"):
        entries = document.get(section)
        if not isinstance(entries, dict):
            continue
        for key, entry in entries.items():
            if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                found.append((f"{section}.{key}", entry["name"], entry.get("sha256")))
    return found


def check_pin(path: Path, digest: str, expected: str | None) -> None:
    """BundleError unless ``digest`` (the bundle's content hash) is the pinned ``expected``."""
    if expected is None:
        return
    expected = check_sha256(expected)
    if digest != expected:
        raise BundleError(
            f"{path}: its content hash is {digest}, not the pinned {expected} "
            "(--model-sha256 / sha256=): this is not the bundle that was tested; deploy that "
            "one, or pin this one after testing it"
        )
