import json

import numpy as np
import pytest
import safetensors.torch
import torch
from torch import nn

from sertk.config import TrainConfig
from sertk.errors import ConfigError, CorpusError, FeatureError
from sertk.training import (
    _learning_rate,
    class_weights,
    collate,
    fit_normalization,
    predict,
    train_model,
)

LABELS = ["low", "mid", "high"]


@pytest.fixture(autouse=True)
def one_thread():
    # tiny models: a second thread only adds contention on the shared 2-core machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class MeanHead(nn.Module):
    """Masked mean over frames -> dropout -> linear (dropout makes RNG state matter)."""

    def __init__(self, input_dim=4, num_classes=3):
        super().__init__()
        self.dropout = nn.Dropout(0.2)
        self.linear = nn.Linear(input_dim, num_classes)

    def forward(self, features, lengths):
        mask = torch.arange(features.shape[1])[None, :] < lengths[:, None]
        pooled = (features * mask[..., None]).sum(dim=1) / lengths[:, None]
        return self.linear(self.dropout(pooled))


def toy(n, seed, *, classes=3, dim=4):
    """Class c is carried by the mean of the features (c - 1), buried in noise; 4-12 frames."""
    rng = np.random.default_rng(seed)
    items = []
    for i in range(n):
        label = i % classes
        frames = int(rng.integers(4, 13))
        items.append((rng.normal(label - 1.0, 2.0, (frames, dim)).astype(np.float32), label))
    return items


def model(seed=0, **options):
    torch.manual_seed(seed)
    return MeanHead(**options)


def config(**options):
    return TrainConfig(**{"lr": 0.05, "batch_size": 16, "epochs": 6, "patience": None, **options})


def weights(module):
    return {name: tensor.clone() for name, tensor in module.state_dict().items()}


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=0, atol=0)


def test_learns_the_toy_problem(tmp_path):
    result = train_model(
        model(), toy(96, 0), toy(30, 1), config=config(epochs=8), labels=LABELS,
        out_dir=tmp_path, progress=False,
    )  # fmt: skip
    test = toy(90, 2)
    predicted, probabilities = predict(result.model, test, batch_size=7)
    truth = np.array([label for _, label in test])
    assert (predicted == truth).mean() > 0.6  # chance is 1/3
    assert probabilities.shape == (90, 3) and np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
    history = result.history
    assert history["epoch"] == list(range(1, 9)) and len(history["valid_ua"]) == 8
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_restores_the_best_validation_epoch(tmp_path):
    net, snapshots = model(), {}
    result = train_model(
        net, toy(60, 0), toy(24, 1), config=config(epochs=30, patience=2), labels=LABELS,
        out_dir=tmp_path, progress=False,
        on_epoch_end=lambda epoch, _: snapshots.__setitem__(epoch, weights(net)),
    )  # fmt: skip
    ua = result.history["valid_ua"]
    assert result.stopped_early and result.epochs_run < 30
    assert result.best_epoch == int(np.argmax(ua)) + 1  # first epoch with the best UA
    assert result.best_epoch == result.epochs_run - 2  # patience 2: two worse epochs, then stop
    assert result.best_valid_ua == max(ua)
    assert_same_weights(weights(result.model), snapshots[result.best_epoch])
    last = safetensors.torch.load_file(tmp_path / "checkpoint" / "last.safetensors")
    assert not torch.equal(
        last["model/linear.weight"], snapshots[result.best_epoch]["linear.weight"]
    )


def test_seeded_runs_are_identical(tmp_path):
    def run(seed, name):
        return train_model(
            model(), toy(48, 0), toy(12, 1), config=config(epochs=3, seed=seed), labels=LABELS,
            out_dir=tmp_path / name, progress=False,
        )  # fmt: skip

    a, b, c = run(0, "a"), run(0, "b"), run(1, "c")
    assert a.history == b.history
    assert_same_weights(weights(a.model), weights(b.model))
    assert a.history["train_loss"] != c.history["train_loss"]


class Interrupt(Exception):
    pass


class Flaky(list):
    """A training set whose item ``fail_at`` raises once: a crash in the middle of an epoch."""

    def __init__(self, items, fail_at):
        super().__init__(items)
        self.fail_at, self.reads = fail_at, 0

    def __getitem__(self, index):
        self.reads += 1
        if self.reads == self.fail_at:
            raise Interrupt
        return super().__getitem__(index)


