"""``sertk predict``: formats, folders, failing files, timelines, plots and cold-start imports."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
from test_recognizer import LABELS, RATE, make_bundle, recording, tone

from sertk.cli import main
from sertk.cli.predict import plot_paths

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle") / "gru")


@pytest.fixture
def clips(tmp_path):
    """Three short clips in ``clips/`` (one in a sub-folder) and a long recording."""
    folder = tmp_path / "clips"
    (folder / "sub").mkdir(parents=True)
    paths = [folder / "a.wav", folder / "b.flac", folder / "sub" / "c.wav"]
    for i, path in enumerate(paths):
        sf.write(path, tone(1.0 + 0.5 * i, 200 + 100 * i, seed=i), RATE)
    (folder / "notes.txt").write_text("not audio")
    sf.write(tmp_path / "long.wav", recording()[0], RATE)
    return folder


def run(capsys, *args):
    code = main(["predict", *map(str, args), "--no-progress"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_table_is_aligned_and_lists_every_file(capsys, bundle, clips):
    code, out, err = run(capsys, clips / "a.wav", clips / "b.flac", "--model", bundle)
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert lines[0].split() == ["file", "label", "conf", "top", "probabilities"]
    assert [line.split()[0] for line in lines[1:]] == [str(clips / "a.wav"), str(clips / "b.flac")]
    label_column = {line.index(line.split()[1]) for line in lines}
    assert len(label_column) == 1  # labels start in one column
    assert all(line.split()[1] in LABELS for line in lines[1:])


def test_json_and_csv_are_machine_readable(capsys, bundle, clips):
    code, out, _ = run(capsys, clips, "--model", bundle, "--format", "json")
    records = json.loads(out)
    assert code == 0 and [r["file"] for r in records] == [
        str(clips / "a.wav"),
        str(clips / "b.flac"),
    ]
    assert records[0]["label"] in LABELS and list(records[0]["probabilities"]) == LABELS
    assert records[1]["duration"] == pytest.approx(1.5)
    code, out, _ = run(capsys, clips, "--model", bundle, "--format", "csv", "--recursive")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and len(rows) == 3 and rows[2]["file"] == str(clips / "sub" / "c.wav")
    assert list(rows[0]) == ["file", "label", "confidence", "speech", *LABELS, "model_sha256"]
    assert rows[0]["model_sha256"] == records[0]["model_sha256"] != ""
    assert sum(float(rows[0][label]) for label in LABELS) == pytest.approx(1.0, abs=1e-4)
    # the same file gives the same answer in every format
    assert float(rows[1]["confidence"]) == pytest.approx(records[1]["confidence"], abs=1e-6)


def test_a_failing_file_is_reported_and_the_others_still_printed(capsys, bundle, clips, tmp_path):
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00")
    args = [clips / "a.wav", broken, tmp_path / "missing.flac", clips / "b.flac"]
    code, out, err = run(capsys, *args, "--model", bundle, "--format", "json")
    assert code == 1
    assert [r["file"] for r in json.loads(out)] == [str(clips / "a.wav"), str(clips / "b.flac")]
    assert f"{broken}: truncated WAV file" in err
    assert f"{tmp_path / 'missing.flac'}: no such file" in err
    assert err.count("sertk predict:") == 2


def test_a_folder_without_audio_is_reported(capsys, bundle, clips, tmp_path):
    (tmp_path / "empty").mkdir()
    code, out, err = run(capsys, tmp_path / "empty", clips / "a.wav", "--model", bundle)
    assert code == 1 and "no audio files" in err and "--recursive" in err
    assert str(clips / "a.wav") in out
    code, _, err = run(capsys, tmp_path / "empty", "--model", bundle)
    assert code == 2 and "no audio files to predict" in err


def test_timeline_in_every_format(capsys, bundle, clips, tmp_path):
    long = tmp_path / "long.wav"
    code, out, _ = run(capsys, long, "--model", bundle, "--timeline", "--hop", "0.5")
    assert code == 0 and out.startswith(f"{long}  (15.00 s)")
    assert "silence" in out and any(label in out for label in LABELS)
    code, out, _ = run(capsys, long, "--model", bundle, "--timeline", "--format", "json",
                       "--smooth", "3")  # fmt: skip
    (record,) = json.loads(out)
    assert record["file"] == str(long) and record["smooth"] == 3.0
    kinds = [segment["speech"] for segment in record["segments"]]
    assert kinds[0] is False and True in kinds
    code, out, _ = run(capsys, long, "--model", bundle, "--timeline", "--format", "csv",
                       "--window", "2", "--smooth", "1.5", "--vad-floor", "-60",
                       "--vad-margin", "6")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows[0]["label"] == "silence" and rows[0]["neutral"] == ""
    assert list(rows[0]) == ["file", "start", "end", "label", "confidence", "speech", *LABELS,
                             "model_sha256"]  # fmt: skip
    assert float(rows[-1]["end"]) == pytest.approx(15.0)


def test_the_old_smoothing_still_works_with_a_deprecation_message(capsys, bundle, clips, tmp_path):
    long = tmp_path / "long.wav"
    args = [long, "--model", bundle, "--timeline", "--format", "json", "--hop", "0.5"]
    _, new, err = run(capsys, *args, "--smooth", "1.5")
    assert err == ""
    for old in ("3", "median"):
        code, out, err = run(capsys, *args, "--smoothing", old)
        assert code == 0 and json.loads(out) == json.loads(new)  # 3 windows of 0.5 s: 1.5 s
        assert err.startswith(
            f"sertk predict: deprecated: --smoothing (a number of windows) is now --smooth "
            f"SECONDS; --smoothing {old} read as 1.5 s (3 windows every 0.5 s)"
        )
    code, _, err = run(capsys, *args, "--smooth", "2", "--smoothing", "3")
    assert code == 2 and "give --smooth (seconds) or the deprecated --smoothing, not both" in err


def png_title(path: Path) -> str:
    from PIL import Image

    with Image.open(path) as image:
        return image.info.get("Title", "")


def test_plot_one_file_and_several_says_where_and_names_file_and_model(
    capsys, bundle, clips, tmp_path
):
    one = tmp_path / "one.png"
    code, _, err = run(capsys, clips / "a.wav", "--model", bundle, "--plot", one)
    assert code == 0 and one.read_bytes()[:8] == PNG
    assert err == f"sertk predict: wrote {one}\n"
    assert png_title(one) == f"{clips / 'a.wav'} · model {bundle}"
    code, _, err = run(capsys, clips, "--model", bundle, "--plot", tmp_path / "out" / "many.png")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["many-a.png", "many-b.png"]
    assert err.splitlines() == [
        f"sertk predict: wrote {tmp_path / 'out' / name}" for name in ("many-a.png", "many-b.png")
    ]
    assert png_title(tmp_path / "out" / "many-b.png") == f"{clips / 'b.flac'} · model {bundle}"
    timeline = tmp_path / "timeline.png"
    code, _, err = run(capsys, tmp_path / "long.wav", "--timeline", "--plot", timeline)
    assert code == 0 and timeline.read_bytes()[:8] == PNG and str(timeline) in err
    assert png_title(timeline) == f"{tmp_path / 'long.wav'} · model default"


@pytest.mark.corpora
def test_a_timeline_keeps_a_speaker_35_db_quieter(capsys, corpora_dir, tmp_path):
    """The default model's timeline of two real speakers 35 dB apart: the quiet one is speech
    with an emotion (the rule before this, relative to the loudest frame, made it silence)."""
    from test_audio import quiet_speaker_recording

    recording, _, start, end = quiet_speaker_recording(corpora_dir)
    sf.write(tmp_path / "two.wav", recording, RATE)
    code, out, _ = run(capsys, tmp_path / "two.wav", "--timeline", "--format", "json")
    assert code == 0
    (record,) = json.loads(out)
    speech = [s for s in record["segments"] if s["speech"]]
    assert [s["label"] for s in record["segments"]][0] == "silence"
    heard = sum(max(0.0, min(s["end"], end) - max(s["start"], start)) for s in speech)
    assert heard > 0.85 * (end - start)  # the quiet speaker is speech, labelled with emotions
    assert all(s["label"] != "silence" for s in speech)


def test_plot_names_for_several_files_stay_distinct(tmp_path):
    files = [tmp_path / "a" / "x.wav", tmp_path / "b" / "x.flac", tmp_path / "y.wav"]
    names = [path.name for path in plot_paths(str(tmp_path / "out.png"), files).values()]
    assert names == ["out-x.png", "out-x-2.png", "out-y.png"]
    assert plot_paths("one.png", files[:1]) == {files[0]: Path("one.png")}


def test_output_file(capsys, bundle, clips, tmp_path):
    target = tmp_path / "predictions.csv"
    code, out, _ = run(capsys, clips, "--model", bundle, "--format", "csv", "--output", target)
    assert code == 0 and out == ""
    assert len(list(csv.DictReader(target.open()))) == 2


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--hop", "0"], "--hop must be a number of seconds > 0"),
        (["--window", "1", "--hop", "2"], "must not exceed --window"),
        (["--smoothing", "mode"], "smoothing must be"),
        (["--smooth", "-1"], "--smooth must be a number of seconds >= 0"),
        (["--vad-margin", "-1"], "--vad-margin must be a finite number in [0.0, 120.0], got -1.0"),
        (["--vad-floor", "3"], "--vad-floor must be a finite number in [-120.0, 0.0], got 3.0"),
        (["--device", "gpu0"], "--device must be a compute device (cpu, cuda or cuda:N)"),
        (["--batch-size", "0"], "--batch-size must be a positive integer"),
        (["--model", "/nonexistent/bundle"], "no model bundle at"),
    ],
)
def test_bad_options_fail_the_command(capsys, bundle, clips, options, message):
    args = [clips / "a.wav", "--model", bundle, "--timeline", *options]
    code, out, err = run(capsys, *args)
    assert code == 2 and message in err and out == ""


def test_speaker_adapted_bundle_needs_speaker(capsys, clips, tmp_path):
    adapted = make_bundle(tmp_path / "adapted", "mean_pool", speaker_adapted=True)
    code, _, err = run(capsys, clips, "--model", adapted)
    assert code == 2 and "--speaker" in err
    code, out, _ = run(capsys, clips, "--model", adapted, "--speaker", "s1", "--format", "json")
    assert code == 0 and len(json.loads(out)) == 2


def test_predict_imports_no_gui_server_or_ssl_modules(bundle, clips):
    """Cold start: a log-mel torch bundle needs neither transformers, Qt, fastapi nor matplotlib."""
    code = (
        "import sys\n"
        "from sertk.cli import main\n"
        f"assert main(['predict', {str(clips / 'a.wav')!r}, '--model', {str(bundle)!r}]) == 0\n"
        "heavy = [m for m in ('transformers', 'PySide6', 'fastapi', 'matplotlib', 'sklearn')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("\n") == 2  # header and one row


def test_help_lists_predict(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "--timeline" in capsys.readouterr().out
