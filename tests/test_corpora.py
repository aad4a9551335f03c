"""Corpora: Utterance, manifests, adapters on synthetic official layouts, LabelMap, `sertk corpus`."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile

from sertk.cli import main
from sertk.corpora import (
    CANONICAL_LABELS,
    CORPORA,
    LabelMap,
    Utterance,
    read_manifest,
    scan_corpus,
    write_manifest,
)
from sertk.errors import ConfigError, CorpusError

CORPORA_ROOT = Path(
    os.environ.get("SERTK_CORPORA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
)


def write_audio(path: Path, *, seed: int = 0, seconds: float = 0.05) -> Path:
    """A short seeded sine + noise at 16 kHz, in the format the suffix names."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    t = np.arange(int(16000 * seconds)) / 16000
    signal = 0.3 * np.sin(2 * np.pi * (200 + 20 * seed) * t) + 0.01 * rng.standard_normal(t.size)
    soundfile.write(path, signal.astype(np.float32), 16000)
    return path


def utterance(
    uid: str, path: str, label: str = "happy", speaker: str = "s1", **fields
) -> Utterance:
    return Utterance(uid, path, label, speaker, dict(fields))


# --- Utterance and manifests -------------------------------------------------------------


def test_utterance_rejects_relative_path_empty_label_and_reserved_fields():
    with pytest.raises(CorpusError, match="absolute"):
        utterance("a", "rel/a.wav")
    with pytest.raises(CorpusError, match="label"):
        utterance("a", "/x/a.wav", label=" ")
    with pytest.raises(CorpusError, match="reserved"):
        Utterance("a", "/x/a.wav", "happy", "s1", {"label": "sad"})


def test_manifest_round_trip_relative_inside_absolute_outside(tmp_path):
    inside = utterance("a", str(tmp_path / "wav" / "a.wav"), gender="male", session="1")
    outside = utterance("b", "/elsewhere/b.flac", label="sad", speaker="s2", text="hi, there")
    path = write_manifest([inside, outside], tmp_path / "manifest.csv")
    rows = list(csv.reader(path.open()))
    assert rows[0] == ["id", "path", "label", "speaker", "gender", "session", "text"]
    assert rows[1][1] == "wav/a.wav" and rows[2][1] == "/elsewhere/b.flac"
    assert read_manifest(path) == [inside, outside]  # absent fields stay absent


def test_manifest_relative_paths_follow_the_folder_when_moved(tmp_path):
    write_manifest([utterance("a", str(tmp_path / "old" / "a.wav"))], tmp_path / "old" / "m.csv")
    (tmp_path / "old").rename(tmp_path / "new")
    assert read_manifest(tmp_path / "new" / "m.csv")[0].path == str(tmp_path / "new" / "a.wav")


def test_write_manifest_is_atomic_and_refuses_duplicate_ids(tmp_path):
    path = tmp_path / "m.csv"
    write_manifest([utterance("a", "/x/a.wav")], path)
    before = path.read_text()
    with pytest.raises(CorpusError, match="duplicate utterance id 'b'"):
        write_manifest([utterance("b", "/x/b.wav"), utterance("b", "/x/c.wav")], path)
    assert path.read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.csv"]  # no temp file left


def _manifest(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.csv"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("path,speaker,emotion\nwav/a.wav,03,anger\n", "lacks column.*id, label"),
        ("id,path,label,speaker\na,a.wav,happy,s1\nb,b.wav,,s1\n", r"m.csv:3: empty label"),
        (
            "id,path,label,speaker\na,a.wav,happy,s1\na,b.wav,sad,s2\n",
            r"m.csv:3: duplicate id 'a'.*line 2",
        ),
        ("id,path,label,speaker\na,a.wav,happy\n", r"m.csv:2: 3 cells"),
        ("", "is empty"),
    ],
)
def test_read_manifest_errors_name_the_problem_and_line(tmp_path, text, message):
    with pytest.raises(CorpusError, match=message):
        read_manifest(_manifest(tmp_path, text))


def test_read_manifest_missing_file(tmp_path):
    with pytest.raises(CorpusError, match="does not exist.*sertk corpus scan"):
        read_manifest(tmp_path / "nope.csv")


# --- adapters on synthetic official layouts -------------------------------------------------


def test_emodb_labels_fields_and_problems(tmp_path):
    for i, name in enumerate(
        ["03a01Fa.wav", "16b10Lb.flac", "99a01Wa.wav", "03a01Xa.wav", "x.wav"]
    ):
        write_audio(tmp_path / "wav" / name, seed=i)
    result = scan_corpus("emodb", tmp_path)
    by_id = {u.id: u for u in result.utterances}
    assert sorted(by_id) == ["03a01Fa", "16b10Lb", "99a01Wa"]
    assert by_id["03a01Fa"].label == "happy" and by_id["16b10Lb"].label == "boredom"
    assert by_id["03a01Fa"].fields == {
        "emotion_code": "F", "text_id": "a01", "version": "a", "gender": "male", "age": "31"
    }  # fmt: skip
    assert by_id["16b10Lb"].fields["gender"] == "female" and by_id["16b10Lb"].speaker == "16"
    assert "gender" not in by_id["99a01Wa"].fields
    text = "\n".join(result.problems)
    assert "03a01Xa.wav (X)" in text and "x.wav" in text and "not in the EmoDB table" in text


