"""``sertk train --engine ray``: the data-parallel workers of ``sertk.training`` on Ray Train.

``ray_training(n)`` connects to the cluster once for the whole run and makes every
``train_model`` call inside it a Ray Train ``TorchTrainer`` fit of ``n`` workers (Ray sets up the
torch process group: gloo on CPU, NCCL on GPU, one GPU per worker), each running
:func:`sertk.training.distributed.run_rank`. The loop, the checkpoints and the run folder are
those of ``sertk train --ddp n``; only the placement differs. Ray restarts a failed worker group
up to twice (``FailureConfig``); the restarted workers continue from the last epoch's checkpoint,
which is why the run folder must be on storage every node sees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

from sertk.errors import ClusterError
from sertk.scale.cluster import connect, require_ray, root_message

MAX_FAILURES = 2  # worker-group restarts per trained model


@contextlib.contextmanager
def ray_training(world_size: int, *, address: str | None = None, device: str = "auto",
                 temp_dir: str | None = None) -> Iterator[None]:  # fmt: skip
    """Train every model in this block on ``world_size`` Ray Train workers (see module doc).

    ``device`` is the recipe's ``train.device``: ``cuda`` puts each worker on a GPU, ``auto``
    does when the cluster has ``world_size`` GPUs, ``cpu`` never does.
    """
    from sertk.training import data_parallel

    require_ray()
    with connect(address, workers=world_size, temp_dir=temp_dir) as ray:
        gpus = ray.cluster_resources().get("GPU", 0)
        use_gpu = device.startswith("cuda") or (device == "auto" and gpus >= world_size)
        if use_gpu and gpus < world_size:
            raise ClusterError(
                f"{world_size} training workers on CUDA need {world_size} GPUs; the cluster "
                f"has {gpus:g}: lower --ddp or set train.device=cpu"
            )
        with data_parallel(world_size, launch=RayLauncher(use_gpu=use_gpu)):
            yield


@dataclasses.dataclass(frozen=True)
class RayLauncher:
    """A ``data_parallel`` launcher: one ``TorchTrainer.fit`` per trained model."""

    use_gpu: bool

    def __call__(self, world_size: int, payload) -> None:
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer

        out_dir = Path(payload.out_dir).resolve()
        if not payload.resume:  # a fresh fit starts without a checkpoint ...
            (out_dir / "checkpoint" / "last.safetensors").unlink(missing_ok=True)
        # ... so that workers restarted by Ray resume from the last epoch's checkpoint
        payload = dataclasses.replace(payload, resume=True, out_dir=str(out_dir))
        storage = out_dir / ".ray-train"
        trainer = TorchTrainer(
            _worker,
            train_loop_config={"payload": payload},
            scaling_config=ScalingConfig(num_workers=world_size, use_gpu=self.use_gpu),
            torch_config=TorchConfig(backend="nccl" if self.use_gpu else "gloo"),
            run_config=RunConfig(
                name="fit", storage_path=str(storage),
                failure_config=FailureConfig(max_failures=MAX_FAILURES),
            ),
        )  # fmt: skip
        try:
            trainer.fit()
        except Exception as error:  # Ray wraps the workers' errors in its own types
            raise ClusterError(
                f"Ray Train failed after {MAX_FAILURES} restarts: {root_message(error)}; "
                "continue the run with `sertk train --resume RUN_DIR --engine ray --ddp N`"
            ) from None
        finally:
            shutil.rmtree(storage, ignore_errors=True)


def _worker(config: dict) -> None:
    from sertk.training.distributed import run_rank

    run_rank(config["payload"])
