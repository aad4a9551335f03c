"""The training loop: epochs of optimiser steps, validation, best-epoch checkpoints, resume."""

from __future__ import annotations

import dataclasses
import math
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
from sertk.errors import ConfigError, SertkError
from sertk.metrics import classification_report
from sertk.training import checkpoint, distributed
from sertk.training.checkpoint import State
from sertk.training.data import batches, class_weights, dataset_labels, train_loader


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


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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
    rank: distributed.Rank | None = None,
) -> TrainResult | None:
    """Train ``model`` (see the module docstring); returns it with the best epoch's weights.

    ``valid_set=None`` (final model on all data) trains all ``epochs`` and keeps the last.
    ``resume=True`` continues from ``out_dir/checkpoint/last.safetensors`` when present (and
    starts fresh otherwise); the result equals an uninterrupted run. ``on_epoch_end(epoch,
    history)`` is called after each epoch's checkpoint is written.

    Inside ``sertk.training.data_parallel(n)`` the same loop runs in ``n`` processes with torch
    DistributedDataParallel (see :mod:`sertk.training.distributed`); each of them calls this
    function with its ``rank``, trains on its share of each batch, and only rank 0 (which writes
    the checkpoints) returns a result.
    """
    plan = distributed.active_plan() if rank is None else None
    if plan is not None:
        if on_epoch_end is not None:
            raise ConfigError("on_epoch_end is not available in data-parallel training")
        return distributed.train_parallel(
            plan, model, train_set, valid_set, config=config, labels=labels, out_dir=out_dir,
            progress=progress, resume=resume,
        )  # fmt: skip
    labels = list(labels)
    train_labels = dataset_labels(train_set, len(labels), "train_set")
    if valid_set is not None:
        dataset_labels(valid_set, len(labels), "valid_set")
    elif config.scheduler == "plateau":
        raise ConfigError(
            "train.scheduler 'plateau' needs a validation set; use 'cosine' or 'none'"
        )
    device = _device(config.device) if rank is None else rank.device
    model.to(device)
    trained = model if rank is None else rank.wrap(model)  # the DDP wrapper syncs gradients
    weights = class_weights(train_labels, len(labels)) if config.class_weights else None
    criterion = nn.CrossEntropyLoss(weight=None if weights is None else torch.from_numpy(weights))
    criterion.to(device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    generator = torch.Generator()
    shard = None if rank is None else (rank.rank, rank.world_size)
    loader = train_loader(train_set, train_labels, config, generator, shard=shard)
    checkpoint_dir = Path(out_dir) / "checkpoint"
    fingerprint = {
        "config": config_to_dict(config),
        "labels": labels,
        "train_size": len(train_set),
        "valid_size": None if valid_set is None else len(valid_set),
    }
    if resume and (checkpoint_dir / "last.safetensors").exists():
        state = checkpoint.load_last(checkpoint_dir, model, optimizer, generator, fingerprint)
    else:
        seed_everything(config.seed)
        generator.manual_seed(config.seed)
        state = State()
    main = rank is None or rank.rank == 0  # the process that writes checkpoints
    loop = _Loop(trained, optimizer, criterion, loader, valid_set, config, labels, device,
                 progress and main, model, rank)  # fmt: skip
    while not state.stopped_early and state.epoch < config.epochs:
        _run_epoch(loop, state)
        if main:
            if state.best_epoch == state.epoch:
                checkpoint.save_best(checkpoint_dir, model, state)
            checkpoint.save_last(
                checkpoint_dir, model, optimizer, generator, state, fingerprint, device
            )
        if on_epoch_end is not None:
            on_epoch_end(state.epoch, state.history)
    return result_of(model, checkpoint_dir, state, weights, device) if main else None


def result_of(model: nn.Module, checkpoint_dir: Path, state: State, weights, device) -> TrainResult:
    """``model`` with the best checkpoint's weights, and the run's ``TrainResult``."""
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
    """What stays fixed during training (the mutable progress lives in ``State``)."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module
    loader: Any
    valid_set: Sequence[Any] | None
    config: TrainConfig
    labels: list[str]
    device: torch.device
    progress: bool
    core: nn.Module  # ``model`` itself, or the module a DDP ``model`` wraps
    rank: distributed.Rank | None = None


def _run_epoch(loop: _Loop, state: State) -> None:
    """Train one epoch, validate, and update history, best epoch, patience and plateau scale."""
    config = loop.config
    loop.model.train()
    loss_sum, seen = 0.0, 0
    set_epoch = getattr(loop.loader.dataset, "set_epoch", None)
    if set_epoch is not None:  # on-the-fly augmentation draws per (seed, epoch, item)
        set_epoch(state.epoch)
    if loop.rank is not None:  # independent dropout per rank, reproducible per epoch
        torch.manual_seed(loop.rank.seed(config.seed, state.epoch))
    desc = f"epoch {state.epoch + 1}/{config.epochs}"
    with tqdm(total=len(loop.loader), desc=desc, disable=not loop.progress, unit="batch") as bar:
        for features, lengths, targets in loop.loader:
            loss, count = _train_step(loop, state, features, lengths, targets)
            loss_sum, seen = loss_sum + loss * count, seen + count
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", refresh=False)
            bar.update(1)
        valid = None
        if loop.valid_set is not None:
            if loop.rank is None or loop.rank.rank == 0:
                valid = _evaluate(
                    loop.core, loop.valid_set, loop.labels, config.batch_size, loop.device
                )
            if loop.rank is not None:  # every rank takes rank 0's decisions
                valid = loop.rank.share(valid)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", valid_ua=f"{valid['ua']:.4f}")
    state.epoch += 1
    _record(state, config, loss_sum / seen, valid, loop.optimizer.param_groups[0]["lr"])


def _train_step(loop: _Loop, state: State, features, lengths, targets) -> tuple[float, int]:
    """One optimiser step on a padded batch; returns the batch's mean loss and size (over all
    ranks in data-parallel training)."""
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
    if loop.rank is None:
        loss = loop.criterion(logits, targets)
        mean, count = loss.item(), len(targets)
    else:
        loss, mean, count = loop.rank.loss(logits, targets, loop.criterion.weight)
    if not math.isfinite(mean):
        raise SertkError(
            f"training loss is {mean} at epoch {state.epoch + 1}, step {state.step + 1}; "
            "lower train.lr or look for NaN/inf in the features"
        )
    loop.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if config.grad_clip is not None:
        nn.utils.clip_grad_norm_(loop.model.parameters(), config.grad_clip)
    loop.optimizer.step()
    state.step += 1
    return mean, count


def _record(state: State, config: TrainConfig, train_loss: float, valid, lr: float) -> None:
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
        for features, lengths, targets in batches(dataset, batch_size):
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


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but no CUDA device is available; use 'auto'")
    return torch.device(name)