def test_ravdess_speech_only_by_default_song_on_request(tmp_path):
    write_audio(tmp_path / "Actor_01" / "03-01-05-02-01-01-01.wav")
    write_audio(tmp_path / "Actor_02" / "03-01-02-01-02-02-02.flac", seed=1)
    write_audio(tmp_path / "Actor_02" / "03-02-03-01-01-01-02.wav", seed=2)  # song
    write_audio(tmp_path / "Actor_02" / "03-01-09-01-01-01-02.wav", seed=3)  # no emotion 09
    result = scan_corpus("ravdess", tmp_path)
    first, second = result.utterances
    assert (first.label, first.speaker, first.fields["gender"]) == ("angry", "Actor_01", "male")
    assert first.fields["intensity"] == "strong"
    assert first.fields["text"] == "Kids are talking by the door"
    assert (second.label, second.fields["gender"], second.fields["statement"]) == (
        "calm",
        "female",
        "02",
    )
    assert any("1 song files" in p for p in result.problems)
    assert any("03-01-09-01-01-01-02.wav" in p for p in result.problems)
    with_song = scan_corpus("ravdess", tmp_path, include_song=True).utterances
    assert [u.fields["vocal_channel"] for u in with_song] == ["speech", "speech", "song"]


IEMOCAP_HEADER = "% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]\n\n"


def _iemocap_block(start, end, uid, code, vad="2.5000, 2.5000, 2.5000"):
    return (
        f"[{start} - {end}]\t{uid}\t{code}\t[{vad}]\n"
        f"C-E1:\tNeutral state;\t()\nA-E1:\tval 3; act 2; dom  2;\t()\n\n"
    )


@pytest.fixture
def iemocap_root(tmp_path):
    """Two sessions in the official layout: one utterance per kind of problem."""
    root = tmp_path / "IEMOCAP_full_release"
    evaluation = root / "Session1" / "dialog" / "EmoEvaluation"
    evaluation.mkdir(parents=True)
    (evaluation / "Ses01F_impro01.txt").write_text(
        IEMOCAP_HEADER
        + _iemocap_block("6.2901", "8.2357", "Ses01F_impro01_F000", "neu")
        + _iemocap_block(
            "10.0100", "11.3925", "Ses01F_impro01_M003", "exc", "3.5000, 3.0000, 2.5000"
        )
        + _iemocap_block("12.0000", "13.0000", "Ses01F_impro01_M004", "xxx")
        + _iemocap_block("14.0000", "15.0000", "Ses01F_impro01_F005", "zzz")  # unknown code
        + _iemocap_block("16.0000", "17.0000", "Ses01F_impro01_F006", "ang")  # no audio
    )
    evaluation_2 = root / "Session2" / "dialog" / "EmoEvaluation"
    evaluation_2.mkdir(parents=True)
    (evaluation_2 / "Ses02M_script01_1.txt").write_text(
        IEMOCAP_HEADER + _iemocap_block("1.0000", "2.5000", "Ses02M_script01_1_F010", "sad")
    )
    (evaluation / "Categorical").mkdir()  # official sub-folders are not label files
    wav = root / "Session1" / "sentences" / "wav" / "Ses01F_impro01"
    for i, uid in enumerate(["Ses01F_impro01_F000", "Ses01F_impro01_M003", "Ses01F_impro01_M004"]):
        write_audio(wav / f"{uid}.wav", seed=i)
    write_audio(root / "Session2/sentences/wav/Ses02M_script01_1/Ses02M_script01_1_F010.flac")
    return root


def test_iemocap_labels_speakers_fields_and_problems(iemocap_root):
    result = scan_corpus("iemocap", iemocap_root)
    by_id = {u.id: u for u in result.utterances}
    assert sorted(by_id) == [
        "Ses01F_impro01_F000", "Ses01F_impro01_M003", "Ses01F_impro01_M004", "Ses02M_script01_1_F010"
    ]  # fmt: skip
    excited = by_id["Ses01F_impro01_M003"]
    assert (excited.label, excited.speaker) == ("excited", "Ses01M")
    assert excited.fields == {
        "emotion_code": "exc", "session": "Ses01", "gender": "male", "dialog": "Ses01F_impro01",
        "mode": "improvised", "start": "10.0100", "end": "11.3925", "valence": "3.5000",
        "activation": "3.0000", "dominance": "2.5000",
    }  # fmt: skip
    assert by_id["Ses01F_impro01_M004"].label == "unknown"
    scripted = by_id["Ses02M_script01_1_F010"]
    assert (scripted.speaker, scripted.fields["mode"], scripted.label) == (
        "Ses02F",
        "scripted",
        "sad",
    )
    assert scripted.path.endswith(".flac")
    text = "\n".join(result.problems)
    assert "Ses01F_impro01_F005 code 'zzz'" in text
    assert "without audio" in text and "Ses01F_impro01_F006" in text
    assert "Ses01F_impro01.txt:" in text  # where the missing one is labelled


