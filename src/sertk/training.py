"""A plain, visible PyTorch training loop with validation-based checkpoints and exact resume.

A dataset is any sequence of ``(features, label)`` with ``features`` an array ``[frames, dim]``
(or ``[layers, frames, dim]``) and ``label`` a class index; a dataset may also expose ``labels``
(a sequence of class indices) so that class weights and balanced sampling need not load
features. Each epoch: train on shuffled, padded batches -> score the VALIDATION set (never the
test set) -> keep ``best.safetensors`` when validation UA improves -> write the resumable
``last.safetensors``. Training stops after ``epochs`` or ``patience`` epochs without a better
validation UA, and the model returned carries the best epoch's weights.

Checkpoints (in ``out_dir/checkpoint``) are safetensors only, never pickle. ``last.safetensors``
holds the model, the flattened AdamW state and the RNG states as tensors, and everything else
(epoch, history, optimiser structure, schedule) as JSON in the file's metadata, so one atomic
``os.replace`` commits a whole checkpoint: an interruption at any moment leaves the previous
one intact. ``last.json`` is a human-readable copy of that metadata.

>>> result = train_model(model, train_set, valid_set, config=TrainConfig(epochs=20),
...                      labels=["neutral", "angry"], out_dir="runs/x")  # doctest: +SKIP
>>> result.best_epoch, result.history["valid_ua"][result.best_epoch - 1]  # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import json
import math
import operator
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import safetensors.torch
import torch
from torch import nn
from tqdm.auto import tqdm

from sertk.config import TrainConfig, config_to_dict
from sertk.errors import ConfigError, CorpusError, FeatureError, SertkError
from sertk.metrics import classification_report

CHECKPOINT_VERSION = 1
_META_KEY = "sertk_checkpoint"
# changing these between an interrupted run and its resume is harmless
_RESUME_FREE = ("epochs", "patience", "num_workers", "device")


@dataclasses.dataclass
class TrainResult:
    """Outcome of ``train_model``; ``model`` holds the weights of ``best_epoch`` (1-based).

    ``history`` maps ``epoch``, ``train_loss``, ``valid_loss``, ``valid_ua``, ``valid_wa``, ``lr``
    to per-epoch lists (validation entries are None without a validation set, and then the
    best epoch is the last one).
    """

    model: nn.Module
    history: dict[str, list]
    best_epoch: int
    best_valid_ua: float | None
    epochs_run: int
    stopped_early: bool
    checkpoint_dir: Path
    class_weights: list[float] | None


@dataclasses.dataclass
class _State:
    epoch: int = 0  # completed epochs
    step: int = 0  # optimiser steps taken
    best_ua: float | None = None
    best_epoch: int = 0
    bad_epochs: int = 0
    lr_scale: float = 1.0
    plateau_bad: int = 0
    stopped_early: bool = False
    history: dict[str, list] = dataclasses.field(
        default_factory=lambda: {
            k: [] for k in ("epoch", "train_loss", "valid_loss", "valid_ua", "valid_wa", "lr")
        }
    )


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def class_weights(labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Balanced weights ``n / (num_classes * count_c)``, float32 ``[num_classes]``.

    A class with no training example gets weight 0 (no sample carries it anyway).
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)
    weights = np.zeros(num_classes, dtype=np.float64)
    present = counts > 0
    weights[present] = counts.sum() / (num_classes * counts[present])
    return weights.astype(np.float32)


def collate(batch: Sequence[Any]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pad a list of ``(features, label)`` (or bare features) to one batch.

    Returns ``features`` float32 ``[batch, frames, dim]`` (or ``[batch, layers, frames, dim]``),
    ``lengths`` int64 ``[batch]`` and ``labels`` int64 ``[batch]`` (-1 for bare features).
    """
    arrays, targets = [], []
    for item in batch:
        features, label = item if isinstance(item, (tuple, list)) else (item, -1)
        arrays.append(np.asarray(features, dtype=np.float32))
        targets.append(int(label))
    first = arrays[0]
    if first.ndim not in (2, 3):
        raise FeatureError(
            f"features must be [frames, dim] or [layers, frames, dim]; got shape {first.shape}"
        )
    for array in arrays:
        if (
            array.ndim != first.ndim
            or array.shape[:-2] + array.shape[-1:] != first.shape[:-2] + first.shape[-1:]
        ):
            raise FeatureError(
                f"features in one batch differ in shape beyond frames: {first.shape} vs "
                f"{array.shape}; extract all utterances with the same extractor"
            )
        if array.shape[-2] == 0:
            raise FeatureError("an utterance has 0 feature frames; drop it before training")
    lengths = [array.shape[-2] for array in arrays]
    padded = np.zeros((len(arrays), *first.shape[:-2], max(lengths), first.shape[-1]), np.float32)
    for i, array in enumerate(arrays):
        padded[i][..., : array.shape[-2], :] = array
    return (
        torch.from_numpy(padded),
        torch.tensor(lengths, dtype=torch.int64),
        torch.tensor(targets, dtype=torch.int64),
    )


