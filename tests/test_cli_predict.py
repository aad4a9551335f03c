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
    assert list(rows[0]) == ["file", "label", "confidence", *LABELS]
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
                       "--smoothing", "median")  # fmt: skip
    (record,) = json.loads(out)
    assert record["file"] == str(long) and record["smoothing"] == "median"
    kinds = [segment["speech"] for segment in record["segments"]]
    assert kinds[0] is False and True in kinds
    code, out, _ = run(capsys, long, "--model", bundle, "--timeline", "--format", "csv",
                       "--window", "2", "--smoothing", "3")  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows[0]["label"] == "silence" and rows[0]["neutral"] == ""
    assert list(rows[0]) == ["file", "start", "end", "label", "confidence", "speech", *LABELS]
    assert float(rows[-1]["end"]) == pytest.approx(15.0)


def test_plot_one_file_and_several(capsys, bundle, clips, tmp_path):
    code, _, _ = run(capsys, clips / "a.wav", "--model", bundle, "--plot", tmp_path / "one.png")
    assert code == 0 and (tmp_path / "one.png").read_bytes()[:8] == PNG
    code, _, _ = run(capsys, clips, "--model", bundle, "--plot", tmp_path / "out" / "many.png")
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["many-a.png", "many-b.png"]
    code, _, _ = run(capsys, tmp_path / "long.wav", "--model", bundle, "--timeline", "--plot",
                     tmp_path / "timeline.png")  # fmt: skip
    assert code == 0 and (tmp_path / "timeline.png").read_bytes()[:8] == PNG


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