@pytest.mark.parametrize("option", [{"class_weights": True}, {"balanced_sampling": True}])
def test_resume_after_interruption_equals_an_uninterrupted_run(tmp_path, option):
    train, valid = toy(40, 0), toy(12, 1)
    settings = config(epochs=5, scheduler="cosine", warmup_steps=3, **option)
    full = train_model(model(), train, valid, config=settings, labels=LABELS,
                       out_dir=tmp_path / "full", progress=False)  # fmt: skip

    def stop_after_2(epoch, _):
        if epoch == 2:
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        train_model(model(), train, valid, config=settings, labels=LABELS, out_dir=out,
                    progress=False, on_epoch_end=stop_after_2)  # fmt: skip
    # 40 reads to collect the labels, 40 for epoch 3, then it dies 10 items into epoch 4
    with pytest.raises(Interrupt):
        train_model(model(seed=5), Flaky(train, fail_at=40 + 40 + 10), valid, config=settings,
                    labels=LABELS, out_dir=out, progress=False, resume=True)  # fmt: skip
    assert json.loads((out / "checkpoint" / "last.json").read_text())["state"]["epoch"] == 3
    resumed = train_model(model(seed=7), train, valid, config=settings, labels=LABELS,
                          out_dir=out, progress=False, resume=True)  # fmt: skip
    assert resumed.history == full.history
    assert resumed.best_epoch == full.best_epoch
    assert_same_weights(weights(resumed.model), weights(full.model))
    last = {n: safetensors.torch.load_file(d / "checkpoint" / "last.safetensors") for n, d in
            [("full", tmp_path / "full"), ("resumed", out)]}  # fmt: skip
    assert_same_weights(last["full"], last["resumed"])  # weights, optimiser and RNG states


def test_a_crash_while_saving_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    real_save, calls = safetensors.torch.save_file, []

    def torn(tensors, filename, metadata=None):
        calls.append(filename)
        real_save(tensors, filename, metadata=metadata)
        if "last" in filename and len([c for c in calls if "last" in c]) == 3:
            with open(filename, "r+b") as handle:
                handle.truncate(100)  # half-written file
            raise OSError("power cut")

    monkeypatch.setattr(safetensors.torch, "save_file", torn)
    train, valid, settings = toy(32, 0), toy(12, 1), config(epochs=4)
    with pytest.raises(OSError, match="power cut"):
        train_model(model(), train, valid, config=settings, labels=LABELS, out_dir=tmp_path,
                    progress=False)  # fmt: skip
    monkeypatch.undo()
    checkpoint = tmp_path / "checkpoint"
    assert sorted(p.name for p in checkpoint.iterdir()) == [
        "best.safetensors", "last.json", "last.safetensors",
    ]  # fmt: skip
    with safetensors.safe_open(str(checkpoint / "last.safetensors"), "pt") as handle:
        assert json.loads(handle.metadata()["sertk_checkpoint"])["state"]["epoch"] == 2
    resumed = train_model(model(), train, valid, config=settings, labels=LABELS,
                          out_dir=tmp_path, progress=False, resume=True)  # fmt: skip
    assert resumed.epochs_run == 4 and resumed.history["epoch"] == [1, 2, 3, 4]


def test_resume_refuses_a_changed_run(tmp_path):
    train, valid = toy(16, 0), toy(6, 1)
    train_model(model(), train, valid, config=config(epochs=1), labels=LABELS, out_dir=tmp_path,
                progress=False)  # fmt: skip
    with pytest.raises(ConfigError, match=r"train.lr: 0.05 -> 0.01"):
        train_model(model(), train, valid, config=config(epochs=2, lr=0.01), labels=LABELS,
                    out_dir=tmp_path, progress=False, resume=True)  # fmt: skip
    with pytest.raises(ConfigError, match="train_size: 16 -> 15"):
        train_model(model(), train[:15], valid, config=config(epochs=2), labels=LABELS,
                    out_dir=tmp_path, progress=False, resume=True)  # fmt: skip
    more = train_model(model(), train, valid, config=config(epochs=2), labels=LABELS,
                       out_dir=tmp_path, progress=False, resume=True)  # fmt: skip
    assert more.history["epoch"] == [1, 2]  # more epochs may be added on resume


