"""``content_hash``: one sha256 per bundle content, independent of where the folder lives."""

from __future__ import annotations

import json
import shutil

import pytest
from test_recognizer import make_bundle, make_classical_bundle

from sertk.bundle import save_ensemble_bundle
from sertk.bundle._hash import content_hash
from sertk.errors import BundleError
from sertk.recognizer import resolve_bundle


def test_the_hash_follows_content_not_place_or_formatting(tmp_path):
    bundle = make_bundle(tmp_path / "gru")
    digest = content_hash(bundle)
    assert len(digest) == 64 and int(digest, 16) >= 0
    copy = shutil.copytree(bundle, tmp_path / "elsewhere" / "copy")
    assert content_hash(copy) == digest
    meta = copy / "bundle.json"
    document = json.loads(meta.read_text())
    reordered = dict(reversed(list(document.items())))
    meta.write_text(json.dumps(reordered, indent=7))  # other key order and indentation
    assert content_hash(copy) == digest
    meta.write_text(json.dumps({**document, "content_hash": "recorded by a writer"}))
    assert content_hash(copy) == digest  # the stored hash itself does not count
    meta.write_text(json.dumps({**document, "labels": list(reversed(document["labels"]))}))
    assert content_hash(copy) != digest
    meta.write_text(json.dumps(document))
    weights = copy / document["files"]["weights"]["name"]
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1  # one bit of one weight
    weights.write_bytes(bytes(data))
    assert content_hash(copy) != digest


def test_an_ensemble_hash_covers_its_members(tmp_path):
    members = [make_bundle(tmp_path / "gru"), make_classical_bundle(tmp_path / "classical")]
    ensemble = save_ensemble_bundle(tmp_path / "ensemble", members)
    digest = content_hash(ensemble)
    assert digest not in {content_hash(m) for m in members}
    member = ensemble / "members" / "1" / "model.safetensors"
    data = bytearray(member.read_bytes())
    data[-1] ^= 1
    member.write_bytes(bytes(data))
    assert content_hash(ensemble) != digest


def test_the_default_model_has_a_hash_and_broken_bundles_fail_clearly(tmp_path):
    assert content_hash(resolve_bundle("default")) == content_hash(resolve_bundle("default"))
    with pytest.raises(BundleError, match="has no bundle.json"):
        content_hash(tmp_path)
    bundle = make_bundle(tmp_path / "gru")
    (bundle / "model.safetensors").unlink()
    with pytest.raises(BundleError, match="lacks model.safetensors"):
        content_hash(bundle)