def test_iemocap_without_label_files_is_refused(tmp_path):
    write_audio(tmp_path / "Session1/sentences/wav/Ses01F_impro01/Ses01F_impro01_F000.wav")
    with pytest.raises(CorpusError, match="no label files"):
        scan_corpus("iemocap", tmp_path)


def test_tess_folders_words_and_conflicts(tmp_path):
    names = [
        "OAF_angry/OAF_back_angry.wav",
        "OAF_Pleasant_surprise/OAF_dog_ps.flac",
        "YAF_pleasant_surprised/YAF_back_ps.wav",
        "OAF_Sad/OAF_bean_happy.wav",  # contradicts its folder: the folder wins
        "OAF_angry/OAF_take_meh.wav",  # unknown emotion word: the folder gives it
        "flat/YAF_kite_meh.wav",  # unknown emotion word, no emotion folder
        "notes.wav",
    ]
    for i, name in enumerate(names):
        write_audio(tmp_path / name, seed=i)
    result = scan_corpus("tess", tmp_path)
    got = {u.id: (u.label, u.speaker, u.fields["word"]) for u in result.utterances}
    assert got == {
        "OAF_back_angry": ("angry", "OAF", "back"),
        "OAF_dog_ps": ("surprised", "OAF", "dog"),
        "YAF_back_ps": ("surprised", "YAF", "back"),
        "OAF_bean_sad": ("sad", "OAF", "bean"),
        "OAF_take_angry": ("angry", "OAF", "take"),
    }
    text = "\n".join(result.problems)
    assert "2 files whose name is malformed or contradicts their folder" in text
    assert "OAF_Sad/OAF_bean_happy.wav (name: OAF/happy)" in text
    assert "OAF_angry/OAF_take_meh.wav (name: OAF/?)" in text
    assert "YAF_kite_meh.wav" in text and "notes.wav" in text


TESS_EMOTIONS = ("angry", "disgust", "fear", "happy", "neutral", "ps", "sad")
TESS_FOLDERS = {"ps": "Pleasant_surprise", "fear": "Fear"}


def test_tess_complete_release_with_the_misnamed_file_yields_2800(tmp_path):
    """The official release: 2 speakers x 7 emotions x 200 words, one file named
    ``OAF_neutral/OA_bite_neutral.wav``; every file is found, that one with a warning."""
    silence = np.zeros(16, dtype=np.float32)
    words = [f"w{i:03d}" for i in range(199)] + ["bite"]
    for speaker in ("OAF", "YAF"):
        for emotion in TESS_EMOTIONS:
            folder = tmp_path / f"{speaker}_{TESS_FOLDERS.get(emotion, emotion)}"
            folder.mkdir()
            for word in words:
                name = f"{speaker}_{word}_{emotion}"
                if (speaker, word, emotion) == ("OAF", "bite", "neutral"):
                    name = "OA_bite_neutral"
                soundfile.write(folder / f"{name}.wav", silence, 16000)
    result = scan_corpus("tess", tmp_path)
    assert len(result.utterances) == 2800
    assert Counter(u.label for u in result.utterances) == Counter(
        {label: 400 for label in ("angry", "disgust", "fearful", "happy", "neutral", "surprised",
                                  "sad")}
    )  # fmt: skip
    assert Counter(u.speaker for u in result.utterances) == {"OAF": 1400, "YAF": 1400}
    bite = next(u for u in result.utterances if u.path.endswith("OA_bite_neutral.wav"))
    assert (bite.id, bite.speaker, bite.label, bite.fields["word"]) == (
        "OAF_bite_neutral", "OAF", "neutral", "bite"
    )  # fmt: skip
    assert result.problems == [
        "1 files whose name is malformed or contradicts their folder (speaker and emotion taken "
        "from the folder): OAF_neutral/OA_bite_neutral.wav (name: ?/neutral)"
    ]