def predict(
    model: nn.Module, dataset: Sequence[Any], *, batch_size: int = 32, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray]:
    """Class indices int64 ``[n]`` and softmax probabilities float32 ``[n, classes]``.

    Items are ``(features, label)`` or bare features; the model runs in eval mode and its
    previous mode is restored afterwards. Uses no random numbers.
    """
    was_training = model.training
    model.eval()
    probabilities = []
    try:
        with torch.no_grad():
            for features, lengths, _ in _batches(dataset, batch_size):
                logits = model(features.to(device), lengths.to(device))
                probabilities.append(torch.softmax(logits.float(), dim=-1).cpu().numpy())
    finally:
        model.train(was_training)
    if not probabilities:
        raise SertkError("predict got an empty dataset")
    probs = np.concatenate(probabilities).astype(np.float32)
    return probs.argmax(axis=1).astype(np.int64), probs


def fit_normalization(dataset: Sequence[Any]) -> dict[str, np.ndarray]:
    """Per-dimension ``mean``/``std`` over all frames of a training set, float32 ``[dim]``
    (``[layers, dim]`` for layered features); ``std`` is floored at 1e-5."""
    total = total_sq = None
    frames = 0
    for item in dataset:
        features = item[0] if isinstance(item, (tuple, list)) else item
        array = np.asarray(features, dtype=np.float64)
        total = array.sum(axis=-2) + (0.0 if total is None else total)
        total_sq = (array**2).sum(axis=-2) + (0.0 if total_sq is None else total_sq)
        frames += array.shape[-2]
    if not frames:
        raise SertkError("cannot fit normalisation statistics on an empty dataset")
    mean = total / frames
    std = np.sqrt(np.maximum(total_sq / frames - mean**2, 0.0))
    return {"mean": mean.astype(np.float32), "std": np.maximum(std, 1e-5).astype(np.float32)}


def train_model(
    model: nn.Module,
    train_set: Sequence[Any],
    valid_set: Sequence[Any] | None,
    *,
    config: TrainConfig,
    labels: Sequence[str],
    out_dir: str | Path,
    progress: bool = True,
    resume: bool = False,
    on_epoch_end: Callable[[int, dict[str, list]], None] | None = None,
) -> TrainResult:
    """Train ``model`` (see the module docstring); returns it with the best epoch's weights.

    ``valid_set=None`` (final model on all data) trains all ``epochs`` and keeps the last.
    ``resume=True`` continues from ``out_dir/checkpoint/last.safetensors`` when present (and
    starts fresh otherwise); the result equals an uninterrupted run. ``on_epoch_end(epoch,
    history)`` is called after each epoch's checkpoint is written.
    """
    labels = list(labels)
    train_labels = _dataset_labels(train_set, len(labels), "train_set")
    if valid_set is not None:
        _dataset_labels(valid_set, len(labels), "valid_set")
    elif config.scheduler == "plateau":
        raise ConfigError(
            "train.scheduler 'plateau' needs a validation set; use 'cosine' or 'none'"
        )
    device = _device(config.device)
    model.to(device)
    weights = class_weights(train_labels, len(labels)) if config.class_weights else None
    criterion = nn.CrossEntropyLoss(weight=None if weights is None else torch.from_numpy(weights))
    criterion.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    generator = torch.Generator()
    loader = _train_loader(train_set, train_labels, config, generator)
    checkpoint_dir = Path(out_dir) / "checkpoint"
    fingerprint = {
        "config": config_to_dict(config),
        "labels": labels,
        "train_size": len(train_set),
        "valid_size": None if valid_set is None else len(valid_set),
    }
    if resume and (checkpoint_dir / "last.safetensors").exists():
        state = _load_last(checkpoint_dir, model, optimizer, generator, fingerprint)
    else:
        seed_everything(config.seed)
        generator.manual_seed(config.seed)
        state = _State()
    loop = _Loop(model, optimizer, criterion, loader, valid_set, config, labels, device, progress)
    while not state.stopped_early and state.epoch < config.epochs:
        _run_epoch(loop, state)
        if state.best_epoch == state.epoch:
            _save_best(checkpoint_dir, model, state)
        _save_last(checkpoint_dir, model, optimizer, generator, state, fingerprint, device)
        if on_epoch_end is not None:
            on_epoch_end(state.epoch, state.history)
    best = safetensors.torch.load_file(checkpoint_dir / "best.safetensors", device=str(device))
    model.load_state_dict(best)
    return TrainResult(
        model=model,
        history=state.history,
        best_epoch=state.best_epoch,
        best_valid_ua=state.best_ua,
        epochs_run=state.epoch,
        stopped_early=state.stopped_early,
        checkpoint_dir=checkpoint_dir,
        class_weights=None if weights is None else weights.tolist(),
    )


