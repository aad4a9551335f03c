"""Speaker-independent splits derived from corpus metadata: ``Fold`` and ``make_folds``.

Strategies:

* ``logo`` -- leave one group out; ``group`` is ``"speaker"`` or a field such as ``"session"``.
* ``group_kfold`` -- ``n_splits`` folds of whole groups, balanced by utterance count.
* ``explicit`` -- ``folds`` lists the test groups of each fold (see ``EMOBOX_RAVDESS_FOLDS``).
* ``random`` -- speaker-dependent stratified k-fold; refused unless ``speaker_dependent=True``.

Validation comes from training speakers only: whole speakers are held out of train (chosen
by ``seed``; at least one; about ``valid_fraction`` of the training utterances, or exactly
``valid_speakers`` when given). Every fold is verified before it is returned: no utterance or
speaker in two of train/valid/test (unless ``speaker_dependent``) and no empty side.

>>> from sertk.corpora import scan_corpus
>>> utterances = scan_corpus("emodb", "examples").utterances  # 7 clips of 7 speakers
>>> folds = make_folds(utterances, strategy="logo")
>>> folds[0].name, len(folds), folds[0].test, len(folds[0].train), len(folds[0].valid)
('speaker_03', 7, ('03a02Wc',), 5, 1)
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sertk.corpora.base import Utterance, natural_key
from sertk.corpora.ravdess import speaker_name
from sertk.errors import FoldError

STRATEGIES = ("logo", "group_kfold", "explicit", "random")

# EmoBox (emo-box/EmoBox, data/ravdess/fold_k): test actors of its 6 speaker-independent folds
EMOBOX_RAVDESS_FOLDS: tuple[tuple[int, ...], ...] = (
    (1, 11, 20, 21),
    (4, 10, 12, 14),
    (8, 9, 19, 23),
    (3, 5, 7, 24),
    (2, 15, 16, 18),
    (6, 13, 17, 22),
)


@dataclasses.dataclass(frozen=True)
class Fold:
    """One split: utterance ids for training, validation (model selection) and test."""

    name: str
    train: tuple[str, ...]
    valid: tuple[str, ...]
    test: tuple[str, ...]


def ravdess_speaker_folds(
    folds: Iterable[Iterable[int]] = EMOBOX_RAVDESS_FOLDS,
) -> list[list[str]]:
    """Actor numbers -> RAVDESS speaker ids, for ``make_folds(strategy="explicit", folds=...)``."""
    return [[speaker_name(actor) for actor in fold] for fold in folds]


def make_folds(
    utterances: Iterable[Utterance],
    *,
    strategy: str,
    group: str = "speaker",
    n_splits: int | None = None,
    folds: Sequence[Sequence[str]] | None = None,
    valid_fraction: float = 0.15,
    valid_speakers: int | Sequence[str] | None = None,
    seed: int = 0,
    speaker_dependent: bool = False,
) -> list[Fold]:
    """Build verified folds from utterance metadata (see the module docstring)."""
    utterances = list(utterances)
    _check_options(utterances, strategy, n_splits, folds, valid_fraction, speaker_dependent)
    _check_valid_speakers(utterances, valid_speakers)
    if strategy == "random":
        tests = _random_tests(utterances, n_splits, seed)
    else:
        tests = _group_tests(utterances, strategy, group, n_splits, folds, seed)
    result = []
    for name, test in tests:
        pool = [u for u in utterances if u.id not in test]
        rng = random.Random(f"{seed}/{name}")
        if speaker_dependent:
            valid = _stratified_sample(pool, valid_fraction, rng)
        else:
            valid = _valid_by_speaker(pool, valid_fraction, valid_speakers, rng, name)
        train = tuple(u.id for u in pool if u.id not in valid)
        ordered_valid = tuple(u.id for u in pool if u.id in valid)
        ordered_test = tuple(u.id for u in utterances if u.id in test)
        result.append(Fold(name, train, ordered_valid, ordered_test))
    verify_folds(result, utterances, speaker_dependent=speaker_dependent)
    return result


def _group_tests(utterances, strategy, group, n_splits, folds, seed) -> list[tuple[str, set[str]]]:
    """(fold name, test ids) for the group strategies."""
    groups = _groups(utterances, group)
    if strategy == "logo":
        test_groups = [[value] for value in groups]
        names = [_safe(f"{group}_{value}") for value in groups]
    else:
        if strategy == "group_kfold":
            test_groups = _balanced_groups(groups, n_splits, seed, group)
        else:
            test_groups = _explicit_groups(groups, folds, group)
        names = [f"fold{i + 1}" for i in range(len(test_groups))]
    return [
        (name, {uid for value in values for uid in groups[value]})
        for name, values in zip(names, test_groups, strict=True)
    ]


def _check_valid_speakers(utterances: list[Utterance], valid_speakers) -> None:
    if valid_speakers is None or isinstance(valid_speakers, int):
        return
    names = [valid_speakers] if isinstance(valid_speakers, str) else list(valid_speakers)
    unknown = sorted(set(names) - {u.speaker for u in utterances})
    if unknown:
        raise FoldError(f"valid_speakers names unknown speaker(s): {', '.join(unknown)}")


def _check_options(
    utterances, strategy, n_splits, folds, valid_fraction, speaker_dependent
) -> None:
    if strategy not in STRATEGIES:
        raise FoldError(
            f"unknown fold strategy {strategy!r}; choose one of {', '.join(STRATEGIES)}"
        )
    if not utterances:
        raise FoldError("no utterances to split; scan a corpus first")
    repeated = [uid for uid, n in Counter(u.id for u in utterances).items() if n > 1]
    if repeated:
        raise FoldError(f"utterance ids must be unique; repeated: {', '.join(repeated[:5])}")
    if strategy == "random" and not speaker_dependent:
        raise FoldError(
            "strategy 'random' puts the same speakers in train and test, which inflates scores; "
            "pass speaker_dependent=True if that is really what you want, or use logo/group_kfold"
        )
    needs_k = strategy in ("group_kfold", "random")
    if needs_k and (not isinstance(n_splits, int) or n_splits < 2):
        raise FoldError(f"strategy {strategy!r} needs n_splits, an integer >= 2 (got {n_splits!r})")
    if not needs_k and n_splits is not None:
        raise FoldError(f"n_splits applies to group_kfold and random, not to {strategy!r}")
    if (strategy == "explicit") != (folds is not None):
        raise FoldError("folds (lists of test groups) goes with strategy 'explicit' and only there")
    if not 0.0 < valid_fraction < 1.0:
        raise FoldError(f"valid_fraction must be between 0 and 1 (exclusive), got {valid_fraction}")


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name)


def _group_of(utterance: Utterance, group: str) -> str:
    if group == "speaker":
        return utterance.speaker
    value = utterance.fields.get(group)
    if not value:
        raise FoldError(
            f"utterance {utterance.id!r} has no field {group!r} to group by; "
            f"its fields are {', '.join(utterance.fields) or 'none'}"
        )
    return value


def _groups(utterances: list[Utterance], group: str) -> dict[str, list[str]]:
    """Group value -> utterance ids, in natural order of the values."""
    groups: dict[str, list[str]] = defaultdict(list)
    for utterance in utterances:
        groups[_group_of(utterance, group)].append(utterance.id)
    if len(groups) < 2:
        raise FoldError(f"need at least 2 distinct {group} values to split, found {list(groups)}")
    return {value: groups[value] for value in sorted(groups, key=natural_key)}


def _balanced_groups(
    groups: dict[str, list[str]], k: int, seed: int, group: str
) -> list[list[str]]:
    """Assign groups to k folds, largest first, each to the currently smallest fold."""
    if k > len(groups):
        raise FoldError(f"n_splits={k} but there are only {len(groups)} {group} values")
    values = list(groups)
    random.Random(seed).shuffle(values)  # the seed breaks ties between equal-sized groups
    values.sort(key=lambda value: -len(groups[value]))
    folds: list[list[str]] = [[] for _ in range(k)]
    sizes = [0] * k
    for value in values:
        target = sizes.index(min(sizes))
        folds[target].append(value)
        sizes[target] += len(groups[value])
    return [sorted(fold, key=natural_key) for fold in folds]


def _explicit_groups(groups: dict[str, list[str]], folds, group: str) -> list[list[str]]:
    result, seen = [], {}
    for i, fold in enumerate(folds, start=1):
        values = [str(value) for value in fold]
        if not values:
            raise FoldError(f"explicit fold {i} lists no test {group} values")
        unknown = [value for value in values if value not in groups]
        if unknown:
            raise FoldError(
                f"explicit fold {i}: unknown {group} value(s) {', '.join(unknown)}; "
                f"known: {', '.join(list(groups)[:12])}"
            )
        for value in values:
            if value in seen:
                raise FoldError(
                    f"{group} {value!r} is in the test set of folds {seen[value]} and {i}"
                )
            seen[value] = i
        result.append(values)
    if not result:
        raise FoldError("strategy 'explicit' needs at least one fold")
    return result


def _random_tests(utterances: list[Utterance], k: int, seed: int) -> list[tuple[str, set[str]]]:
    if k > len(utterances):
        raise FoldError(f"n_splits={k} but there are only {len(utterances)} utterances")
    by_label: dict[str, list[str]] = defaultdict(list)
    for utterance in utterances:
        by_label[utterance.label].append(utterance.id)
    rng = random.Random(seed)
    tests: list[set[str]] = [set() for _ in range(k)]
    position = 0  # dealt round-robin across labels, so fold sizes differ by at most one
    for label in sorted(by_label):
        ids = by_label[label]
        rng.shuffle(ids)
        for uid in ids:
            tests[position % k].add(uid)
            position += 1
    return [(f"fold{i + 1}", test) for i, test in enumerate(tests)]


def _stratified_sample(pool: list[Utterance], fraction: float, rng: random.Random) -> set[str]:
    by_label: dict[str, list[str]] = defaultdict(list)
    for utterance in pool:
        by_label[utterance.label].append(utterance.id)
    chosen: set[str] = set()
    for label in sorted(by_label):
        ids = by_label[label]
        rng.shuffle(ids)
        chosen.update(ids[: round(fraction * len(ids))])
    if not chosen and len(pool) > 1:
        chosen.add(rng.choice([u.id for u in pool]))
    return chosen


def _valid_by_speaker(pool, fraction, valid_speakers, rng: random.Random, name: str) -> set[str]:
    sizes = Counter(u.speaker for u in pool)
    speakers = sorted(sizes, key=natural_key)
    if isinstance(valid_speakers, str):
        valid_speakers = [valid_speakers]
    if len(speakers) < 2:
        raise FoldError(
            f"fold {name!r}: only {len(speakers)} training speaker(s) ({', '.join(speakers)}); "
            "validation needs whole speakers held out of train, so at least 2 are needed"
        )
    if isinstance(valid_speakers, int):
        if not 1 <= valid_speakers < len(speakers):
            raise FoldError(
                f"fold {name!r}: valid_speakers={valid_speakers} must be between 1 and "
                f"{len(speakers) - 1} (the fold has {len(speakers)} training speakers)"
            )
        rng.shuffle(speakers)
        chosen = speakers[:valid_speakers]
    elif valid_speakers is not None:
        chosen = [s for s in valid_speakers if s in sizes]
        if not chosen or len(chosen) == len(speakers):
            raise FoldError(
                f"fold {name!r}: valid_speakers {list(valid_speakers)} leave "
                f"{'no validation' if not chosen else 'no training'} speaker"
            )
    else:
        chosen = _closest_speakers(speakers, sizes, fraction * len(pool), rng)
    chosen_set = set(chosen)
    return {u.id for u in pool if u.speaker in chosen_set}


def _closest_speakers(speakers: list[str], sizes: Counter, target: float, rng) -> list[str]:
    """Speakers, in seeded order, whose utterance total comes closest to ``target``."""
    rng.shuffle(speakers)
    chosen, total = [], 0
    for speaker in speakers[:-1]:  # always leave one speaker for training
        if total >= target:
            break
        size = sizes[speaker]
        if not chosen or abs(total + size - target) <= abs(total - target):
            chosen.append(speaker)
            total += size
    return chosen


def verify_folds(
    folds: Sequence[Fold], utterances: Iterable[Utterance], *, speaker_dependent: bool = False
) -> None:
    """Raise FoldError if a fold has an empty side, unknown ids, or leaks utterances/speakers."""
    speaker_of = {u.id: u.speaker for u in utterances}
    names = Counter(fold.name for fold in folds)
    if any(n > 1 for n in names.values()):
        raise FoldError(f"fold names must be unique: {sorted(n for n in names if names[n] > 1)}")
    for fold in folds:
        sides = {"train": fold.train, "valid": fold.valid, "test": fold.test}
        for side, ids in sides.items():
            if not ids:
                raise FoldError(f"fold {fold.name!r} has an empty {side} set; change the split")
            unknown = [uid for uid in ids if uid not in speaker_of]
            if unknown:
                raise FoldError(
                    f"fold {fold.name!r} {side} has unknown ids: {', '.join(unknown[:5])}"
                )
            if len(set(ids)) != len(ids):
                raise FoldError(f"fold {fold.name!r} lists an utterance twice in {side}")
        _check_disjoint(fold, sides, lambda uid: uid, "utterance")
        if not speaker_dependent:
            _check_disjoint(fold, sides, speaker_of.__getitem__, "speaker")


def _check_disjoint(fold: Fold, sides: Mapping[str, Sequence[str]], key, what: str) -> None:
    seen = {side: {key(uid) for uid in ids} for side, ids in sides.items()}
    for a, b in (("train", "test"), ("valid", "test"), ("train", "valid")):
        shared = sorted(seen[a] & seen[b], key=natural_key)
        if shared:
            raise FoldError(
                f"fold {fold.name!r}: {what}(s) {', '.join(shared[:5])} appear in both {a} and "
                f"{b}; that leaks {what}s between them (group by speaker, or pass "
                "speaker_dependent=True knowingly)"
            )


def folds_to_dict(folds: Sequence[Fold]) -> dict[str, Any]:
    """JSON-serialisable form of folds (``splits.json``)."""
    return {
        "format": "sertk-splits",
        "version": 1,
        "folds": [
            {"name": f.name, "train": list(f.train), "valid": list(f.valid), "test": list(f.test)}
            for f in folds
        ],
    }


def folds_from_dict(data: Mapping[str, Any]) -> list[Fold]:
    """Inverse of ``folds_to_dict``; check against utterances with ``verify_folds``."""
    if not isinstance(data, Mapping) or data.get("format") != "sertk-splits":
        raise FoldError("not a sertk splits dict (expected 'format': 'sertk-splits')")
    if data.get("version") != 1:
        raise FoldError(f"splits version {data.get('version')!r} is not supported (expected 1)")
    folds = []
    for i, entry in enumerate(data.get("folds") or [], start=1):
        sides = {}
        for side in ("train", "valid", "test"):
            ids = entry.get(side) if isinstance(entry, Mapping) else None
            if not isinstance(ids, list) or not all(isinstance(uid, str) for uid in ids):
                raise FoldError(f"splits fold {i}: {side!r} must be a list of utterance ids")
            sides[side] = tuple(ids)
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            raise FoldError(f"splits fold {i}: 'name' must be a non-empty string")
        folds.append(Fold(name, **sides))
    if not folds:
        raise FoldError("splits dict holds no folds")
    return folds