def test_class_weights():
    np.testing.assert_allclose(class_weights([0, 0, 0, 1], 3), [4 / 9, 4 / 3, 0.0])
    np.testing.assert_allclose(class_weights([0, 1, 2, 2], 3), [4 / 3, 4 / 3, 2 / 3])
    assert class_weights([1], 2).dtype == np.float32


def weighted_cross_entropy(net, dataset, weights) -> float:
    """The class-weighted mean cross-entropy of ``net`` (a ``MeanHead``) on ``dataset``,
    computed in numpy: ``sum_i w[y_i] * -log softmax(z_i)[y_i] / sum_i w[y_i]``."""
    weight = net.linear.weight.detach().double().numpy()
    bias = net.linear.bias.detach().double().numpy()
    pooled = np.stack([features.astype(np.float64).mean(axis=0) for features, _ in dataset])
    targets = np.array([label for _, label in dataset])
    logits = pooled @ weight.T + bias
    shifted = logits - logits.max(axis=1, keepdims=True)
    nll = np.log(np.exp(shifted).sum(axis=1)) - shifted[np.arange(len(targets)), targets]
    return float((weights[targets] * nll).sum() / weights[targets].sum())


def test_class_weights_are_used_by_the_loss_and_reported(tmp_path):
    train = toy(30, 0) + [item for item in toy(18, 5) if item[1] == 0]  # class 0 over-represented
    counts = np.bincount([label for _, label in train], minlength=3)
    expected_weights = len(train) / (3 * counts)
    net = model()
    net.dropout = nn.Identity()  # the loss of the first step is then a function of the data alone
    before = weighted_cross_entropy(net, train, expected_weights)
    plain = weighted_cross_entropy(net, train, np.ones(3))
    assert abs(before - plain) > 0.01  # the weights change this loss: the check below can fail
    # one batch holding the whole training set: the epoch's loss is the loss of the first step,
    # taken before the optimiser moves anything
    settings = config(epochs=1, class_weights=True, batch_size=len(train))
    result = train_model(net, train, toy(9, 1), config=settings, labels=LABELS,
                         out_dir=tmp_path, progress=False)  # fmt: skip
    np.testing.assert_allclose(result.class_weights, expected_weights, rtol=1e-6)
    assert result.history["train_loss"] == [pytest.approx(before, rel=1e-5)]


def test_training_without_a_validation_set_keeps_the_last_epoch(tmp_path):
    net = model()
    result = train_model(net, toy(24, 0), None, config=config(epochs=3, patience=1),
                         labels=LABELS, out_dir=tmp_path, progress=False)  # fmt: skip
    assert result.best_epoch == 3 and result.best_valid_ua is None
    assert result.history["valid_ua"] == [None, None, None]
    last = safetensors.torch.load_file(tmp_path / "checkpoint" / "last.safetensors")
    assert torch.equal(last["model/linear.weight"], result.model.linear.weight.detach())
    with pytest.raises(ConfigError, match="plateau' needs a validation set"):
        train_model(net, toy(24, 0), None, config=config(scheduler="plateau"), labels=LABELS,
                    out_dir=tmp_path, progress=False)  # fmt: skip


def test_progress_bar_shows_loss_and_validation_ua(tmp_path, capsys):
    train_model(model(), toy(16, 0), toy(6, 1), config=config(epochs=1), labels=LABELS,
                out_dir=tmp_path, progress=True)  # fmt: skip
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err and "valid_ua=" in err