# --- one epoch -----------------------------------------------------------------------------


@dataclasses.dataclass
class _Loop:
    """What stays fixed during training (the mutable progress lives in ``_State``)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    loader: Any
    valid_set: Sequence[Any] | None
    config: TrainConfig
    labels: list[str]
    device: torch.device
    progress: bool


def _run_epoch(loop: _Loop, state: _State) -> None:
    """Train one epoch, validate, and update history, best epoch, patience and plateau scale."""
    config = loop.config
    loop.model.train()
    loss_sum, seen = 0.0, 0
    desc = f"epoch {state.epoch + 1}/{config.epochs}"
    with tqdm(total=len(loop.loader), desc=desc, disable=not loop.progress, unit="batch") as bar:
        for features, lengths, targets in loop.loader:
            loss = _train_step(loop, state, features, lengths, targets)
            loss_sum, seen = loss_sum + loss * len(targets), seen + len(targets)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", refresh=False)
            bar.update(1)
        valid = None
        if loop.valid_set is not None:
            valid = _evaluate(
                loop.model, loop.valid_set, loop.labels, config.batch_size, loop.device
            )
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", valid_ua=f"{valid['ua']:.4f}")
    state.epoch += 1
    _record(state, config, loss_sum / seen, valid, loop.optimizer.param_groups[0]["lr"])


def _train_step(loop: _Loop, state: _State, features, lengths, targets) -> float:
    """One optimiser step on a padded batch; returns the batch's mean loss."""
    config, device = loop.config, loop.device
    features, lengths, targets = features.to(device), lengths.to(device), targets.to(device)
    lr = _learning_rate(config, state.step, config.epochs * len(loop.loader), state.lr_scale)
    for group in loop.optimizer.param_groups:
        group["lr"] = lr
    logits = loop.model(features, lengths)
    if logits.ndim != 2 or logits.shape[1] != len(loop.labels):
        raise ConfigError(
            f"the model outputs {tuple(logits.shape)} logits but there are {len(loop.labels)} "
            "labels; build it with num_classes=len(labels)"
        )
    loss = loop.criterion(logits, targets)
    if not torch.isfinite(loss):
        raise SertkError(
            f"training loss is {loss.item()} at epoch {state.epoch + 1}, step {state.step + 1}; "
            "lower train.lr or look for NaN/inf in the features"
        )
    loop.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip is not None:
        nn.utils.clip_grad_norm_(loop.model.parameters(), config.grad_clip)
    loop.optimizer.step()
    state.step += 1
    return loss.item()


