"""Model heads: shapes, padding/batch invariance, attention over time, hparams, bad input, training."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from sertk.errors import ConfigError, FeatureError
from sertk.models import MODELS, build_model

DIM, CLASSES, LAYERS_IN = 6, 3, 3
ATOL = 1e-5

# name, tiny hparams (besides input_dim/num_classes)
CONFIGS = {
    "gru": ("gru_attention", {"hidden": 8, "layers": 2}),
    "gru_dot_uni": (
        "gru_attention",
        {"hidden": 8, "layers": 1, "bidirectional": False, "attention": "dot"},
    ),
    "gru_layers": ("gru_attention", {"hidden": 8, "num_layers_in": LAYERS_IN}),
    "cnn_lstm": ("cnn_lstm", {"channels": [4, 5], "kernel_size": 3, "pool": 2, "lstm_hidden": 6}),
    "cnn_lstm_layers": (
        "cnn_lstm",
        {
            "channels": [5],
            "kernel_size": 4,
            "pool": 3,
            "lstm_hidden": 7,
            "num_layers_in": LAYERS_IN,
        },
    ),
    "mean_pool": ("mean_pool", {}),
    "mean_pool_mlp_std": ("mean_pool", {"hidden": 5, "std": True, "num_layers_in": LAYERS_IN}),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    # tiny tensors: a second intra-op thread only adds spin-waiting on a shared 2-core machine
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def make_model(key: str, *, seed: int = 0) -> torch.nn.Module:
    name, hparams = CONFIGS[key]
    torch.manual_seed(seed)
    return build_model(name, input_dim=DIM, num_classes=CLASSES, **hparams).eval()


def layered(model: torch.nn.Module) -> bool:
    return model.hparams.get("num_layers_in") is not None


def utterance(model: torch.nn.Module, frames: int, *, seed: int) -> torch.Tensor:
    """One utterance's valid frames: ``[frames, dim]`` or ``[layers, frames, dim]``."""
    generator = torch.Generator().manual_seed(seed)
    shape = (LAYERS_IN, frames, DIM) if layered(model) else (frames, DIM)
    return torch.randn(shape, generator=generator)


def pad_batch(items: list[torch.Tensor], *, extra: int = 0, seed: int = 99):
    """Stack utterances into a padded batch; padding is random garbage, not zeros."""
    lengths = [item.shape[-2] for item in items]
    frames = max(lengths) + extra
    generator = torch.Generator().manual_seed(seed)
    batch = torch.randn((len(items), *items[0].shape[:-2], frames, DIM), generator=generator) * 50
    for row, item in enumerate(items):
        batch[row, ..., : item.shape[-2], :] = item
    return batch, torch.tensor(lengths, dtype=torch.int64)


@pytest.mark.parametrize("key", CONFIGS)
def test_output_shapes(key):
    model = make_model(key)
    features, lengths = pad_batch([utterance(model, n, seed=n) for n in (9, 4, 1)])
    logits = model(features, lengths)
    assert logits.shape == (3, CLASSES)
    # different utterances give different logits: the invariance tests below are not vacuous
    assert (logits[1:] - logits[0]).abs().amax(dim=-1).min() > 1e-4
    logits2, attention = model(features, lengths, return_attention=True)
    torch.testing.assert_close(logits2, logits)
    if model.has_attention:
        assert attention.shape == (3, 9, 9)
    else:
        assert attention is None


@pytest.mark.parametrize("key", CONFIGS)
def test_logits_ignore_batch_mates_order_and_padding(key):
    model = make_model(key)
    target = utterance(model, 11, seed=1)
    with torch.no_grad():
        alone = model(*pad_batch([target]))[0]
        others = [utterance(model, n, seed=10 + n) for n in (17, 3, 8)]
        batch = model(*pad_batch([target, *others]))
        torch.testing.assert_close(batch[0], alone, atol=ATOL, rtol=0)
        # different batch mates, reordered, target in another row
        mates = [utterance(model, n, seed=50 + n) for n in (2, 25)]
        torch.testing.assert_close(
            model(*pad_batch([mates[1], target, mates[0]]))[1], alone, atol=ATOL, rtol=0
        )
        reorder = [others[2], others[0], target, others[1]]
        torch.testing.assert_close(
            model(*pad_batch(reorder))[[2, 1, 3, 0]], batch, atol=ATOL, rtol=0
        )
        for extra in (1, 2, 5, 16):
            padded = model(*pad_batch([target], extra=extra, seed=extra))[0]
            torch.testing.assert_close(padded, alone, atol=ATOL, rtol=0)


