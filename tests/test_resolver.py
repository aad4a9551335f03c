"""One resolver for every command that takes a model: ``default``, a run folder (its
``final/bundle``) and a bundle folder mean the same to predict, evaluate, export, serve,
listen and ensemble (the GUI loads through the same ``Recognizer.load``)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sertk.bundle import DEFAULT_MODEL, load_bundle, resolve_bundle
from sertk.cli import main

ROOT = Path(__file__).resolve().parents[1]
CLIP = str(ROOT / "examples" / "03a02Wc.flac")


@pytest.fixture
def run_folder(tmp_path):
    """A run folder whose final/bundle is a copy of the default model."""
    import shutil

    run = tmp_path / "runs" / "copy-20260101-000000"
    shutil.copytree(DEFAULT_MODEL, run / "final" / "bundle")
    return run


@pytest.fixture
def manifest(tmp_path):
    path = tmp_path / "m.csv"
    rows = [f"{p.stem},{p},{label},{p.stem[:2]}" for p, label in (
        (ROOT / "examples/03a02Wc.flac", "angry"), (ROOT / "examples/15a02Ta.flac", "sad"),
        (ROOT / "examples/11a02Nc.flac", "neutral"),
    )]  # fmt: skip
    path.write_text("id,path,label,speaker\n" + "\n".join(rows) + "\n")
    return path


def test_names_and_folders_resolve_to_the_same_bundle(run_folder):
    assert resolve_bundle("default") == DEFAULT_MODEL
    assert resolve_bundle(run_folder) == run_folder / "final" / "bundle"
    assert load_bundle(run_folder).labels == load_bundle("default").labels


@pytest.mark.parametrize("model", ["default", "run"])
def test_predict_and_evaluate_take_default_and_run_folders(capsys, model, run_folder, manifest):
    name = "default" if model == "default" else str(run_folder)
    assert main(["predict", CLIP, "--model", name, "--format", "json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["label"] == "angry"
    assert main(["evaluate", name, "--manifest", str(manifest), "--no-progress"]) == 0
    assert "evaluated 3 of 3 utterances" in capsys.readouterr().out


def test_listen_to_a_file_takes_default(capsys, tmp_path):
    out = tmp_path / "h.jsonl"
    assert main(["listen", "--model", "default", "--file", CLIP, "--fast", "-o", str(out)]) == 0
    assert out.is_file()


def test_export_and_ensemble_take_default_and_run_folders(tmp_path, capsys, run_folder):
    pytest.importorskip("onnxruntime")
    assert main(["export", "default", "-o", str(tmp_path / "d-onnx")]) == 0
    exported = load_bundle(tmp_path / "d-onnx")  # the adaptive default: both members exported
    document = json.loads((tmp_path / "d-onnx" / "bundle.json").read_text(encoding="utf-8"))
    assert exported.kind == "adaptive" and len(document["onnx"]["members"]) == 2
    assert main(["export", str(run_folder), "-o", str(tmp_path / "r-onnx")]) == 0
    capsys.readouterr()
    # the default model is adaptive (made of two bundles): an ensemble takes its members
    assert main(["ensemble", "default", str(run_folder), "-o", str(tmp_path / "no")]) == 2
    assert "is itself an adaptive bundle; give its members instead" in capsys.readouterr().err
    single = tmp_path / "runs" / "single-20260101-000000"
    shutil.copytree(DEFAULT_MODEL / "members" / "global", single / "final" / "bundle")
    member = DEFAULT_MODEL / "members" / "global"
    assert main(["ensemble", str(member), str(single), "-o", str(tmp_path / "mix")]) == 0
    assert "ensemble of 2 bundles" in capsys.readouterr().out
    assert load_bundle(tmp_path / "mix").members[0].source == str(member)


def test_serve_takes_default():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from sertk.server import create_app

    with TestClient(create_app("default")) as client:
        info = client.get("/v1/labels").json()
    assert info["model"]["name"] == "default" and "angry" in info["labels"]
