"""Checkpoints of the training loop: safetensors files, atomic writes, exact resume.

``best.safetensors`` holds the best epoch's weights; ``last.safetensors`` the model, the
flattened AdamW state and the RNG states as tensors plus everything else (epoch, history,
optimiser structure, schedule, the run's fingerprint) as JSON metadata, so one ``os.replace``
commits a whole checkpoint. Never pickle.
"""

from __future__ import annotations

import dataclasses
import json
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.torch
import torch
from torch import nn

from sertk.config import TrainConfig, config_to_dict
from sertk.errors import ConfigError, SertkError

CHECKPOINT_VERSION = 1
META_KEY = "sertk_checkpoint"
# changing these between an interrupted run and its resume is harmless
RESUME_FREE = ("epochs", "patience", "num_workers", "device")


@dataclasses.dataclass
class State:
    """Progress of a training run, stored in ``last.safetensors``'s metadata."""

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


def save_best(directory: Path, model: nn.Module, state: State) -> None:
    tensors = {
        name: t.detach().cpu().contiguous().clone() for name, t in model.state_dict().items()
    }
    meta = {"epoch": state.epoch, "valid_ua": state.best_ua}
    _save_atomic(tensors, directory / "best.safetensors", {META_KEY: json.dumps(meta)})


def save_last(directory, model, optimizer, generator, state, fingerprint, device) -> None:
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
    _save_atomic(tensors, directory / "last.safetensors", {META_KEY: text})
    _write_text_atomic(directory / "last.json", json.dumps(json.loads(text), indent=1))


def load_last(directory, model, optimizer, generator, fingerprint) -> State:
    path = directory / "last.safetensors"
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            meta = json.loads(handle.metadata()[META_KEY])
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as error:  # a foreign or damaged file: say which, not a parser trace
        raise SertkError(f"cannot resume from {path}: {error}; delete it to start over") from None
    check_resume(meta, fingerprint, path)
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
    return State(**meta["state"])


def read_state(directory: Path) -> State:
    """The training progress stored in ``directory/last.safetensors`` (metadata only)."""
    path = Path(directory) / "last.safetensors"
    try:
        with safetensors.safe_open(str(path), framework="pt") as handle:
            meta = json.loads(handle.metadata()[META_KEY])
    except Exception as error:  # missing or damaged: say which file
        raise SertkError(f"cannot read the training state in {path}: {error}") from None
    return State(**meta["state"])


def check_resume(meta: dict, fingerprint: dict, path: Path) -> None:
    if meta.get("version") != CHECKPOINT_VERSION:
        raise SertkError(
            f"{path} has checkpoint version {meta.get('version')}; delete it to start over"
        )
    old, new = dict(meta["config"]), dict(fingerprint["config"])
    defaults = config_to_dict(TrainConfig())  # keys added since the checkpoint was written
    changes = [
        f"train.{key}: {old.get(key, defaults.get(key))!r} -> {value!r}"
        for key, value in new.items()
        if key not in RESUME_FREE and old.get(key, defaults.get(key)) != value
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
