"""Data-parallel training: the loop of ``train_model`` in N processes with torch DDP.

>>> with data_parallel(2):  # starts worker processes  # doctest: +SKIP
...     run_experiment(config)  # every neural fold trains on 2 processes

Inside ``data_parallel(n)``, ``train_model`` launches ``n`` worker processes (by default with
``torch.multiprocessing``, ``spawn``, on this machine; ``launch=`` can place them elsewhere, e.g.
``sertk.scale.ray_launcher`` on a Ray cluster). Each runs the same loop (``train_model`` with its ``rank``) with its
model wrapped in ``DistributedDataParallel`` (gloo on CPU, NCCL on CUDA, one GPU per rank):

- **The same optimisation as one process.** Every rank draws the same global batches of
  ``train.batch_size`` from the same seeded generator and trains on its share (items ``rank``,
  ``rank + n``, ...). The loss is summed per rank and divided by the batch's global size (or
  class-weight sum) gathered with one all-reduce, so the averaged gradient is exactly the
  one-process gradient of that batch; steps per epoch and the learning-rate schedule are
  unchanged. Only dropout masks (seeded per rank and epoch) and float summation order differ.
- **Rank 0 decides and writes.** It scores the validation speakers and broadcasts the result,
  so early stopping and the best epoch are one decision; it alone writes the checkpoints
  (atomic, as in one process); ``train_model`` in the calling process then reads the best
  weights and the history back, so run folders and bundles are those of a one-process run.

Each launch costs the start of ``n`` processes (a few seconds on CPU), once per trained model.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sertk.errors import ConfigError, SertkError

Launch = Callable[[int, "Payload"], None]


@dataclasses.dataclass(frozen=True)
class Plan:
    """How ``train_model`` trains inside :func:`data_parallel`."""

    world_size: int
    launch: Launch | None = None  # None: torch.multiprocessing on this machine


_PLAN: contextvars.ContextVar[Plan | None] = contextvars.ContextVar("sertk_ddp", default=None)


@contextlib.contextmanager
def data_parallel(world_size: int, *, launch: Launch | None = None) -> Iterator[Plan]:
    """Train every model in this block on ``world_size`` data-parallel processes.

    ``launch(world_size, payload)`` starts the workers, each of which must call
    :func:`run_rank` ``(payload)`` with a torch.distributed process group set up; the default
    spawns them on this machine. ``world_size=1`` without ``launch`` trains in this process.
    """
    if not isinstance(world_size, int) or isinstance(world_size, bool) or world_size < 1:
        raise ConfigError(f"data-parallel training needs >= 1 processes, got {world_size!r}")
    plan = Plan(world_size, launch) if world_size > 1 or launch is not None else None
    token = _PLAN.set(plan)
    try:
        yield plan
    finally:
        _PLAN.reset(token)


def active_plan() -> Plan | None:
    """The :class:`Plan` of the enclosing :func:`data_parallel` block, if any."""
    return _PLAN.get()


@dataclasses.dataclass
class Payload:
    """What every rank needs: ``train_model``'s arguments (copied into each process)."""

    model: Any
    train_set: Any
    valid_set: Any
    config: Any
    labels: list[str]
    out_dir: str
    progress: bool
    resume: bool
    threads: int | None  # torch threads per rank (None: leave the launcher's setting)


def train_parallel(plan: Plan, model, train_set, valid_set, *, config, labels: Sequence[str],
                   out_dir, progress: bool, resume: bool):  # fmt: skip
    """Run ``train_model``'s arguments on ``plan.world_size`` ranks; returns its TrainResult."""
    import torch

    from sertk.training.checkpoint import read_state
    from sertk.training.data import class_weights, dataset_labels
    from sertk.training.loop import result_of

    if config.batch_size < plan.world_size:
        raise ConfigError(
            f"train.batch_size {config.batch_size} is smaller than the {plan.world_size} "
            "data-parallel processes: every process needs a share of each batch"
        )
    train_labels = dataset_labels(train_set, len(labels), "train_set")
    threads = None if plan.launch else max(1, torch.get_num_threads() // plan.world_size)
    payload = Payload(model, train_set, valid_set, config, list(labels), str(out_dir),
                      progress, resume, threads)  # fmt: skip
    (plan.launch or spawn)(plan.world_size, payload)
    directory = Path(out_dir) / "checkpoint"
    weights = class_weights(train_labels, len(labels)) if config.class_weights else None
    return result_of(model, directory, read_state(directory), weights, "cpu")


# --- the worker side ----------------------------------------------------------------------


def run_rank(payload: Payload) -> None:
    """Train on this rank (the process group must be set up); rank 0 writes the checkpoints."""
    import torch
    import torch.distributed as dist

    from sertk.training.loop import train_model

    if payload.threads is not None:
        torch.set_num_threads(payload.threads)
    rank = Rank(dist.get_rank(), dist.get_world_size(), rank_device(payload.config.device))
    train_model(
        copy.deepcopy(payload.model), payload.train_set, payload.valid_set,
        config=payload.config, labels=payload.labels, out_dir=payload.out_dir,
        progress=payload.progress, resume=payload.resume, rank=rank,
    )  # fmt: skip


def rank_device(name: str) -> Any:
    """This rank's device: ``cuda:<local rank>`` when training on CUDA, else the CPU."""
    import torch

    cuda = name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())
    if not cuda:
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("train.device is 'cuda' but this worker has no CUDA device")
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)) % torch.cuda.device_count())
    torch.cuda.set_device(device)
    return device