def test_ased_names_folders_and_speaker_gender(tmp_path):
    names = [
        "01Neutral/n1-01-01-01-03.wav",
        "01Neutral/n1-06-02-01-03.flac",
        "04Sad/S4-04-02-01-03.wav",  # upper-case letter, as in the release
        "04Sad/s4-01-02-02-03.wav",  # gender code differs from the speaker's other files
        "05Angry/h3-02-01-02-50.wav",  # name says happy, folder says angry
        "02Fearful/f3-02-01-02-50.wav",  # letter and folder number disagree
        "02Fearful/f2-02-01-03-50.wav",  # no gender 03
        "02Fearful/readme.wav",
    ]
    for i, name in enumerate(names):
        write_audio(tmp_path / name, seed=i)
    result = scan_corpus("ased", tmp_path)
    got = {u.id: (u.label, u.speaker, u.fields["gender"]) for u in result.utterances}
    assert got == {
        "n1-01-01-01-03": ("neutral", "S03", "female"),
        "n1-06-02-01-03": ("neutral", "S03", "female"),
        "S4-04-02-01-03": ("sad", "S03", "female"),
        "s4-01-02-02-03": ("sad", "S03", "female"),
        "h3-02-01-02-50": ("angry", "S50", "male"),
    }
    first = result.utterances[0]
    assert first.fields == {
        "emotion_code": "n1", "sentence": "01", "repetition": "1", "gender": "female"
    }  # fmt: skip
    text = "\n".join(result.problems)
    assert "1 files whose gender code differs" in text and "s4-01-02-02-03.wav" in text
    assert "05Angry/h3-02-01-02-50.wav (happy -> angry)" in text
    assert "f3-02-01-02-50.wav" in text and "f2-02-01-03-50.wav" in text
    assert "readme.wav" in text


def test_urdu_speakers_fields_and_corpus_unit(tmp_path):
    names = ["Angry/SM1_F10_A010.wav", "Happy/SF12_F3_H003.flac", "Sad/SM1_F4_N0100.wav",
             "Neutral/talk.wav"]  # fmt: skip
    for i, name in enumerate(names):
        write_audio(tmp_path / name, seed=i)
    result = scan_corpus("urdu", tmp_path)
    got = {u.id: (u.label, u.speaker) for u in result.utterances}
    assert got == {
        "SM1_F10_A010": ("angry", "SM1"),
        "SF12_F3_H003": ("happy", "SF12"),
        "SM1_F4_N0100": ("sad", "SM1"),  # the folder wins
    }
    assert result.utterances[0].fields == {
        "emotion_code": "A", "gender": "male", "file_number": "10", "corpus": "urdu"
    }  # fmt: skip
    text = "\n".join(result.problems)
    assert "Sad/SM1_F4_N0100.wav (neutral -> sad)" in text and "talk.wav" in text


def test_turev_codes_words_and_spaces_in_folders(tmp_path):
    names = ["Sound Source/Angry/1157_kz_acik.wav", "Sound Source/Calm/1234_sk_çay.flac",
             "Sound Source/Sad/1234_xx_bugu.wav", "Sound Source/Happy/1234_hl_deniz.wav"]  # fmt: skip
    for i, name in enumerate(names):
        write_audio(tmp_path / name, seed=i)
    result = scan_corpus("turev", tmp_path)
    got = {u.id: (u.label, u.speaker, u.fields["word"]) for u in result.utterances}
    assert got == {
        "1157_kz_acik": ("angry", "S1157", "acik"),
        "1234_sk_çay": ("calm", "S1234", "çay"),
        "1234_hl_deniz": ("happy", "S1234", "deniz"),  # the folder wins over hl (sad)
    }
    text = "\n".join(result.problems)
    assert "1234_xx_bugu.wav (xx)" in text and "(sad -> happy)" in text
    from sertk.corpora import default_label_map

    labels = default_label_map("turev", result.utterances).labels
    assert labels == ("calm", "happy", "angry")


NEMO_HEADER = "file_id\temotion\traw_text\tnormalized_text\tspeaker_id\tgender\tage\n"


