"""Ensemble bundles: member bundles copied into ``members/<i>/`` plus a combination rule.

``bundle.json`` of an ensemble lists its members (path, weight, label mapping, the sha256 of
the member's own ``bundle.json``) and ``model.hparams = {"rule", "weights"}``:

- ``soft``: the mean of the members' probabilities (weights all ``1 / members``);
- ``weighted``: the weighted mean with the given weights (normalised to sum to 1), e.g. fitted
  on validation data with ``sertk.ensemble.fit_weights``.

Members must share the label list (any order), or each member label is mapped explicitly to an
ensemble label (``mapping``; merged labels add their probabilities); anything else is refused.
Members may use different feature extractors and preprocessing: the ensemble's ``features`` and
``preprocess`` are then null, and inference goes through ``BundleModel.predict_signals``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.bundle._files import BUNDLE_FILE, sha256, write_bundle_dir
from sertk.errors import BundleError

RULES = ("soft", "weighted")
MEMBERS_DIR = "members"


@dataclasses.dataclass(frozen=True, eq=False)
class EnsembleMember:
    """One member of a loaded ensemble: its bundle, weight and label mapping (member label ->
    ensemble label; None when the label lists are equal, order included)."""

    name: str
    bundle: Any
    weight: float
    label_mapping: dict[str, str] | None
    source: str | None


def label_matrix(
    member_labels: Sequence[str], labels: Sequence[str], mapping: Mapping[str, str] | None,
    where: str = "member",
) -> np.ndarray:  # fmt: skip
    """0/1 matrix ``[member classes, ensemble classes]`` sending member columns to ensemble ones.

    Without ``mapping`` the label sets must be equal; with it, each member label goes to
    ``mapping.get(label, label)``, which must be an ensemble label, and every ensemble label
    must receive at least one member label.
    """
    member_labels, labels = list(member_labels), list(labels)
    if mapping is None and sorted(member_labels) != sorted(labels):
        raise BundleError(
            f"{where} has labels {member_labels} but the ensemble has {labels}; members must "
            "share the label list, or map each member label to an ensemble label explicitly "
            "(mapping={'calm': 'neutral'}, sertk ensemble --map calm=neutral)"
        )
    mapping = dict(mapping or {})
    stray = sorted(set(mapping) - set(member_labels))
    if stray:
        raise BundleError(f"{where}: the label mapping names labels it does not have: {stray}")
    matrix = np.zeros((len(member_labels), len(labels)))
    for row, label in enumerate(member_labels):
        target = mapping.get(label, label)
        if target not in labels:
            raise BundleError(
                f"{where}: its label {label!r} maps to {target!r}, which is not an ensemble "
                f"label ({', '.join(labels)}); map it to one of them"
            )
        matrix[row, labels.index(target)] = 1.0
    empty = [label for label, column in zip(labels, matrix.T, strict=True) if not column.any()]
    if empty:
        raise BundleError(
            f"{where} gives no probability to the ensemble label(s) {empty}; every member must "
            "cover every ensemble label"
        )
    return matrix


def check_weights(rule: Any, weights: Any, count: int) -> list[float]:
    """Normalised member weights for ``rule``; BundleError for a bad rule or weights."""
    if rule not in RULES:
        raise BundleError(f"ensemble rule must be one of {', '.join(RULES)}, got {rule!r}")
    if rule == "soft":
        if weights is not None and len(set(map(float, weights))) > 1:
            raise BundleError(
                "rule 'soft' averages the members equally; unequal weights need rule 'weighted'"
            )
        return [1.0 / count] * count
    if weights is None:
        raise BundleError(
            "rule 'weighted' needs one weight per member (given, or fitted on validation data "
            "with sertk.ensemble.fit_weights)"
        )
    values = np.asarray(list(weights), dtype=np.float64)
    if values.shape != (count,) or not np.isfinite(values).all() or (values < 0).any():
        raise BundleError(
            f"ensemble weights must be {count} finite numbers >= 0 (one per member), got "
            f"{list(weights)}"
        )
    if values.sum() <= 0:
        raise BundleError("ensemble weights must not all be 0")
    return (values / values.sum()).tolist()


def save_ensemble_bundle(
    path: str | Path,
    members: Sequence[str | Path],
    *,
    rule: str = "soft",
    weights: Sequence[float] | None = None,
    labels: Sequence[str] | None = None,
    mapping: Mapping[str, str] | Sequence[Mapping[str, str] | None] | None = None,
    training: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Copy the member bundles (folders) into a new ensemble bundle at ``path``; returns it.

    ``labels``: the ensemble's ordered labels (default: the first member's, after mapping).
    ``mapping``: member label -> ensemble label, one dict for every member or a list with one
    per member (None: identity). See the module docstring for ``rule`` and ``weights``.
    """
    from sertk.bundle import base_document, load_bundle

    loaded = [load_bundle(member) for member in members]
    if len(loaded) < 2:
        raise BundleError(f"an ensemble needs at least two member bundles, got {len(loaded)}")
    nested = [str(b.path) for b in loaded if b.kind == "ensemble"]
    if nested:
        raise BundleError(
            f"{nested[0]} is itself an ensemble; give its members instead (no nested ensembles)"
        )
    maps = _per_member(mapping, loaded)
    if labels is None:
        labels = list(dict.fromkeys((maps[0] or {}).get(x, x) for x in loaded[0].labels))
    resolved = []
    for index, (bundle, member_map) in enumerate(zip(loaded, maps, strict=True)):
        label_matrix(bundle.labels, labels, member_map, f"member {index} ({bundle.path})")
        full = {x: (member_map or {}).get(x, x) for x in bundle.labels}
        resolved.append(None if list(bundle.labels) == list(labels) and not member_map else full)
    shares = {_input_key(b) for b in loaded}
    features, preprocess = (
        (loaded[0].features, loaded[0].preprocess) if len(shares) == 1 else ({}, {})
    )
    document = base_document(
        "ensemble", labels, _compose_label_map(loaded[0], resolved[0], labels), features,
        preprocess, training=training, extra=_extra(loaded, rule, extra),
    )  # fmt: skip
    if len(shares) > 1:
        document["features"] = document["preprocess"] = None
    weights = check_weights(rule, weights, len(loaded))
    document["model"] = {"name": "ensemble", "hparams": {"rule": rule, "weights": weights}}
    entries = [
        {"path": f"{MEMBERS_DIR}/{i}", "kind": b.kind, "model": b.model_name, "weight": w,
         "label_mapping": m, "source": str(Path(b.path).resolve())}
        for i, (b, w, m) in enumerate(zip(loaded, weights, resolved, strict=True))
    ]  # fmt: skip
    document["members"] = entries

    def fill(folder: Path) -> dict[str, Any]:
        for bundle, entry in zip(loaded, entries, strict=True):
            entry["bundle_sha256"] = _copy_member(Path(bundle.path), folder / entry["path"])
        return {}

    return write_bundle_dir(Path(path), document, fill)


