"""The core install has no torch: predict, evaluate, timeline, listen to a file and classical
training work where importing torch is impossible, and the torch paths say which extra to
install instead of showing an ImportError traceback.

Each command runs in a fresh interpreter whose first lines make ``import torch`` fail with
``ModuleNotFoundError`` (a finder at the front of ``sys.meta_path``), as on a machine where only
``pip install sertk`` ran. (``sys.modules["torch"] = None`` would not do: scipy looks torch up
in ``sys.modules`` and trips over the None.)
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_experiment import toy_overrides, write_toy_corpus

ROOT = Path(__file__).resolve().parents[1]


def hiding(*packages: str) -> str:
    """Python source that makes importing ``packages`` fail from here on."""
    return f"""\
import sys


class Hidden:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {packages!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)


sys.meta_path.insert(0, Hidden())
"""


PRELUDE = hiding("torch", "torchaudio")


def sertk(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """``sertk ARGS`` in a fresh interpreter without torch."""
    code = PRELUDE + f"from sertk.cli import main\nsys.exit(main({[str(a) for a in args]!r}))\n"
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=600
    )


def test_torch_is_really_unimportable_in_the_prelude():
    code = PRELUDE + "import torch\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0 and "No module named 'torch'" in done.stderr


def test_predict_timeline_and_info_without_torch(tmp_path):
    done = sertk("predict", "examples/", "--no-progress", "--format", "json")
    assert done.returncode == 0, done.stderr
    # the README's make demo block: 03a02Wc angry, 08a02Fe (happy) called neutral
    assert [r["label"] for r in json.loads(done.stdout)][:2] == ["angry", "neutral"]
    done = sertk("predict", "examples/03a02Wc.flac", "--timeline", "--no-progress")
    assert done.returncode == 0 and "angry" in done.stdout, done.stderr
    done = sertk("info")
    assert done.returncode == 0 and "torch not installed" in done.stdout, done.stderr


def test_listen_to_a_file_without_torch(tmp_path):
    out = tmp_path / "history.csv"
    done = sertk("listen", "--file", "examples/03a02Wc.flac", "--fast", "-o", out)
    assert done.returncode == 0, done.stderr
    assert out.is_file() and "angry" in out.read_text()


def test_classical_training_and_evaluate_without_torch(tmp_path):
    csv_path = write_toy_corpus(tmp_path / "toy", speakers=3, per_class=3)
    overrides = toy_overrides(
        csv_path, tmp_path, "features.name=functionals", "features.params={}",
        "preprocess.duration=null", "model.name=ridge", "model.search={C: [0.3, 3.0]}",
        "final_model=true",
    )  # fmt: skip
    done = train(tmp_path, overrides, "--no-progress", "--cache", str(tmp_path / "cache"))
    assert done.returncode == 0, done.stderr
    run_dir = next((tmp_path / "runs").iterdir())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["mean"]["ua"] > 0.5  # three pitch classes: well above chance (1/3)
    env = json.loads((run_dir / "env.json").read_text())
    assert env["machine"]["torch_threads"] is None
    manifest = tmp_path / "manifest.csv"
    manifest.write_text(
        "id,path,label,speaker\n"
        + "".join(f"u{i},{p},{label},s\n" for i, (p, label) in enumerate(_rows(csv_path)))
    )
    done = sertk("evaluate", run_dir, "--manifest", manifest, "--no-progress")
    assert done.returncode == 0 and "UA " in done.stdout, done.stderr
    done = sertk("evaluate", "default", "--manifest", manifest, "--no-progress")
    assert done.returncode == 0 and "evaluated" in done.stdout, done.stderr


def train(tmp_path: Path, overrides: list[str], *options: str) -> subprocess.CompletedProcess:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("name: toy\n")
    return sertk("train", recipe, *(x for o in overrides for x in ("--set", o)), *options)


def _rows(csv_path: Path) -> list[tuple[str, str]]:
    lines = csv_path.read_text().splitlines()[1:]
    return [(str(csv_path.parent / line.split(",")[0]), line.split(",")[1]) for line in lines]


@pytest.mark.parametrize("model", ["mean_pool", "gru_attention"])
def test_neural_paths_name_the_extra(tmp_path, model):
    csv_path = write_toy_corpus(tmp_path / "toy", speakers=2, per_class=1)
    overrides = toy_overrides(csv_path, tmp_path, f"model.name={model}")
    done = train(tmp_path, overrides, "--no-progress")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "needs torch" in done.stderr and "pip install 'sertk[neural]'" in done.stderr
    assert "download.pytorch.org/whl/cpu" in done.stderr


def test_a_torch_bundle_says_how_to_run_it(tmp_path):
    """A torch bundle written where torch exists, then loaded where it does not."""
    from sertk.bundle import save_bundle
    from sertk.models import build_model

    bundle = save_bundle(
        tmp_path / "b", model=build_model("mean_pool", input_dim=8, num_classes=2),
        model_name="mean_pool", labels=["a", "b"],
        label_map={"name": None, "labels": ["a", "b"], "mapping": {"a": "a", "b": "b"}},
        features={"name": "logmel", "n_mels": 8}, preprocess={},
    )  # fmt: skip
    done = sertk("predict", "examples/03a02Wc.flac", "--model", bundle, "--no-progress")
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "pip install 'sertk[neural]'" in done.stderr and "--backend onnx" in done.stderr
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"id,path,label,speaker\na,{ROOT / 'examples/03a02Wc.flac'},angry,03\n")
    done = sertk("extract", "--manifest", manifest, "--features", "ssl", "--model", tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert "pip install 'sertk[ssl]'" in done.stderr