def test_nemo_table_labels_text_and_other_extension(tmp_path):
    """``data.tsv`` names ``.wav`` files; the copies on disk are FLAC: matched by name."""
    rows = [
        ("SB0_anger_0.wav", "anger", "Ala ma kota.", "ala ma kota", "SB0", "male", "24"),
        ("SB0_surprised_1.wav", "surprised", "Co?", "co", "SB0", "male", "24"),
        ("SK1_fear_2.wav", "fear", "Nie!", "nie", "SK1", "female", "30"),
        ("SK1_sadness_3.wav", "happiness", "Tak.", "tak", "SK1", "female", "30"),  # contradicts
        ("SK1_neutral_4.wav", "neutral", "Brak.", "brak", "SK1", "female", "30"),  # no audio
        ("SK1_pain_5.wav", "pain", "Boli.", "boli", "SK1", "female", "30"),
        ("SK1_anger_6.wav", "", "", "", "SK1", "female", "30"),  # incomplete row
    ]
    (tmp_path / "data.tsv").write_text(
        NEMO_HEADER + "".join("\t".join(row) + "\n" for row in rows), encoding="utf-8"
    )
    for i, stem in enumerate(["SB0_anger_0", "SB0_surprised_1", "SK1_fear_2", "SK1_sadness_3",
                              "SK1_pain_5", "SB0_happiness_7"]):  # fmt: skip
        write_audio(tmp_path / "samples" / f"{stem}.flac", seed=i)
    result = scan_corpus("nemo", tmp_path)
    got = {u.id: (u.label, u.speaker) for u in result.utterances}
    assert got == {
        "SB0_anger_0": ("angry", "SB0"),
        "SB0_surprised_1": ("surprised", "SB0"),
        "SK1_fear_2": ("fearful", "SK1"),
        "SK1_sadness_3": ("happy", "SK1"),  # the table wins
        "SB0_happiness_7": ("happy", "SB0"),  # not in the table: from its name
    }
    first = result.utterances[0]
    assert first.path.endswith("SB0_anger_0.flac")
    assert first.fields == {
        "emotion_code": "anger", "text": "Ala ma kota.", "normalized_text": "ala ma kota",
        "gender": "male", "age": "24",
    }  # fmt: skip
    by_id = {u.id: u for u in result.utterances}
    assert by_id["SB0_happiness_7"].fields == {"emotion_code": "happiness"}
    text = "\n".join(result.problems)
    assert "1 files not in data.tsv (labelled from their names): SB0_happiness_7.flac" in text
    assert "SK1_sadness_3.flac (table: happiness)" in text
    assert "SK1_pain_5.flac (pain)" in text
    assert "rows of data.tsv without an audio file (skipped): SK1_neutral_4.wav" in text
    assert "without file_id, emotion or speaker_id (skipped): line 8" in text


def test_nemo_without_table_uses_names_and_bad_table_is_refused(tmp_path):
    write_audio(tmp_path / "samples" / "SB0_anger_0.wav")
    result = scan_corpus("nemo", tmp_path)
    assert [(u.label, u.speaker) for u in result.utterances] == [("angry", "SB0")]
    assert "no data.tsv" in result.problems[0]
    (tmp_path / "data.tsv").write_text("file\temotion\n")
    with pytest.raises(CorpusError, match="lacks column.*file_id, speaker_id"):
        scan_corpus("nemo", tmp_path)


def test_cremad_codes_and_optional_demographics(tmp_path):
    for i, name in enumerate(["1001_DFA_ANG_XX.wav", "1002_IEO_HAP_HI.wav", "1001_DFA_XYZ_XX.wav"]):
        write_audio(tmp_path / "AudioWAV" / name, seed=i)
    plain = scan_corpus("cremad", tmp_path)
    assert [(u.id, u.label, u.speaker) for u in plain.utterances] == [
        ("1001_DFA_ANG_XX", "angry", "1001"),
        ("1002_IEO_HAP_HI", "happy", "1002"),
    ]
    assert "gender" not in plain.utterances[0].fields
    assert plain.utterances[1].fields["intensity"] == "high"
    assert plain.utterances[0].fields["text"] == "Don't forget a jacket"
    assert any("1001_DFA_XYZ_XX.wav" in p for p in plain.problems)
    (tmp_path / "VideoDemographics.csv").write_text(
        "ActorID,Age,Sex,Race,Ethnicity\n1001,51,Male,Caucasian,Not Hispanic\n1002,21,Female,Caucasian,Not Hispanic\n"
    )
    rich = scan_corpus("cremad", tmp_path).utterances
    assert [(u.fields["gender"], u.fields["age"]) for u in rich] == [
        ("male", "51"),
        ("female", "21"),
    ]


def test_generic_csv_synonyms_speakers_ids_and_missing_files(tmp_path):
    write_audio(tmp_path / "clips" / "a.wav")
    write_audio(tmp_path / "clips" / "b.wav", seed=1)
    (tmp_path / "data.csv").write_text(
        "path,label,speaker,channel\n"
        "clips/a.wav,Anger,alice,left\n"
        "clips/b.wav,contempt,bob,\n"
        "clips/gone.wav,sad,bob,\n"
        ",happy,bob,\n"
    )
    result = scan_corpus("generic", tmp_path / "data.csv")
    a, b = result.utterances
    assert (a.id, a.label, a.speaker, a.path) == (
        "clips/a",
        "angry",
        "alice",
        str(tmp_path / "clips/a.wav"),
    )
    assert a.fields == {"emotion_code": "Anger", "channel": "left"}
    assert b.label == "contempt"
    text = "\n".join(result.problems)
    assert "clips/gone.wav (line 4)" in text and "line 5" in text


def test_generic_csv_without_label_column_is_refused(tmp_path):
    (tmp_path / "data.csv").write_text("path,emotion\na.wav,happy\n")
    with pytest.raises(CorpusError, match="lacks column.*label"):
        scan_corpus("generic", tmp_path / "data.csv")