@pytest.mark.parametrize("key", ["gru", "gru_dot_uni", "gru_layers"])
def test_attention_rows_sum_to_one_and_padding_is_zero(key):
    model = make_model(key)
    features, lengths = pad_batch([utterance(model, n, seed=n) for n in (12, 5, 1)], extra=3)
    _, attention = model(features, lengths, return_attention=True)
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(attention[row, :n].sum(-1), torch.ones(n))
        assert (attention[row, :n, :n] > 0).all()
        assert (attention[row, n:] == 0).all() and (attention[row, :, n:] == 0).all()


def test_changing_one_utterance_changes_only_its_own_attention():
    model = make_model("gru")
    items = [utterance(model, n, seed=n) for n in (10, 7, 12)]
    _, before = model(*pad_batch(items), return_attention=True)
    changed = items[1].clone()
    changed[3] += 1.0
    _, after = model(*pad_batch([items[0], changed, items[2]]), return_attention=True)
    assert (after[1] - before[1]).abs().max() > 1e-3
    torch.testing.assert_close(after[[0, 2]], before[[0, 2]], atol=ATOL, rtol=0)
    # and the padding of utterance 1 does not matter
    _, repadded = model(*pad_batch(items, seed=7), return_attention=True)
    torch.testing.assert_close(repadded, before, atol=ATOL, rtol=0)


def loop_reference(model, features, lengths):
    """The documented math, one utterance and one time step at a time, on unpadded frames."""
    attention_module = model.attention
    general = isinstance(attention_module.query, torch.nn.Linear)
    weights, bias = attention_module.combine.weight, attention_module.combine.bias
    logits, attentions = [], []
    for row, n in enumerate(lengths.tolist()):
        h, _ = model.gru(features[row : row + 1, :n])  # no padding at all
        h = h[0]
        rows, outputs = [], []
        for t in range(n):
            query = attention_module.query.weight @ h[t] if general else h[t]
            a = torch.softmax(h @ query, dim=0)  # over time steps s of this utterance
            context = a @ h
            outputs.append(torch.tanh(weights @ torch.cat([context, h[t]]) + bias))
            rows.append(a)
        pooled = torch.stack(outputs).max(dim=0).values
        logits.append(model.classifier(F.leaky_relu(pooled)))
        attentions.append(torch.stack(rows))
    return torch.stack(logits), attentions


@pytest.mark.parametrize("key", ["gru", "gru_dot_uni"])
def test_attention_matches_loop_over_time_reference(key):
    model = make_model(key)
    features, lengths = pad_batch([utterance(model, n, seed=n) for n in (9, 14, 2)], extra=2)
    with torch.no_grad():
        logits, attention = model(features, lengths, return_attention=True)
        ref_logits, ref_attention = loop_reference(model, features, lengths)
    torch.testing.assert_close(logits, ref_logits, atol=ATOL, rtol=0)
    for row, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(attention[row, :n, :n], ref_attention[row], atol=ATOL, rtol=0)


@pytest.mark.parametrize("key", ["gru_layers", "cnn_lstm_layers", "mean_pool_mlp_std"])
def test_layer_weighting_is_a_learned_softmax_sum(key):
    model = make_model(key)
    weights = model.layer_weighting.weights
    torch.testing.assert_close(weights, torch.full((LAYERS_IN,), 1 / LAYERS_IN))
    with torch.no_grad():
        model.layer_weighting.logits.copy_(torch.tensor([0.0, 1.0, -2.0]))
    weights = model.layer_weighting.weights
    torch.testing.assert_close(weights.sum(), torch.tensor(1.0))
    # the same head without weighting, fed the weighted sum by hand, gives the same logits
    name, hparams = CONFIGS[key]
    plain = build_model(
        name, input_dim=DIM, num_classes=CLASSES, **{**hparams, "num_layers_in": None}
    )
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("layer_weighting.")}
    plain.load_state_dict(state)
    plain.eval()
    features, lengths = pad_batch([utterance(model, n, seed=n) for n in (8, 3)])
    mixed = torch.einsum("l,bltd->btd", weights, features)
    torch.testing.assert_close(model(features, lengths), plain(mixed, lengths), atol=ATOL, rtol=0)
    model(features, lengths).sum().backward()
    assert model.layer_weighting.logits.grad.abs().sum() > 0


@pytest.mark.parametrize("key", CONFIGS)
def test_hparams_round_trip(key):
    model = make_model(key, seed=1)
    name, _ = CONFIGS[key]
    assert model.name == name
    hparams = json.loads(json.dumps(model.hparams))
    assert hparams["input_dim"] == DIM and hparams["num_classes"] == CLASSES
    rebuilt = MODELS[name](**hparams)
    rebuilt.load_state_dict(model.state_dict())  # strict: same architecture
    rebuilt.eval()
    assert rebuilt.hparams == model.hparams
    features, lengths = pad_batch([utterance(model, n, seed=n) for n in (8, 3)])
    torch.testing.assert_close(rebuilt(features, lengths), model(features, lengths))