def _record(state: _State, config: TrainConfig, train_loss: float, valid, lr: float) -> None:
    history = state.history
    history["epoch"].append(state.epoch)
    history["train_loss"].append(train_loss)
    history["lr"].append(lr)
    for key in ("loss", "ua", "wa"):
        history[f"valid_{key}"].append(None if valid is None else valid[key])
    improved = valid is None or state.best_ua is None or valid["ua"] > state.best_ua
    if improved:
        state.best_ua = None if valid is None else valid["ua"]
        state.best_epoch, state.bad_epochs, state.plateau_bad = state.epoch, 0, 0
        return
    state.bad_epochs += 1
    state.plateau_bad += 1
    if config.scheduler == "plateau" and state.plateau_bad >= config.plateau_patience:
        state.lr_scale *= config.plateau_factor
        state.plateau_bad = 0
    if config.patience is not None and state.bad_epochs >= config.patience:
        state.stopped_early = True


def _evaluate(model, dataset, labels, batch_size, device) -> dict[str, float]:
    """Unweighted cross-entropy, UA and WA of ``model`` on ``dataset``."""
    model.eval()
    loss_sum, truths, preds = 0.0, [], []
    with torch.no_grad():
        for features, lengths, targets in _batches(dataset, batch_size):
            logits = model(features.to(device), lengths.to(device))
            targets = targets.to(device)
            loss_sum += nn.functional.cross_entropy(logits, targets, reduction="sum").item()
            truths.append(targets.cpu().numpy())
            preds.append(logits.argmax(dim=1).cpu().numpy())
    model.train()
    report = classification_report(np.concatenate(truths), np.concatenate(preds), labels)
    return {"loss": loss_sum / report["n"], "ua": report["ua"], "wa": report["wa"]}


def _learning_rate(config: TrainConfig, step: int, total_steps: int, scale: float) -> float:
    """Linear warm-up over ``warmup_steps`` times the cosine or plateau schedule."""
    warmup = config.warmup_steps
    factor = (step + 1) / warmup if step < warmup else 1.0
    if config.scheduler == "cosine":
        progress = min(1.0, max(0.0, (step - warmup) / max(1, total_steps - warmup)))
        cosine = 0.5 * (1.0 + math.cos(math.pi * progress))
        return factor * (config.min_lr + (config.lr - config.min_lr) * cosine)
    if config.scheduler == "plateau":
        return factor * max(config.min_lr, config.lr * scale)
    return factor * config.lr


# --- data ----------------------------------------------------------------------------------


def _batches(dataset: Sequence[Any], batch_size: int):
    for start in range(0, len(dataset), batch_size):
        yield collate([dataset[i] for i in range(start, min(start + batch_size, len(dataset)))])


def _dataset_labels(dataset: Sequence[Any], num_classes: int, name: str) -> list[int]:
    if len(dataset) == 0:
        raise CorpusError(f"{name} is empty; every fold needs utterances in train and valid")
    labels = getattr(dataset, "labels", None)
    if labels is None or len(labels) != len(dataset):
        labels = [dataset[i][1] for i in range(len(dataset))]
    try:
        labels = [operator.index(label) for label in labels]
    except TypeError:
        raise CorpusError(
            f"{name} labels must be class indices (int); got e.g. {labels[0]!r}; "
            "encode them with LabelMap.encode"
        ) from None
    bad = [label for label in labels if not 0 <= label < num_classes]
    if bad:
        raise CorpusError(
            f"{name} has class index {bad[0]}, outside 0..{num_classes - 1} for {num_classes} "
            "labels; encode labels with the experiment's LabelMap"
        )
    return labels


def _train_loader(dataset, labels: list[int], config: TrainConfig, generator: torch.Generator):
    sampler = None
    if config.balanced_sampling:
        counts = np.bincount(labels)
        weights = torch.tensor([1.0 / counts[label] for label in labels], dtype=torch.double)
        sampler = torch.utils.data.WeightedRandomSampler(
            weights, num_samples=len(labels), replacement=True, generator=generator
        )
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=config.batch_size,
        shuffle=sampler is None,
        sampler=sampler,
        collate_fn=collate,
        num_workers=config.num_workers,
        generator=generator,
    )


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available; use 'auto'")
    return torch.device(name)


# --- checkpoints ---------------------------------------------------------------------------


def _save_best(directory: Path, model: nn.Module, state: _State) -> None:
    tensors = {
        name: t.detach().cpu().contiguous().clone() for name, t in model.state_dict().items()
    }
    meta = {"epoch": state.epoch, "valid_ua": state.best_ua}
    _save_atomic(tensors, directory / "best.safetensors", {_META_KEY: json.dumps(meta)})