def test_generic_folders_with_speaker_pattern(tmp_path):
    for i, name in enumerate(["angry/spk1_x.wav", "Happiness/spk2_y.wav", "happy/nospeaker.wav"]):
        write_audio(tmp_path / name, seed=i)
    result = scan_corpus("generic", tmp_path, speaker_pattern=r"(?P<speaker>spk\d+)_")
    assert [(u.id, u.label, u.speaker) for u in result.utterances] == [
        ("Happiness/spk2_y", "happy", "spk2"),
        ("angry/spk1_x", "angry", "spk1"),
    ]
    assert any("happy/nospeaker.wav" in p for p in result.problems)


def test_generic_folders_without_speakers_warn_that_folds_are_impossible(tmp_path):
    write_audio(tmp_path / "sad" / "a.wav")
    write_audio(tmp_path / "sad" / "b.wav", seed=1)
    result = scan_corpus("generic", tmp_path)
    assert [u.speaker for u in result.utterances] == ["sad/a", "sad/b"]
    assert any("speaker-independent folds are impossible" in p for p in result.problems)
    with pytest.raises(ConfigError, match="not a valid regex"):
        scan_corpus("generic", tmp_path, speaker_pattern="(")


def test_scan_refuses_missing_root_empty_dir_unknown_corpus_and_option(tmp_path):
    with pytest.raises(CorpusError, match="does not exist"):
        scan_corpus("emodb", tmp_path / "missing")
    with pytest.raises(CorpusError, match="no usable emodb utterances.*wav/03a01Fa"):
        scan_corpus("emodb", tmp_path)
    with pytest.raises(ConfigError, match="unknown corpus 'msp'"):
        scan_corpus("msp", tmp_path)
    with pytest.raises(ConfigError, match="no option.*include_song"):
        scan_corpus("emodb", tmp_path, include_song=True)


def test_scan_reports_duplicate_ids_and_keeps_one(tmp_path):
    write_audio(tmp_path / "wav" / "03a01Fa.flac")
    write_audio(tmp_path / "wav" / "03a01Fa.wav", seed=1)
    result = scan_corpus("emodb", tmp_path)
    assert [u.path for u in result.utterances] == [str(tmp_path / "wav" / "03a01Fa.flac")]
    assert any("duplicate id '03a01Fa'" in p for p in result.problems)


def test_check_audio_drops_corrupt_and_empty_files(tmp_path):
    write_audio(tmp_path / "wav" / "03a01Fa.wav")
    (tmp_path / "wav" / "03a01Wa.wav").write_bytes(b"RIFF not really a wave file")
    soundfile.write(tmp_path / "wav" / "03a01Ta.wav", np.zeros(0, np.float32), 16000)
    assert len(scan_corpus("emodb", tmp_path).utterances) == 3
    result = scan_corpus("emodb", tmp_path, check_audio=True)
    assert [u.id for u in result.utterances] == ["03a01Fa"]
    text = "\n".join(result.problems)
    assert "unreadable audio" in text and "03a01Wa.wav" in text
    assert "empty audio" in text and "03a01Ta.wav" in text


def test_every_adapter_labels_are_canonical():
    from sertk.corpora import ased, cremad, emodb, iemocap, ravdess, tess, turev, urdu

    for module in (cremad, emodb, iemocap, ravdess, tess, ased, urdu, turev):
        assert set(module.EMOTIONS.values()) <= set(CANONICAL_LABELS), module.__name__
    assert set(CORPORA) == {
        "iemocap", "ravdess", "emodb", "tess", "cremad", "ased", "urdu", "turev", "nemo", "generic"
    }  # fmt: skip


# --- LabelMap --------------------------------------------------------------------------------


def test_presets_and_apply_relabels_and_counts_drops():
    label_map = LabelMap.preset("iemocap4")
    items = [
        utterance("a", "/x/a.wav", "excited"),
        utterance("b", "/x/b.wav", "frustrated"),
        utterance("c", "/x/c.wav", "angry"),
        utterance("d", "/x/d.wav", "frustrated"),
        utterance("e", "/x/e.wav", "unknown"),
    ]
    kept, dropped = label_map.apply(items)
    assert [(u.id, u.label) for u in kept] == [("a", "happy"), ("c", "angry")]
    assert kept[0].fields["source_label"] == "excited" and "source_label" not in kept[1].fields
    assert dropped == {"frustrated": 2, "unknown": 1}
    assert [label_map.encode(u.label) for u in kept] == [1, 2]
    assert label_map.decode(3) == "sad"


def test_preset_contents():
    assert LabelMap.preset("ravdess8").num_classes == 8
    assert set(LabelMap.preset("emodb7").labels) == {
        "neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom"
    }  # fmt: skip
    merge = LabelMap.preset("merge_calm")
    assert merge.num_classes == 7 and merge.target("calm") == "neutral"
    common = LabelMap.preset("common")
    assert common.labels == ("neutral", "happy", "sad", "angry", "fearful", "disgust")
    assert common.target("calm") == "neutral"
    assert common.target("surprised") is None and common.target("boredom") is None