def test_gru_defaults_equal_the_reference():
    hparams = build_model("gru_attention", input_dim=768, num_classes=4).hparams
    assert hparams["hidden"] == 256 and hparams["layers"] == 2 and hparams["dropout"] == 0.2
    assert hparams["input_dropout"] == 0.2 and hparams["bidirectional"] is True


@pytest.mark.parametrize("key", ["gru", "cnn_lstm", "mean_pool", "gru_layers"])
def test_bad_input_raises_feature_error(key):
    model = make_model(key)
    features, lengths = pad_batch([utterance(model, n, seed=n) for n in (6, 4)])
    cases = [
        (features[..., :-1], lengths, "expects input_dim=6"),
        (features, lengths[:1], r"shape \[batch\]=\[2\]"),
        (features, torch.tensor([6, 0]), "at least 1 frame"),
        (features, torch.tensor([7, 4]), "exceeds the 6 padded frames"),
        (features, lengths.float(), "integer frame counts"),
        (features, [6, 4], "torch.Tensor"),
        (features.long(), lengths, "floating-point"),
        (features[:0], lengths[:0], "empty"),
    ]
    if layered(model):
        cases += [
            (features[:, 0], lengths, "weights 3 encoder layers"),
            (features[:, :2], lengths, "2 layers"),
        ]
    else:
        cases.append((features[:, None], lengths, "num_layers_in"))
    nan = features.clone()
    nan[1, ..., 2, 0] = float("nan")
    cases.append((nan, lengths, "utterance 1 .* NaN or infinite at frame 2"))
    for bad_features, bad_lengths, message in cases:
        with pytest.raises(FeatureError, match=message):
            model(bad_features, bad_lengths)
    nan_in_padding = features.clone()
    nan_in_padding[1, ..., 5, :] = float("nan")
    assert torch.isfinite(model(nan_in_padding, lengths)).all()


@pytest.mark.parametrize(
    ("name", "hparams", "message"),
    [
        ("transformer", {}, "unknown model"),
        ("gru_attention", {"hidden": 0}, "hidden must be an integer >= 1"),
        ("gru_attention", {"hidden": 8.0}, "hidden must be an integer"),
        ("gru_attention", {"dropout": 1.5}, "dropout must be a number in"),
        ("gru_attention", {"attention": "additive"}, "attention must be one of"),
        ("gru_attention", {"heads": 4}, r"unknown \['heads'\] hyper-parameters; it accepts"),
        ("mean_pool", {"input_dim": None}, "input_dim must be an integer"),
        ("cnn_lstm", {"channels": []}, "channels must be a non-empty list"),
        ("mean_pool", {"num_classes": 1}, "num_classes must be an integer >= 2"),
    ],
)
def test_bad_hparams_raise_config_error(name, hparams, message):
    with pytest.raises(ConfigError, match=message):
        build_model(name, **{"input_dim": DIM, "num_classes": CLASSES, **hparams})


def test_build_model_needs_input_dim_and_num_classes():
    with pytest.raises(ConfigError, match=r"missing \['num_classes'\]"):
        build_model("cnn_lstm", input_dim=DIM)


def test_cnn_batchnorm_statistics_ignore_padding():
    runs = []
    for extra in (0, 9):
        model = make_model("cnn_lstm").train()
        items = [utterance(model, n, seed=n) for n in (13, 6, 9)]
        model(*pad_batch(items, extra=extra))
        runs.append(model.blocks[0].norm.running_mean.clone())
    torch.testing.assert_close(runs[0], runs[1])


def toy_problem(model, *, count: int = 16):
    """Two classes told apart by a shift of the frames in dimension 0."""
    labels = torch.arange(count) % 2
    items = []
    for index in range(count):
        item = utterance(model, 4 + (index * 5) % 13, seed=200 + index)
        item[..., 0] += 2.5 * (2 * labels[index] - 1)
        items.append(item)
    features, lengths = pad_batch(items, seed=3)
    return features, lengths, labels


@pytest.mark.parametrize("key", CONFIGS)
def test_every_model_overfits_a_tiny_problem(key):
    model = make_model(key).train()
    features, lengths, labels = toy_problem(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-2)
    losses = []
    for _ in range(50):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(features, lengths), labels)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    with torch.no_grad():
        predictions = model(features, lengths).argmax(dim=-1)
    assert losses[-1] < 0.5 * losses[0]
    assert (predictions == labels).all()
