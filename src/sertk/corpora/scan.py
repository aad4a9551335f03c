"""``scan_corpus``: run an adapter, drop duplicates and (optionally) unreadable audio.

>>> result = scan_corpus("emodb", "examples", check_audio=True)  # seven EmoDB clips
>>> len(result.utterances), result.problems, result.utterances[0].label
(7, [], 'angry')
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sertk.corpora import ased, cremad, emodb, generic, iemocap, nemo, ravdess, tess, turev, urdu
from sertk.corpora.base import Adapter, ScanResult, Utterance
from sertk.corpora.labels import LabelMap, canonical_order
from sertk.errors import ConfigError, CorpusError

CORPORA: dict[str, Adapter] = {
    adapter.name: adapter
    for adapter in (
        iemocap.ADAPTER,
        ravdess.ADAPTER,
        emodb.ADAPTER,
        tess.ADAPTER,
        cremad.ADAPTER,
        ased.ADAPTER,
        urdu.ADAPTER,
        turev.ADAPTER,
        nemo.ADAPTER,
        generic.ADAPTER,
    )
}


def scan_corpus(
    name: str, root: str | os.PathLike, *, check_audio: bool = False, **options: Any
) -> ScanResult:
    """Scan the corpus ``name`` (a key of ``CORPORA``) found at ``root``.

    ``options`` go to the adapter (``include_song`` for ravdess, ``speaker_pattern`` for
    generic). With ``check_audio`` every file is opened with ``soundfile.info`` and unreadable
    or empty ones are dropped. Raises CorpusError when ``root`` is missing or nothing usable
    is found; everything else lands in ``problems``.
    """
    adapter = CORPORA.get(name)
    if adapter is None:
        raise ConfigError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}")
    unknown = sorted(set(options) - set(adapter.options))
    if unknown:
        accepted = ", ".join(adapter.options) or "none"
        raise ConfigError(
            f"corpus {name!r} has no option(s) {', '.join(unknown)} (accepts: {accepted})"
        )
    root = Path(os.path.abspath(root))
    if not root.exists():
        raise CorpusError(f"corpus root {root} does not exist; give the folder holding {name}")
    result = adapter.scan(root, **options)
    utterances = _drop_duplicates(result.utterances, result.problems)
    if check_audio:
        utterances = _drop_unreadable(utterances, result.problems)
    if not utterances:
        shown = "; ".join(result.problems[:3]) or "no matching audio files"
        raise CorpusError(
            f"no usable {name} utterances under {root} ({shown}); expected {adapter.layout}"
        )
    return ScanResult(utterances, result.problems)


def default_label_map(name: str, utterances: Iterable[Utterance]) -> LabelMap:
    """The corpus's usual classes: its adapter's preset, else every label found (canonical order)."""
    adapter = CORPORA.get(name)
    if adapter is None:
        raise ConfigError(f"unknown corpus {name!r}; choose one of {', '.join(CORPORA)}")
    if adapter.preset is not None:
        return LabelMap.preset(adapter.preset)
    found = canonical_order(u.label for u in utterances)
    if not found:
        raise CorpusError(f"no utterances to take {name} labels from")
    return LabelMap.from_labels(found)


def _drop_duplicates(utterances: list[Utterance], problems: list[str]) -> list[Utterance]:
    first: dict[str, Utterance] = {}
    for utterance in utterances:
        kept = first.setdefault(utterance.id, utterance)
        if kept is not utterance:
            problems.append(
                f"duplicate id {utterance.id!r}: kept {kept.path}, skipped {utterance.path}"
            )
    return list(first.values())


def _audio_problem(path: str) -> str | None:
    import soundfile

    try:
        info = soundfile.info(path)
    except Exception as error:  # soundfile raises several types for corrupt input
        return f"unreadable audio {path}: {error}"
    if info.frames <= 0:
        return f"empty audio {path}: no samples"
    return None


def _drop_unreadable(utterances: list[Utterance], problems: list[str]) -> list[Utterance]:
    # soundfile.info is I/O-bound and releases the GIL inside libsndfile, so threads help
    with ThreadPoolExecutor(max_workers=8) as pool:
        found = list(pool.map(_audio_problem, [u.path for u in utterances]))
    problems.extend(problem for problem in found if problem)
    return [u for u, problem in zip(utterances, found, strict=True) if problem is None]