def _save_last(directory, model, optimizer, generator, state, fingerprint, device) -> None:
    tensors = {
        f"model/{k}": v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()
    }
    optimizer_state = optimizer.state_dict()
    scalars: dict[str, dict[str, Any]] = {}
    for pid, values in optimizer_state["state"].items():
        for key, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{pid}/{key}"] = value.detach().cpu().contiguous().clone()
            else:
                scalars.setdefault(str(pid), {})[key] = value
    numpy_state = np.random.get_state()
    tensors["rng/torch"] = torch.get_rng_state()
    tensors["rng/generator"] = generator.get_state()
    tensors["rng/numpy"] = torch.from_numpy(numpy_state[1].astype(np.int64))
    if device.type == "cuda":
        tensors["rng/cuda"] = torch.cuda.get_rng_state(device)
    meta = {
        "version": CHECKPOINT_VERSION,
        "state": dataclasses.asdict(state),
        "optimizer": {"param_groups": optimizer_state["param_groups"], "scalars": scalars},
        "rng": {
            "numpy": [numpy_state[0], *map(float, numpy_state[2:])],
            "python": random.getstate(),
        },
        **fingerprint,
    }
    text = json.dumps(meta)
    _save_atomic(tensors, directory / "last.safetensors", {_META_KEY: text})
    _write_text_atomic(directory / "last.json", json.dumps(json.loads(text), indent=1))


def _load_last(directory, model, optimizer, generator, fingerprint) -> _State:
    path = directory / "last.safetensors"
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            meta = json.loads(handle.metadata()[_META_KEY])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # a foreign or damaged file: say which, not a parser trace
        raise SertkError(f"cannot resume from {path}: {error}; delete it to start over") from None
    _check_resume(meta, fingerprint, path)
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model/")})
    opt_state: dict[int, dict[str, Any]] = {}
    for key, value in tensors.items():
        if key.startswith("optimizer/"):
            _, pid, name = key.split("/", 2)
            opt_state.setdefault(int(pid), {})[name] = value
    for pid, values in meta["optimizer"]["scalars"].items():
        opt_state.setdefault(int(pid), {}).update(values)
    groups = [
        {k: tuple(v) if isinstance(v, list) and k != "params" else v for k, v in group.items()}
        for group in meta["optimizer"]["param_groups"]
    ]
    optimizer.load_state_dict({"state": opt_state, "param_groups": groups})
    torch.set_rng_state(tensors["rng/torch"])
    generator.set_state(tensors["rng/generator"])
    if "rng/cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng/cuda"])
    name, pos, has_gauss, cached = meta["rng"]["numpy"]
    numpy_key = tensors["rng/numpy"].numpy().astype(np.uint32)
    np.random.set_state((name, numpy_key, int(pos), int(has_gauss), float(cached)))
    version, internal, gauss = meta["rng"]["python"]
    random.setstate((version, tuple(internal), gauss))
    return _State(**meta["state"])


def _check_resume(meta: dict, fingerprint: dict, path: Path) -> None:
    if meta.get("version") != CHECKPOINT_VERSION:
        raise SertkError(
            f"{path} has checkpoint version {meta.get('version')}; delete it to start over"
        )
    old, new = dict(meta["config"]), dict(fingerprint["config"])
    changes = [
        f"train.{key}: {old.get(key)!r} -> {value!r}"
        for key, value in new.items()
        if key not in _RESUME_FREE and old.get(key) != value
    ]
    for key in ("labels", "train_size", "valid_size"):
        if meta.get(key) != fingerprint[key]:
            changes.append(f"{key}: {meta.get(key)!r} -> {fingerprint[key]!r}")
    if changes:
        raise ConfigError(
            f"cannot resume from {path}: the run changed ({'; '.join(changes)}); "
            "restore the old settings or start over with resume=False"
        )


def _save_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write to a temporary file beside ``path``, flush it to disk, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        safetensors.torch.save_file(tensors, str(temporary), metadata=metadata)
        _fsync(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _write_text_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        temporary.write_text(text, encoding="utf-8")
        _fsync(temporary)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _fsync(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())
