"""Folds: speaker-independent strategies, validation from training speakers, leakage refusal."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest

from sertk.corpora import Utterance, scan_corpus
from sertk.errors import FoldError
from sertk.folds import (
    EMOBOX_RAVDESS_FOLDS,
    Fold,
    folds_from_dict,
    folds_to_dict,
    make_folds,
    ravdess_speaker_folds,
    verify_folds,
)

CORPORA_ROOT = Path(
    os.environ.get("SERTK_CORPORA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
)
LABELS = ("neutral", "happy", "sad", "angry")


def toy_corpus(speakers: dict[str, int], **fields_of) -> list[Utterance]:
    """``count`` utterances per speaker, labels cycling; extra fields are speaker -> value dicts."""
    result = []
    for speaker, count in speakers.items():
        for i in range(count):
            fields = {name: values[speaker] for name, values in fields_of.items()}
            label = LABELS[i % len(LABELS)]
            result.append(
                Utterance(f"{speaker}_{i:03d}", f"/c/{speaker}/{i}.wav", label, speaker, fields)
            )
    return result


def speakers_of(ids, corpus) -> set[str]:
    speaker = {u.id: u.speaker for u in corpus}
    return {speaker[uid] for uid in ids}


EMODB_LIKE = {f"{n:02d}": 40 + 3 * i for i, n in enumerate([3, 8, 9, 10, 11, 12, 13, 14, 15, 16])}


def test_logo_leaves_each_speaker_out_with_validation_from_training_speakers():
    corpus = toy_corpus(EMODB_LIKE)
    folds = make_folds(corpus, strategy="logo")
    assert [f.name for f in folds] == [f"speaker_{s}" for s in EMODB_LIKE]
    all_ids = {u.id for u in corpus}
    for fold, speaker in zip(folds, EMODB_LIKE, strict=True):
        assert speakers_of(fold.test, corpus) == {speaker}
        train, valid = speakers_of(fold.train, corpus), speakers_of(fold.valid, corpus)
        assert valid and not (train & valid) and speaker not in train | valid
        assert set(fold.train) | set(fold.valid) | set(fold.test) == all_ids
        share = len(fold.valid) / (len(fold.train) + len(fold.valid))
        assert 0.05 < share < 0.3  # one whole speaker out of nine, near valid_fraction


def test_validation_speakers_depend_on_seed_deterministically():
    corpus = toy_corpus(EMODB_LIKE)
    again = make_folds(corpus, strategy="logo", seed=3)
    assert make_folds(corpus, strategy="logo", seed=3) == again
    picks = {
        frozenset(speakers_of(make_folds(corpus, strategy="logo", seed=s)[0].valid, corpus))
        for s in range(6)
    }
    assert len(picks) > 1


def test_valid_fraction_and_valid_speakers_control_validation_size():
    corpus = toy_corpus({f"s{i}": 20 for i in range(10)})
    big = make_folds(corpus, strategy="logo", valid_fraction=0.4)[0]
    assert len(speakers_of(big.valid, corpus)) in (3, 4)
    two = make_folds(corpus, strategy="logo", valid_speakers=2)
    assert all(len(speakers_of(f.valid, corpus)) == 2 for f in two)
    named = make_folds(corpus, strategy="logo", valid_speakers=["s8", "s9"])
    assert speakers_of(named[0].valid, corpus) == {"s8", "s9"}
    assert speakers_of(named[8].valid, corpus) == {"s9"}  # s8 is the test speaker there
    with pytest.raises(FoldError, match="unknown speaker.*s99"):
        make_folds(corpus, strategy="logo", valid_speakers=["s99"])
    with pytest.raises(FoldError, match="valid_speakers=9 must be between 1 and 8"):
        make_folds(corpus, strategy="logo", valid_speakers=9)
    with pytest.raises(FoldError, match="valid_fraction"):
        make_folds(corpus, strategy="logo", valid_fraction=0.0)


def test_logo_by_session_keeps_both_speakers_of_a_session_together():
    speakers = {f"Ses0{s}{g}": 12 for s in range(1, 6) for g in "FM"}
    corpus = toy_corpus(speakers, session={sp: sp[:5] for sp in speakers})
    folds = make_folds(corpus, strategy="logo", group="session")
    assert [f.name for f in folds] == [f"session_Ses0{s}" for s in range(1, 6)]
    assert speakers_of(folds[0].test, corpus) == {"Ses01F", "Ses01M"}
    with pytest.raises(FoldError, match="no field 'dialog'"):
        make_folds(corpus, strategy="logo", group="dialog")


def test_group_kfold_balances_sizes_and_tests_every_group_once():
    sizes = {f"s{i}": n for i, n in enumerate([50, 45, 40, 30, 20, 20, 10, 10, 5, 5])}
    corpus = toy_corpus(sizes)
    folds = make_folds(corpus, strategy="group_kfold", n_splits=3, seed=1)
    assert [f.name for f in folds] == ["fold1", "fold2", "fold3"]
    tested = Counter(uid for f in folds for uid in f.test)
    assert set(tested) == {u.id for u in corpus} and set(tested.values()) == {1}
    test_sizes = [len(f.test) for f in folds]
    assert max(test_sizes) - min(test_sizes) <= 10  # 235 utterances: 75-80 each
    assert folds == make_folds(corpus, strategy="group_kfold", n_splits=3, seed=1)
    with pytest.raises(FoldError, match="only 10 speaker values"):
        make_folds(corpus, strategy="group_kfold", n_splits=11)
    with pytest.raises(FoldError, match="needs n_splits"):
        make_folds(corpus, strategy="group_kfold")
    with pytest.raises(FoldError, match="not to 'logo'"):
        make_folds(corpus, strategy="logo", n_splits=3)


def test_explicit_emobox_ravdess_folds():
    actors = {f"Actor_{n:02d}": 8 for n in range(1, 25)}
    corpus = toy_corpus(actors)
    groups = ravdess_speaker_folds()
    assert groups[0] == ["Actor_01", "Actor_11", "Actor_20", "Actor_21"]
    assert sorted(a for fold in EMOBOX_RAVDESS_FOLDS for a in fold) == list(range(1, 25))
    folds = make_folds(corpus, strategy="explicit", folds=groups)
    assert len(folds) == 6
    for fold, test_speakers in zip(folds, groups, strict=True):
        assert speakers_of(fold.test, corpus) == set(test_speakers)
        assert len(fold.test) == 32
    with pytest.raises(FoldError, match="unknown speaker value.*Actor_25"):
        make_folds(corpus, strategy="explicit", folds=[["Actor_25"]])
    with pytest.raises(FoldError, match="Actor_01' is in the test set of folds 1 and 2"):
        make_folds(corpus, strategy="explicit", folds=[["Actor_01"], ["Actor_02", "Actor_01"]])
    with pytest.raises(FoldError, match="goes with strategy 'explicit'"):
        make_folds(corpus, strategy="logo", folds=groups)


def test_random_is_refused_unless_speaker_dependent():
    corpus = toy_corpus({"a": 40, "b": 40})
    with pytest.raises(FoldError, match="speaker_dependent=True"):
        make_folds(corpus, strategy="random", n_splits=5)
    folds = make_folds(corpus, strategy="random", n_splits=4, speaker_dependent=True)
    for fold in folds:
        assert Counter(u.label for u in corpus if u.id in set(fold.test)) == dict.fromkeys(
            LABELS, 5
        )
        assert fold.valid and not set(fold.valid) & set(fold.train)
        assert speakers_of(fold.test, corpus) == {"a", "b"}  # the point of speaker-dependent


def test_a_speaker_spanning_groups_is_refused_as_leakage():
    corpus = toy_corpus({"a": 8, "b": 8, "c": 8})
    # a "text" field that every speaker records: grouping by it puts speakers in train and test
    corpus = [
        Utterance(u.id, u.path, u.label, u.speaker, {"text": f"t{i % 4}"})
        for i, u in enumerate(corpus)
    ]
    with pytest.raises(FoldError, match="appear in both train and test"):
        make_folds(corpus, strategy="logo", group="text")
    folds = make_folds(corpus, strategy="logo", group="text", speaker_dependent=True)
    assert len(folds) == 4


def test_too_few_speakers_or_groups_is_refused():
    with pytest.raises(FoldError, match="at least 2 training speakers|only 1 training speaker"):
        make_folds(toy_corpus({"a": 5, "b": 5}), strategy="logo")
    with pytest.raises(FoldError, match="at least 2 distinct speaker"):
        make_folds(toy_corpus({"a": 5}), strategy="logo")
    with pytest.raises(FoldError, match="no utterances"):
        make_folds([], strategy="logo")
    with pytest.raises(FoldError, match="unknown fold strategy"):
        make_folds(toy_corpus({"a": 5}), strategy="loso")


def test_verify_folds_refuses_leaks_empty_sides_and_unknown_ids():
    corpus = toy_corpus({"a": 2, "b": 2, "c": 2})
    good = Fold("f", ("a_000", "a_001"), ("b_000", "b_001"), ("c_000", "c_001"))
    verify_folds([good], corpus)
    leaky = Fold("f", ("a_000",), ("b_000", "b_001"), ("c_000", "a_001"))
    with pytest.raises(FoldError, match="speaker.*a appear in both train and test"):
        verify_folds([leaky], corpus)
    verify_folds([leaky], corpus, speaker_dependent=True)
    with pytest.raises(FoldError, match="utterance.*a_000 appear in both train and test"):
        verify_folds(
            [Fold("f", ("a_000",), ("b_000",), ("a_000",))], corpus, speaker_dependent=True
        )
    with pytest.raises(FoldError, match="empty valid set"):
        verify_folds([Fold("f", ("a_000",), (), ("c_000",))], corpus)
    with pytest.raises(FoldError, match="unknown ids: zz"):
        verify_folds([Fold("f", ("zz",), ("b_000",), ("c_000",))], corpus)


def test_folds_dict_round_trip_through_json_and_malformed_input():
    folds = make_folds(toy_corpus(EMODB_LIKE), strategy="logo")
    data = json.loads(json.dumps(folds_to_dict(folds)))
    assert folds_from_dict(data) == folds
    with pytest.raises(FoldError, match="not a sertk splits"):
        folds_from_dict({"folds": []})
    with pytest.raises(FoldError, match="version 2"):
        folds_from_dict({**data, "version": 2})
    broken = {**data, "folds": [{"name": "x", "train": "a_000", "valid": [], "test": []}]}
    with pytest.raises(FoldError, match="'train' must be a list"):
        folds_from_dict(broken)


@pytest.mark.corpora
def test_real_ravdess_emobox_folds_and_emodb_logo():
    if not (CORPORA_ROOT / "ravdess").is_dir() or not (CORPORA_ROOT / "emodb").is_dir():
        pytest.skip(f"{CORPORA_ROOT} is absent")
    ravdess = scan_corpus("ravdess", CORPORA_ROOT / "ravdess").utterances
    folds = make_folds(ravdess, strategy="explicit", folds=ravdess_speaker_folds())
    assert [len(f.test) for f in folds] == [240] * 6
    emodb = scan_corpus("emodb", CORPORA_ROOT / "emodb").utterances
    assert len(make_folds(emodb, strategy="logo")) == 10