def test_shared_preset_maps_every_adapter_and_counts_what_it_cannot():
    from sertk.corpora import ased, cremad, emodb, iemocap, ravdess, tess, turev, urdu

    shared = LabelMap.preset("shared")
    assert shared.labels == (
        "neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"
    )  # fmt: skip
    unmapped = set()
    for module in (cremad, emodb, iemocap, ravdess, tess, ased, urdu, turev):
        unmapped |= {label for label in module.EMOTIONS.values() if shared.target(label) is None}
    assert unmapped == {"boredom", "frustrated", "other", "unknown"}
    assert shared.target("calm") == "neutral" and shared.target("excited") == "happy"
    items = [utterance(str(i), f"/x/{i}.wav", label) for i, label in
             enumerate(["calm", "boredom", "sad", "boredom", "excited"])]  # fmt: skip
    kept, dropped = shared.apply(items)
    assert [u.label for u in kept] == ["neutral", "sad", "happy"] and dropped == {"boredom": 2}


def test_label_map_dict_round_trip_through_json():
    for name in ("iemocap4", "common"):
        label_map = LabelMap.preset(name)
        again = LabelMap.from_dict(json.loads(json.dumps(label_map.to_dict())))
        assert again == label_map and again.name == name and hash(again) == hash(label_map)
    identity = LabelMap.from_labels(["pain", "neutral"])
    assert identity.encode("neutral") == 1 and identity.target("pain") == "pain"


def test_default_label_map_per_corpus():
    from sertk.corpora import cremad, default_label_map, emodb, ravdess, tess

    assert default_label_map("iemocap", []).name == "iemocap4"
    for module in (cremad, emodb, ravdess, tess):  # the default keeps every emotion of the corpus
        label_map = default_label_map(module.ADAPTER.name, [])
        assert all(label_map.target(label) == label for label in module.EMOTIONS.values())
    found = [utterance("a", "/x/a.wav", "pain"), utterance("b", "/x/b.wav", "sad")]
    assert default_label_map("generic", found).labels == ("sad", "pain")
    with pytest.raises(CorpusError, match="no utterances"):
        default_label_map("generic", [])


def test_label_map_errors():
    with pytest.raises(ConfigError, match="unknown label preset 'iemocap5'"):
        LabelMap.preset("iemocap5")
    with pytest.raises(ConfigError, match="not among its labels"):
        LabelMap(("happy",), {"excited": "joy"})
    with pytest.raises(ConfigError, match="repeated: happy"):
        LabelMap.from_labels(["happy", "sad", "happy"])
    with pytest.raises(ConfigError, match="needs 'labels'"):
        LabelMap.from_dict({"labels": ["a"]})
    with pytest.raises(CorpusError, match="'excited' is not one of"):
        LabelMap.preset("iemocap4").encode("excited")
    with pytest.raises(CorpusError, match="out of range"):
        LabelMap.preset("iemocap4").decode(4)


# --- sertk corpus ----------------------------------------------------------------------------


def test_cli_scan_writes_manifest_prints_tables_and_warnings(tmp_path, capsys):
    for i, name in enumerate(["03a01Fa.wav", "03a02Wa.wav", "08a01La.wav", "03a01Xa.wav"]):
        write_audio(tmp_path / "emodb" / "wav" / name, seed=i)
    out_path = tmp_path / "out" / "emodb.csv"
    code = main(["corpus", "scan", "emodb", str(tmp_path / "emodb"), "-o", str(out_path)])
    captured = capsys.readouterr()
    assert code == 0
    assert [u.label for u in read_manifest(out_path)] == ["happy", "angry", "boredom"]
    assert "3 utterances, 2 speakers" in captured.out
    assert "boredom" in captured.out and "03 2" in captured.out
    assert "warning: 1 problem(s)" in captured.err and "03a01Xa.wav" in captured.err

    code = main(
        [
            "corpus",
            "scan",
            "emodb",
            str(tmp_path / "emodb"),
            "-o",
            str(out_path),
            "--labels",
            "common",
        ]
    )
    captured = capsys.readouterr()
    assert code == 0 and "dropped 1 (boredom 1)" in captured.out
    assert [u.label for u in read_manifest(out_path)] == ["happy", "angry"]


def test_cli_scan_reports_merged_and_dropped_labels_of_a_preset(tmp_path, capsys):
    write_audio(tmp_path / "Actor_01" / "03-01-02-01-01-01-01.wav")  # calm
    write_audio(tmp_path / "Actor_01" / "03-01-05-01-01-01-01.wav", seed=1)  # angry
    out = tmp_path / "m.csv"
    assert main(["corpus", "scan", "ravdess", str(tmp_path), "-o", str(out), "--labels",
                 "shared"]) == 0  # fmt: skip
    assert "merged 1 (calm -> neutral 1)" in capsys.readouterr().out
    assert [u.label for u in read_manifest(out)] == ["neutral", "angry"]


