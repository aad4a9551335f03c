"""Ensemble bundles: member bundles copied into ``members/<i>/`` plus a combination rule.

``bundle.json`` of an ensemble lists its members (path, weight, label mapping, the sha256 of
the member's own ``bundle.json``) and ``model.hparams = {"rule", "weights"}`` (see
:mod:`sertk.inference.ensemble` for the rules and the label mapping). Members may use different
feature extractors and preprocessing: the ensemble's ``features`` and ``preprocess`` are then
null; its ``normalization`` is ``speaker`` when any member needs speakers; each member keeps its
own test-time views. Ensembles do not nest. An exported ensemble (``sertk export``) has ONNX
members and an ``onnx`` section of its own, and loads with ``backend="onnx"``.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from sertk.bundle._hash import content_hash
from sertk.bundle.base import Bundle, Runtime, base_document, read_document
from sertk.bundle.classical_bundle import ClassicalBundle
from sertk.bundle.contract import InferenceContract
from sertk.bundle.files import BUNDLE_FILE, sha256, write_bundle_dir, write_document
from sertk.bundle.integrity import with_content_hash
from sertk.bundle.onnx_bundle import OnnxBundle, not_exported
from sertk.bundle.resolve import resolve_bundle
from sertk.bundle.torch_bundle import TorchBundle
from sertk.errors import BundleError
from sertk.inference import EnsembleScorer, Scorer, check_weights, label_matrix

MEMBERS_DIR = "members"
MEMBER_KINDS = {TorchBundle.kind: TorchBundle, ClassicalBundle.kind: ClassicalBundle}
COMPOSITE_KINDS = ("ensemble", "adaptive")  # kinds made of member bundles


@dataclasses.dataclass(frozen=True, eq=False)
class EnsembleMember:
    """One member of a loaded ensemble: its bundle, weight and label mapping (member label ->
    ensemble label; None when the label lists are equal, order included)."""

    name: str
    bundle: Bundle
    weight: float
    label_mapping: dict[str, str] | None
    source: str | None


@dataclasses.dataclass(frozen=True, eq=False)
class EnsembleBundle(Bundle):
    """Member bundles and their weights (``members``)."""

    kind: ClassVar[str] = "ensemble"
    composite: ClassVar[bool] = True
    members: tuple[EnsembleMember, ...] = ()

    @classmethod
    def read(
        cls, path: Path, document: dict[str, Any], *, backend: str = "torch",
        models: Mapping[str, Callable[..., Any]] | None = None, **_: Any,
    ) -> EnsembleBundle:  # fmt: skip
        """Load and check every member (with ``backend``; see the module docstring)."""
        if backend == "onnx" and not isinstance(document.get("onnx"), dict):
            raise not_exported(path)
        members = read_members(path, document, backend=backend, models=models)
        return cls(**Bundle.common(path, document), members=members)

    def make_scorer(self, runtime: Runtime) -> Scorer:
        if runtime.extractor is not None:
            raise BundleError("an ensemble builds its members' extractors; do not pass one")
        return EnsembleScorer(
            labels=self.labels,
            members=[m.bundle.make_scorer(runtime) for m in self.members],
            matrices=[
                label_matrix(m.bundle.labels, self.labels, m.label_mapping, m.name)
                for m in self.members
            ],
            weights=[m.weight for m in self.members],
            source=self.path,
        )


def load_member(
    folder: str | Path, *, backend: str = "torch",
    models: Mapping[str, Callable[..., Any]] | None = None, where: str | None = None,
) -> Bundle:  # fmt: skip
    """A bundle that may be an ensemble member (torch or classical, or their ONNX export)."""
    path = resolve_bundle(folder)
    document = read_document(path, (*MEMBER_KINDS, *COMPOSITE_KINDS))
    if document["kind"] in COMPOSITE_KINDS:
        raise BundleError(
            f"{where or path} is itself an {document['kind']} bundle; give its members instead "
            "(bundles of bundles do not nest)"
        )
    if backend == "onnx":
        bundle = OnnxBundle.read(path, document)
    else:
        bundle = MEMBER_KINDS[document["kind"]].read(path, document, models=models)
    return with_content_hash(bundle, document, content_hash(path))


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
    """Copy the member bundles (folders, run folders or ``default``) into a new ensemble bundle
    at ``path``; returns it.

    ``labels``: the ensemble's ordered labels (default: the first member's, after mapping).
    ``mapping``: member label -> ensemble label, one dict for every member or a list with one
    per member (None: identity). ``rule`` and ``weights``: see :mod:`sertk.inference.ensemble`.
    """
    loaded = [load_member(member) for member in members]
    if len(loaded) < 2:
        raise BundleError(f"an ensemble needs at least two member bundles, got {len(loaded)}")
    maps = _per_member(mapping, loaded)
    if labels is None:
        labels = list(dict.fromkeys((maps[0] or {}).get(x, x) for x in loaded[0].labels))
    resolved = []
    for index, (bundle, member_map) in enumerate(zip(loaded, maps, strict=True)):
        label_matrix(bundle.labels, labels, member_map, f"member {index} ({bundle.path})")
        full = {x: (member_map or {}).get(x, x) for x in bundle.labels}
        resolved.append(None if list(bundle.labels) == list(labels) and not member_map else full)
    shared = len({input_key(b) for b in loaded}) == 1
    contract = InferenceContract.of(
        loaded[0].features if shared else None,
        loaded[0].preprocess if shared else None,
        speaker_adapted=any(b.speaker_adapted for b in loaded),
    )
    document = base_document(
        "ensemble", labels, compose_label_map(loaded[0], resolved[0], labels), contract,
        training=training, extra=extra,
    )  # fmt: skip
    weights = check_weights(rule, weights, len(loaded))
    document["model"] = {"name": "ensemble", "hparams": {"rule": rule, "weights": weights}}
    entries = [
        {"path": f"{MEMBERS_DIR}/{i}", "kind": b.kind, "model": b.model_name, "weight": w,
         "label_mapping": m, "source": str(Path(b.path).resolve())}
        for i, (b, w, m) in enumerate(zip(loaded, weights, resolved, strict=True))
    ]  # fmt: skip
    return write_with_members(Path(path), document, loaded, entries)


def write_with_members(
    path: Path, document: dict[str, Any], members: Sequence[Bundle], entries: list[dict]
) -> Path:
    """Write a bundle made of ``members`` (copied to each entry's ``path``, checksummed into
    the entry) with ``document`` listing them under ``members``."""
    document["members"] = entries

    def fill(folder: Path) -> dict[str, Any]:
        for bundle, entry in zip(members, entries, strict=True):
            entry["bundle_sha256"] = copy_member(Path(bundle.path), folder / entry["path"])
        return {}

    return write_bundle_dir(path, document, fill)


def _per_member(mapping: Any, loaded: Sequence[Bundle]) -> list[dict[str, str] | None]:
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


def input_key(bundle: Bundle) -> str:
    return json.dumps([bundle.features, bundle.preprocess], sort_keys=True)


def compose_label_map(first: Bundle, mapping: dict[str, str] | None, labels) -> dict[str, Any]:
    """The first member's label map carried through its mapping into the ensemble's labels."""
    source = first.label_map
    if mapping is None:
        return dict(source)
    composed = {canon: mapping.get(target, target) for canon, target in source["mapping"].items()}
    return {"name": None, "labels": list(labels), "mapping": composed}


def copy_member(source: Path, target: Path, document: dict[str, Any] | None = None) -> str:
    """Copy a member's files and its ``bundle.json`` (or ``document``, e.g. with an ``onnx``
    section added) into ``target``; returns the sha256 of the written JSON."""
    text = (source / BUNDLE_FILE).read_text(encoding="utf-8")
    original = json.loads(text)
    target.mkdir(parents=True)
    for entry in original["files"].values():
        if entry is not None:
            shutil.copyfile(source / entry["name"], target / entry["name"])
    if document is None:
        (target / BUNDLE_FILE).write_text(text, encoding="utf-8")  # its content hash holds
    else:
        write_document(target, document)  # a changed document: a new content hash
    return sha256(target / BUNDLE_FILE)


def read_members(
    path: Path, document: dict[str, Any], *, backend: str, models: Any
) -> tuple[EnsembleMember, ...]:
    """Load and check every member of an ensemble bundle (see the module docstring)."""
    meta = path / BUNDLE_FILE
    entries, hparams = document.get("members"), document["model"]["hparams"]
    if not isinstance(entries, list) or len(entries) < 2:
        raise BundleError(f"{meta}: an ensemble needs a 'members' list of at least two entries")
    weights = check_weights(hparams.get("rule"), hparams.get("weights"), len(entries))
    members = []
    for index, entry in enumerate(entries):
        where = f"{meta}: members[{index}]"
        bundle = read_member(path, entry, where, backend=backend, models=models)
        mapping = entry.get("label_mapping")
        if mapping is not None and not isinstance(mapping, dict):
            raise BundleError(f"{where}: label_mapping must be an object or null")
        label_matrix(bundle.labels, document["labels"], mapping, where)
        members.append(EnsembleMember(entry["path"], bundle, weights[index], mapping,
                                      entry.get("source")))  # fmt: skip
    return tuple(members)


def read_member(path: Path, entry: Any, where: str, *, backend: str, models: Any) -> Bundle:
    """The member bundle an entry of ``members`` names: a folder inside ``path`` whose
    ``bundle.json`` matches the entry's checksum (BundleError naming ``where`` if not)."""
    meta = path / BUNDLE_FILE
    if not isinstance(entry, dict) or not isinstance(entry.get("path"), str):
        raise BundleError(f"{where} must be an object with a 'path'")
    folder = (path / entry["path"]).resolve()
    if path.resolve() not in folder.parents:
        raise BundleError(f"{where}: path {entry['path']!r} must be a folder inside the bundle")
    if not (folder / BUNDLE_FILE).is_file():
        raise BundleError(f"{path} lacks member {entry['path']}; the bundle is incomplete")
    if entry.get("bundle_sha256") not in (None, sha256(folder / BUNDLE_FILE)):
        raise BundleError(f"{folder / BUNDLE_FILE} does not match its checksum in {meta}")
    return load_member(folder, backend=backend, models=models, where=where)
