"""Adaptive bundles: a global model and a speaker-adapted one in one bundle (kind ``adaptive``).

The bundle answers with the global model until the statistics of a speaker (or a live or REST
session) hold ``min_seconds`` of speech, then with the speaker-adapted model, normalised by
its own ``adaptation`` (:class:`sertk.inference.AdaptiveScorer`). So it works on a lone clip,
like a global bundle, and improves as a speaker's audio accumulates: every path that keeps
statistics (``sertk predict --adapt``, ``--timeline --adapt session``, live, REST sessions)
switches by itself.

Layout: ``members/global/`` and ``members/adapted/`` (copies of the two bundles, checksummed
in ``members``), ``model.hparams = {"min_seconds": s}``, ``normalization: global`` (it needs
no statistics). Made by :func:`save_adaptive_bundle` or ``sertk bundle pair GLOBAL ADAPTED
-o OUT``.

>>> from sertk.bundle import DEFAULT_MODEL, load_bundle  # the default is adaptive: two members
>>> members = DEFAULT_MODEL / "members"
>>> save_adaptive_bundle("pair", members / "global", members / "adapted", min_seconds=30)
PosixPath('pair')
>>> load_bundle("pair").build_scorer().adaptation.min_seconds
30.0
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, ClassVar

from sertk.bundle.base import Bundle, Runtime, base_document
from sertk.bundle.contract import InferenceContract
from sertk.bundle.ensemble_bundle import (
    MEMBERS_DIR,
    compose_label_map,
    input_key,
    load_member,
    read_member,
    write_with_members,
)
from sertk.bundle.files import BUNDLE_FILE
from sertk.bundle.onnx_bundle import not_exported
from sertk.errors import BundleError
from sertk.inference import AdaptiveScorer, Scorer, label_matrix

ROLES = ("global", "adapted")
MIN_SECONDS = 20.0  # default switch-over: see docs/results.md (UA against seconds of speech)


@dataclasses.dataclass(frozen=True, eq=False)
class AdaptiveBundle(Bundle):
    """``members``: the global bundle and the speaker-adapted one; ``mappings``: each member's
    label mapping (None: same labels); ``min_seconds``: speech needed before adapting."""

    kind: ClassVar[str] = "adaptive"
    composite: ClassVar[bool] = True
    members: tuple[Bundle, ...] = ()
    mappings: tuple[dict[str, str] | None, ...] = ()
    min_seconds: float = MIN_SECONDS

    @classmethod
    def read(
        cls, path: Path, document: dict[str, Any], *, backend: str = "torch",
        models: Mapping[str, Callable[..., Any]] | None = None, **_: Any,
    ) -> AdaptiveBundle:  # fmt: skip
        """Load and check both members (with ``backend``)."""
        meta = path / BUNDLE_FILE
        if backend == "onnx" and not isinstance(document.get("onnx"), dict):
            raise not_exported(path)
        entries = document.get("members")
        if not isinstance(entries, list) or [e.get("role") for e in entries if
                                             isinstance(e, dict)] != list(ROLES):  # fmt: skip
            raise BundleError(f"{meta}: 'members' must list the global then the adapted member")
        members, mappings = [], []
        for index, entry in enumerate(entries):
            where = f"{meta}: members[{index}] ({entry['role']})"
            bundle = read_member(path, entry, where, backend=backend, models=models)
            mapping = entry.get("label_mapping")
            label_matrix(bundle.labels, document["labels"], mapping, where)
            members.append(bundle)
            mappings.append(mapping)
        check_roles(members, meta)
        seconds = check_seconds(document["model"]["hparams"].get("min_seconds"), meta)
        return cls(**Bundle.common(path, document), members=tuple(members),
                   mappings=tuple(mappings), min_seconds=seconds)  # fmt: skip

    def make_scorer(self, runtime: Runtime) -> Scorer:
        if runtime.extractor is not None:
            raise BundleError("an adaptive bundle builds its members' extractors; do not pass one")
        return AdaptiveScorer(
            labels=self.labels,
            members=[member.make_scorer(runtime) for member in self.members],
            matrices=[
                label_matrix(m.labels, self.labels, mapping, role)
                for m, mapping, role in zip(self.members, self.mappings, ROLES, strict=True)
            ],
            min_seconds=self.min_seconds,
            source=self.path,
        )


def check_roles(members: list[Bundle], where: Any) -> None:
    """BundleError unless the first member is global and the second speaker-adapted."""
    if members[0].speaker_adapted or not members[1].speaker_adapted:
        raise BundleError(
            f"{where}: an adaptive bundle pairs a global bundle (normalization global) with a "
            f"speaker-adapted one (normalization speaker); got {members[0].path} "
            f"({members[0].contract.normalization}) and {members[1].path} "
            f"({members[1].contract.normalization})"
        )


def check_seconds(value: Any, where: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not (0 <= value < math.inf):
        raise BundleError(f"{where}: min_seconds must be a number of seconds >= 0, got {value!r}")
    return float(value)


def save_adaptive_bundle(
    path: str | Path,
    global_bundle: str | Path,
    adapted_bundle: str | Path,
    *,
    min_seconds: float | None = None,
    mapping: Mapping[str, str] | None = None,
    training: Mapping[str, Any] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Copy a global bundle and a speaker-adapted one (folders, run folders or ``default``) into
    a new adaptive bundle at ``path``; returns it. ``min_seconds``: speech needed before the
    adapted model answers (default: the adapted bundle's ``adaptation.min_seconds`` when it
    names one, else :data:`MIN_SECONDS`); ``mapping``: adapted-member label -> global label,
    when their label names differ. The labels are the global bundle's."""
    members = [load_member(global_bundle), load_member(adapted_bundle)]
    check_roles(members, "sertk bundle pair")
    own = members[1].contract.adaptation
    if min_seconds is None:
        min_seconds = own.min_seconds if own is not None and own.min_seconds else MIN_SECONDS
    min_seconds = check_seconds(min_seconds, "sertk bundle pair")
    labels = list(members[0].labels)
    maps = [None, dict(mapping) if mapping else None]
    for bundle, member_map, role in zip(members, maps, ROLES, strict=True):
        label_matrix(bundle.labels, labels, member_map, f"the {role} bundle ({bundle.path})")
    shared = input_key(members[0]) == input_key(members[1])
    contract = InferenceContract.of(
        members[0].features if shared else None, members[0].preprocess if shared else None
    )
    document = base_document(
        "adaptive", labels, compose_label_map(members[0], None, labels), contract,
        training=training, extra=extra,
    )  # fmt: skip
    document["model"] = {"name": "adaptive", "hparams": {"min_seconds": min_seconds}}
    entries = [
        {"path": f"{MEMBERS_DIR}/{role}", "role": role, "kind": bundle.kind,
         "model": bundle.model_name, "label_mapping": member_map,
         "source": str(Path(bundle.path).resolve())}
        for bundle, member_map, role in zip(members, maps, ROLES, strict=True)
    ]  # fmt: skip
    return write_with_members(Path(path), document, members, entries)