@dataclasses.dataclass
class Rank:
    """One data-parallel worker: its rank, the world size and its device."""

    rank: int
    world_size: int
    device: Any

    def wrap(self, model: Any) -> Any:
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def loss(self, logits, targets, weight) -> tuple[Any, float, int]:
        """``(loss to backpropagate, global mean loss, global batch size)``: the rank's summed
        loss scaled so that DDP's gradient average is the gradient of the global batch mean."""
        import torch
        import torch.distributed as dist
        from torch.nn import functional

        from sertk.training.data import PAD

        summed = functional.cross_entropy(logits, targets, weight=weight, reduction="sum",
                                          ignore_index=PAD)  # fmt: skip
        real = targets[targets != PAD]
        norm = weight[real].sum() if weight is not None else torch.tensor(float(len(real)))
        totals = torch.stack([summed.detach().float(), norm.float().to(summed.device),
                              torch.tensor(float(len(real)), device=summed.device)])  # fmt: skip
        dist.all_reduce(totals)
        loss = summed * (self.world_size / totals[1])
        return loss, (totals[0] / totals[1]).item(), int(totals[2].item())

    def share(self, value: Any) -> Any:
        """Rank 0's ``value`` on every rank."""
        import torch.distributed as dist

        box = [value]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def seed(self, seed: int, epoch: int) -> int:
        return (seed * 1_000_003 + epoch * 1009 + self.rank) % (2**63)


# --- the default launcher: torch.multiprocessing on this machine ------------------------------


def spawn(world_size: int, payload: Payload) -> None:
    """Start ``world_size`` processes here (rendezvous through a file), wait for all of them."""
    import torch
    import torch.multiprocessing as mp

    device = payload.config.device
    cuda = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if cuda and world_size > torch.cuda.device_count():
        raise ConfigError(
            f"{world_size} data-parallel processes on CUDA need as many GPUs; this machine has "
            f"{torch.cuda.device_count()}"
        )
    with tempfile.TemporaryDirectory(prefix="sertk-ddp-") as folder:
        init = f"file://{folder}/rendezvous"
        try:
            mp.start_processes(_spawned, args=(world_size, init, "nccl" if cuda else "gloo",
                               payload), nprocs=world_size, start_method="spawn")  # fmt: skip
        except mp.ProcessRaisedException as error:
            raise SertkError(
                f"data-parallel training failed in a worker: {error_line(str(error))}"
            ) from None
        except mp.ProcessExitedException as error:
            raise SertkError(
                f"a data-parallel training process died ({error}); continue the run with "
                "`sertk train --resume RUN_DIR` (the last epoch's checkpoint is kept)"
            ) from None


def _spawned(rank: int, world_size: int, init: str, backend: str, payload: Payload) -> None:
    import torch.distributed as dist

    os.environ["LOCAL_RANK"] = str(rank)
    dist.init_process_group(backend, init_method=init, rank=rank, world_size=world_size)
    try:
        run_rank(payload)
    finally:
        dist.destroy_process_group()


def error_line(text: str) -> str:
    """The last line of a traceback that came from another process, without the exception's
    module path: ``FeatureError: unknown option ...`` (what to show instead of the trace)."""
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    last = lines[-1] if lines else str(text)
    kind, sep, message = last.partition(": ")
    if sep and " " not in kind:
        return f"{kind.rsplit('.', 1)[-1]}: {message}"
    return last
