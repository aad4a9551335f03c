"""``sertk train --ddp N``: the training loop data-parallel on N CPU processes (torch DDP, gloo).

The run must be the one-process run: same global batches, same gradients (checked with
dropout off, where the losses agree to float precision), same quality, same run folder and a
bundle that loads and predicts.
"""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from test_experiment import write_toy_corpus

from sertk.cli import main
from sertk.config import TrainConfig
from sertk.recognizer import Recognizer
from sertk.training.data import PAD, train_loader

pytestmark = pytest.mark.slow


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def toy_recipe(root: Path, **changes) -> Path:
    """Four speakers, two speaker-grouped folds (validation: one training speaker), and a final
    model; mean-pool over log-mel, class weights on."""
    csv_path = root / "corpus" / "labels.csv"
    if not csv_path.is_file():
        write_toy_corpus(root / "corpus", speakers=4, per_class=3)
    recipe = {
        "name": "toy", "output_dir": str(root / "runs"),
        "data": {"corpus": "generic", "root": str(csv_path)},
        "folds": {"strategy": "group_kfold", "n_splits": 2, "valid_speakers": 1},
        "features": {"name": "logmel", "params": {"n_mels": 24}},
        "preprocess": {"duration": 0.5},
        "model": {"name": "mean_pool", "hparams": {"dropout": 0.0}},
        "train": {"lr": 0.05, "batch_size": 8, "epochs": 3, "patience": None,
                  "class_weights": True},
        "final_model": True,
        **changes,
    }  # fmt: skip
    path = root / f"{recipe['name']}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def fold_histories(run_dir: Path) -> dict[str, dict]:
    return {
        path.parent.name: json.loads(path.read_text())["training"]["history"]
        for path in sorted((run_dir / "folds").glob("*/metrics.json"))
    }


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The toy recipe trained in one process and with --ddp 2 (same cache)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    root = tmp_path_factory.mktemp("ddp")
    recipe = toy_recipe(root)
    folders = {}
    for name, extra in (("one", []), ("ddp", ["--ddp", "2"])):
        code, out, err = run_cli("train", str(recipe), "--cache", str(root / "cache"),
                                 "--output-dir", str(root / name), "--no-progress", *extra)  # fmt: skip
        assert code == 0, err
        folders[name] = Path(out.strip().splitlines()[-1].removeprefix("run folder: "))
    torch.set_num_threads(threads)
    return folders


def test_two_processes_train_what_one_process_trains(runs):
    one, ddp = fold_histories(runs["one"]), fold_histories(runs["ddp"])
    assert sorted(one) == sorted(ddp) and len(one) == 2
    for fold in one:  # same global batches and gradients: the same losses, epoch by epoch
        for key in ("train_loss", "valid_loss"):
            np.testing.assert_allclose(ddp[fold][key], one[fold][key], rtol=1e-4)
        assert ddp[fold]["valid_ua"] == one[fold]["valid_ua"]
    summaries = [json.loads((runs[k] / "summary.json").read_text()) for k in ("one", "ddp")]
    assert summaries[1]["mean"]["ua"] == summaries[0]["mean"]["ua"] > 0.6  # chance is 1/3


def test_the_ddp_run_folder_and_bundle_are_complete(runs):
    names = {p.name for p in runs["ddp"].iterdir()}
    assert {"config.yaml", "env.json", "splits.json", "summary.json", "report.md"} <= names
    for fold in (runs["ddp"] / "folds").iterdir():
        assert (fold / "bundle" / "bundle.json").is_file()
        assert not (fold / "checkpoint").exists()  # removed once the fold is complete
    recognizer = Recognizer.load(runs["ddp"] / "final" / "bundle")
    corpus = runs["ddp"].parents[1] / "corpus"
    files = sorted((corpus / "angry").glob("*.wav"))[:3] + sorted((corpus / "neutral").glob(
        "*.wav"))[:3]  # fmt: skip
    labels = [p.label for p in recognizer.predict_batch(files)]
    assert labels == ["angry"] * 3 + ["neutral"] * 3


@pytest.mark.parametrize("balanced", [False, True])
def test_shards_of_each_rank_make_up_the_one_process_batches(balanced):
    dataset = [(np.full((2, 3), i, np.float32), i % 3) for i in range(9)]  # batches of 4, 4 and 1
    labels = [label for _, label in dataset]
    config = TrainConfig(batch_size=4, balanced_sampling=balanced)

    def draw(shard):
        generator = torch.Generator().manual_seed(7)
        loader = train_loader(dataset, labels, config, generator, shard=shard)
        return [(features[:, 0, 0].int().tolist(), targets.tolist()) for features, _, targets
                in loader]  # fmt: skip

    whole = draw(None)
    ranks = [draw((rank, 3)) for rank in range(3)]
    assert all(len(batches) == len(whole) for batches in ranks)  # the same number of steps
    for step, (items, _) in enumerate(whole):
        shares = [ranks[rank][step] for rank in range(3)]
        pairs = [pair for ids, targets in shares for pair in zip(ids, targets, strict=True)]
        real = sorted(i for i, target in pairs if target != PAD)
        assert real == sorted(items)
    assert ranks[1][-1][1] == ranks[2][-1][1] == [PAD]  # the 1-item last batch: padding


def test_ddp_is_refused_for_classical_models_and_bad_counts(tmp_path):
    recipe = toy_recipe(tmp_path, name="svm", model={"name": "svm"},
                        features={"name": "functionals"})  # fmt: skip
    code, _, err = run_cli("train", str(recipe), "--ddp", "2")
    assert (
        code == 2 and "model 'svm' is classical" in err and "nothing to train data-parallel" in err
    )
    recipe = toy_recipe(tmp_path)
    for argv, message in (
        (["--ddp", "0"], "--ddp must be a positive integer"),
        (["--ddp", "2", "--set", "train.batch_size=1"], "smaller than the 2 data-parallel"),
        (["--workers", "2"], "--workers go with --engine ray"),
        (["--engine", "ray"], "give --ddp N"),
        (["--ddp", "2", "--workers", "3", "--engine", "ray"], "disagree"),
    ):
        code, _, err = run_cli("train", str(recipe), "--output-dir", str(tmp_path / "r"),
                               "--cache", str(tmp_path / "c"), "--no-progress", *argv)  # fmt: skip
        assert code == 2 and message in err, (argv, err)