def _per_member(mapping: Any, loaded: Sequence[Any]) -> list[dict[str, str] | None]:
    """One mapping per member; a single dict applies to the members that have its labels."""
    if mapping is None:
        return [None] * len(loaded)
    if isinstance(mapping, Mapping):
        unused = sorted(set(mapping) - {x for bundle in loaded for x in bundle.labels})
        if unused:
            raise BundleError(f"the label mapping names labels no member has: {unused}")
        return [
            {k: v for k, v in mapping.items() if k in bundle.labels} or None for bundle in loaded
        ]
    maps = list(mapping)
    if len(maps) != len(loaded):
        raise BundleError(f"give one label mapping per member ({len(loaded)}), got {len(maps)}")
    return [None if m is None else dict(m) for m in maps]


def _input_key(bundle: Any) -> str:
    return json.dumps([bundle.features, bundle.preprocess], sort_keys=True)


def _compose_label_map(first: Any, mapping: dict[str, str] | None, labels) -> dict[str, Any]:
    """The first member's label map carried through its mapping into the ensemble's labels."""
    source = first.label_map
    if mapping is None:
        return dict(source)
    composed = {canon: mapping.get(target, target) for canon, target in source["mapping"].items()}
    return {"name": None, "labels": list(labels), "mapping": composed}


def _extra(loaded: Sequence[Any], rule: str, extra: Mapping[str, Any] | None) -> dict[str, Any]:
    speaker = any((b.extra or {}).get("feature_normalization") == "speaker" for b in loaded)
    return {
        "feature_normalization": "speaker" if speaker else "global",
        "rule": rule,
        **dict(extra or {}),
    }


def _copy_member(source: Path, target: Path) -> str:
    """Copy a member's ``bundle.json`` and the files it lists; returns that JSON's sha256."""
    document = json.loads((source / BUNDLE_FILE).read_text(encoding="utf-8"))
    target.mkdir(parents=True)
    for entry in document["files"].values():
        if entry is not None:
            shutil.copyfile(source / entry["name"], target / entry["name"])
    shutil.copyfile(source / BUNDLE_FILE, target / BUNDLE_FILE)
    return sha256(target / BUNDLE_FILE)


def read_members(path: Path, document: dict[str, Any], models: Any) -> tuple[EnsembleMember, ...]:
    """Load and check every member of an ensemble bundle (see the module docstring)."""
    from sertk.bundle import load_bundle

    meta = path / BUNDLE_FILE
    entries, hparams = document.get("members"), document["model"]["hparams"]
    if not isinstance(entries, list) or len(entries) < 2:
        raise BundleError(f"{meta}: an ensemble needs a 'members' list of at least two entries")
    weights = check_weights(hparams.get("rule"), hparams.get("weights"), len(entries))
    members = []
    for index, entry in enumerate(entries):
        where = f"{meta}: members[{index}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
            raise BundleError(f"{where} must be an object with a 'path'")
        folder = (path / entry["path"]).resolve()
        if path.resolve() not in folder.parents:
            raise BundleError(f"{where}: path {entry['path']!r} must be a folder inside the bundle")
        if not (folder / BUNDLE_FILE).is_file():
            raise BundleError(f"{path} lacks member {entry['path']}; the bundle is incomplete")
        if entry.get("bundle_sha256") not in (None, sha256(folder / BUNDLE_FILE)):
            raise BundleError(f"{folder / BUNDLE_FILE} does not match its checksum in {meta}")
        bundle = load_bundle(folder, models=models)
        if bundle.kind == "ensemble":
            raise BundleError(f"{where} is itself an ensemble; nested ensembles are not supported")
        mapping = entry.get("label_mapping")
        if mapping is not None and not isinstance(mapping, dict):
            raise BundleError(f"{where}: label_mapping must be an object or null")
        label_matrix(bundle.labels, document["labels"], mapping, where)
        members.append(EnsembleMember(entry["path"], bundle, weights[index], mapping,
                                      entry.get("source")))  # fmt: skip
    return tuple(members)