def test_cli_scan_fails_on_missing_root_and_empty_dir(tmp_path, capsys):
    out_path = tmp_path / "m.csv"
    assert main(["corpus", "scan", "ravdess", str(tmp_path / "nope"), "-o", str(out_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["corpus", "scan", "ravdess", str(tmp_path / "empty"), "-o", str(out_path)]) == 2
    assert "no usable ravdess utterances" in capsys.readouterr().err
    assert not out_path.exists()


def test_cli_list_shows_adapters_and_presets_without_importing_torch():
    code = (
        "import sys; from sertk.cli import main; rc = main(['corpus', 'list']); "
        "assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in (*CORPORA, "iemocap4", "merge_calm", "common"):
        assert name in result.stdout
    assert "happy(+excited)" in result.stdout


def test_cli_scan_does_not_import_torch(tmp_path):
    write_audio(tmp_path / "wav" / "03a01Fa.wav")
    code = (
        "import sys; from sertk.cli import main; "
        f"rc = main(['corpus', 'scan', 'emodb', {str(tmp_path)!r}, '-o', {str(tmp_path / 'm.csv')!r}, "
        "'--check-audio']); assert 'torch' not in sys.modules, 'torch imported'; sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --- the real corpora (skipped when ../shared/corpora is absent) -------------------------------

# the reference manifests spell emotions as the corpus documentation does
REFERENCE_NAMES = {"anger": "angry", "happiness": "happy", "sadness": "sad", "fear": "fearful"}


def _reference_counts(folder: Path) -> tuple[Counter, Counter, set[str]]:
    with (folder / "manifest.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    labels = Counter(REFERENCE_NAMES.get(r["emotion"], r["emotion"]) for r in rows)
    speakers = Counter(r["speaker"] for r in rows)
    return labels, speakers, {str(folder / r["path"]) for r in rows}


# files, speakers and the problems a scan reports (the official releases' own quirks)
REAL_CORPORA = {
    "emodb": (535, 10, []),
    "ravdess": (1440, 24, []),
    "ased": (2474, 65, ["5 files whose gender code differs from their speaker's other files"]),
    "urdu": (400, 29, []),
    "turev": (1735, 6, []),
}


@pytest.mark.corpora
@pytest.mark.parametrize("name", sorted(REAL_CORPORA))
def test_real_corpus_scan_gives_the_counts_of_its_reference_manifest(name, tmp_path, capsys):
    """``sertk corpus scan`` on the shared copy: the same files, and per label and per speaker
    the same counts as the corpus's reference ``manifest.csv``."""
    folder = CORPORA_ROOT / name
    if not (folder / "manifest.csv").is_file():
        pytest.skip(f"{folder} is absent")
    files, speakers, problems = REAL_CORPORA[name]
    out = tmp_path / f"{name}.csv"
    assert main(["corpus", "scan", name, str(folder), "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert f"{name}: {files} utterances, {speakers} speakers" in captured.out
    for problem in problems:
        assert problem in captured.err
    if not problems:
        assert "problem" not in captured.err
    scanned = read_manifest(out)
    labels, per_speaker, paths = _reference_counts(folder)
    assert len(scanned) == files == sum(labels.values())
    assert Counter(u.label for u in scanned) == labels
    assert Counter(u.speaker for u in scanned) == per_speaker
    assert {u.path for u in scanned} == {os.path.abspath(p) for p in paths}


@pytest.mark.corpora
def test_real_corpora_map_onto_the_shared_labels_and_report_the_rest(tmp_path, capsys):
    expected = {
        "emodb": ("dropped 81 (boredom 81)", 454),
        "ravdess": ("merged 192 (calm -> neutral 192)", 1440),
        "turev": ("merged 408 (calm -> neutral 408)", 1735),
        "ased": (None, 2474),
        "urdu": (None, 400),
    }
    shared = LabelMap.preset("shared").labels
    for name, (line, kept) in expected.items():
        folder = CORPORA_ROOT / name
        if not folder.is_dir():
            pytest.skip(f"{folder} is absent")
        out = tmp_path / f"{name}.csv"
        assert (
            main(["corpus", "scan", name, str(folder), "-o", str(out), "--labels", "shared"]) == 0
        )
        text = capsys.readouterr().out
        assert line is None or f"labels: preset shared {line}" in text
        scanned = read_manifest(out)
        assert len(scanned) == kept and {u.label for u in scanned} <= set(shared)


@pytest.mark.corpora
def test_real_emodb_speaker_table_matches_reference():
    folder = CORPORA_ROOT / "emodb"
    if not (folder / "manifest.csv").is_file():
        pytest.skip(f"{folder} is absent")
    with (folder / "manifest.csv").open(newline="") as handle:
        reference = {Path(r["path"]).stem: (r["gender"], r["age"]) for r in csv.DictReader(handle)}
    for u in scan_corpus("emodb", folder).utterances:
        assert (u.fields["gender"], u.fields["age"]) == reference[u.id]
