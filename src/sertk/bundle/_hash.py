"""``content_hash``: one sha256 that names what a bundle computes, wherever its folder lives.

The hash covers, in this order:

1. ``bundle.json`` in canonical form: parsed, the stored hash itself removed (a top-level
   ``content_hash`` key, should a writer record one), then dumped with sorted keys and compact
   separators, so indentation and key order do not matter;
2. every file the document references, in the order of its JSON path: any object that has a
   string ``name`` and a ``sha256`` key (``files.weights``, ``files.normalization``, the ONNX
   section's ``head``/``encoder``...), read byte for byte from the bundle folder;
3. for an ensemble, each member's own content hash, in member order (``members[i].path``).

Each part goes into the digest with its length, so no two different bundles share a byte
stream. The folder's path, file timestamps and ``.old``/``.tmp`` leftovers do not count: the same
bundle copied to another machine keeps its hash, and changing one weight changes it.

>>> import shutil
>>> from sertk.bundle import DEFAULT_MODEL
>>> digest = content_hash(DEFAULT_MODEL)
>>> len(digest), content_hash(shutil.copytree(DEFAULT_MODEL, "copy")) == digest
(64, True)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sertk.errors import BundleError

BUNDLE_FILE = "bundle.json"
HASH_KEY = "content_hash"
_PREFIX = b"sertk-bundle-content/1\n"


def content_hash(path: str | Path) -> str:
    """The content hash (64 hex digits) of the bundle folder ``path``; see the module docstring.

    Raises BundleError when ``bundle.json`` or a file it references is missing or unreadable.
    """
    folder = Path(path)
    document = _read(folder)
    digest = hashlib.sha256(_PREFIX)
    canonical = {k: v for k, v in document.items() if k != HASH_KEY}
    _update(digest, json.dumps(canonical, sort_keys=True, separators=(",", ":")).encode())
    for where, name in _referenced(document):
        file = folder / name
        if file.parent.resolve() != folder.resolve():
            raise BundleError(f"{folder / BUNDLE_FILE}: {where} names {name!r}, outside the bundle")
        try:
            data = file.read_bytes()
        except OSError as error:
            raise BundleError(
                f"{folder} lacks {name} ({where}) or cannot read it: {error}; the bundle is "
                "incomplete"
            ) from None
        _update(digest, where.encode())
        _update(digest, data)
    for index, member in enumerate(document.get("members") or ()):
        if not isinstance(member, dict) or not isinstance(member.get("path"), str):
            raise BundleError(f"{folder / BUNDLE_FILE}: members[{index}] has no 'path'")
        _update(digest, content_hash(folder / member["path"]).encode())
    return digest.hexdigest()


def _read(folder: Path) -> dict[str, Any]:
    meta = folder / BUNDLE_FILE
    try:
        document = json.loads(meta.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{folder} has no {BUNDLE_FILE}; it is not a model bundle") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"cannot read {meta}: {error}") from None
    if not isinstance(document, dict):
        raise BundleError(f"{meta} must hold a JSON object")
    return document


def _referenced(node: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """``(json path, file name)`` of every file entry under ``node``, sorted by path."""
    if isinstance(node, dict):
        if isinstance(node.get("name"), str) and "sha256" in node:
            yield where, node["name"]
            return
        for key in sorted(node):
            if where or key != "members":  # members are hashed as whole bundles
                yield from _referenced(node[key], f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            yield from _referenced(item, f"{where}[{index}]")


def _update(digest: Any, data: bytes) -> None:
    digest.update(len(data).to_bytes(8, "little"))
    digest.update(data)