def test_learning_rate_schedules():
    warm = TrainConfig(lr=1.0, warmup_steps=4)
    assert [_learning_rate(warm, s, 100, 1.0) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    cosine = TrainConfig(lr=1.0, scheduler="cosine", min_lr=0.1)
    assert _learning_rate(cosine, 0, 10, 1.0) == pytest.approx(1.0)
    assert _learning_rate(cosine, 5, 10, 1.0) == pytest.approx(0.55)
    assert _learning_rate(cosine, 9, 10, 1.0) == pytest.approx(
        0.1 + 0.9 * 0.5 * (1 + np.cos(0.9 * np.pi))
    )
    warm_cosine = TrainConfig(lr=1.0, scheduler="cosine", warmup_steps=2)
    assert [_learning_rate(warm_cosine, s, 6, 1.0) for s in (0, 1, 2, 4)] == pytest.approx(
        [0.5, 1.0, 1.0, 0.5]
    )
    plateau = TrainConfig(lr=1.0, scheduler="plateau", min_lr=0.2)
    assert _learning_rate(plateau, 3, 10, 0.5) == 0.5
    assert _learning_rate(plateau, 3, 10, 0.125) == 0.2


def test_plateau_halves_the_rate_after_an_epoch_without_progress(tmp_path):
    settings = config(epochs=8, scheduler="plateau", plateau_patience=1, plateau_factor=0.5)
    result = train_model(model(), toy(24, 0), toy(9, 1), config=settings, labels=LABELS,
                         out_dir=tmp_path, progress=False)  # fmt: skip
    ua, lr = result.history["valid_ua"], result.history["lr"]
    assert lr[0] == 0.05
    for i in range(1, 8):
        improved = i == 1 or ua[i - 1] > max(ua[: i - 1])
        assert lr[i] == pytest.approx(lr[i - 1] * (1.0 if improved else 0.5))
    assert lr[-1] < lr[0]  # validation UA did stall at least once


def test_collate_pads_and_returns_lengths():
    features, lengths, labels = collate([(np.ones((2, 3)), 1), (np.full((4, 3), 2.0), 0)])
    assert features.shape == (2, 4, 3) and features.dtype == torch.float32
    assert lengths.tolist() == [2, 4] and labels.tolist() == [1, 0]
    assert features[0, 2:].abs().sum() == 0 and features[1].min() == 2
    layered, lengths, labels = collate([np.ones((5, 2, 3)), np.ones((5, 6, 3))])
    assert (
        layered.shape == (2, 5, 6, 3) and lengths.tolist() == [2, 6] and labels.tolist() == [-1, -1]
    )
    with pytest.raises(FeatureError, match="differ in shape beyond frames"):
        collate([(np.ones((2, 3)), 0), (np.ones((2, 4)), 0)])
    with pytest.raises(FeatureError, match="0 feature frames"):
        collate([(np.ones((0, 3)), 0)])
    with pytest.raises(FeatureError, match=r"\[frames, dim\]"):
        collate([(np.ones(3), 0)])


def test_predict_uses_no_randomness_and_keeps_the_mode():
    net = model().train()
    state = torch.get_rng_state()
    first, probabilities = predict(net, toy(10, 3), batch_size=4)
    again, _ = predict(net, [features for features, _ in toy(10, 3)], batch_size=3)
    assert torch.equal(state, torch.get_rng_state()) and net.training
    assert first.dtype == np.int64 and probabilities.dtype == np.float32
    np.testing.assert_array_equal(first, again)


def test_bad_input(tmp_path):
    run = dict(config=config(epochs=1), labels=LABELS, out_dir=tmp_path, progress=False)
    with pytest.raises(CorpusError, match="class index 3, outside 0..2"):
        train_model(model(), [(np.ones((3, 4), np.float32), 3)], None, **run)
    with pytest.raises(CorpusError, match="must be class indices"):
        train_model(model(), [(np.ones((3, 4), np.float32), "angry")], None, **run)
    with pytest.raises(CorpusError, match="train_set is empty"):
        train_model(model(), [], None, **run)
    with pytest.raises(ConfigError, match=r"outputs \(2, 2\) logits but there are 3 labels"):
        train_model(model(num_classes=2), toy(2, 0), None, **run)


def test_fit_normalization():
    data = toy(10, 0)
    stats = fit_normalization(data)
    frames = np.concatenate([features for features, _ in data])
    np.testing.assert_allclose(stats["mean"], frames.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(stats["std"], frames.std(axis=0), rtol=1e-4)
    layered = fit_normalization([np.ones((2, 5, 3)), np.zeros((2, 3, 3))])
    assert layered["mean"].shape == (2, 3) and np.allclose(layered["mean"], 5 / 8)


def test_datasets_are_told_the_epoch_before_each_pass(tmp_path):
    class EpochAware(list):
        seen: list

        def set_epoch(self, epoch):
            self.seen.append(epoch)

    train_set = EpochAware(toy(24, 0))
    train_set.seen = []
    train_model(model(), train_set, toy(9, 1), config=config(epochs=3), labels=LABELS,
                out_dir=tmp_path, progress=False)  # fmt: skip
    assert train_set.seen == [0, 1, 2]
    # a resumed run continues with the next epoch's draws
    train_set.seen = []
    train_model(model(), train_set, toy(9, 1), config=config(epochs=5), labels=LABELS,
                out_dir=tmp_path, progress=False, resume=True)  # fmt: skip
    assert train_set.seen == [3, 4]
