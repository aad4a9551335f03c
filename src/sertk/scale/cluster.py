"""Connecting to a Ray cluster: a local one started for the job, or a running one by address.

``connect`` is the only place sertk calls ``ray.init``. Without an address it starts a private
local cluster (its own temporary session folder, ``workers + 1`` logical CPUs so the read stage
always has a slot next to the actors, a modest object store) and shuts it down afterwards. With
``"auto"`` it joins the cluster started on this machine with ``ray start --head``; with
``HOST:PORT`` (the head's GCS port, 6379 by default) it first checks that the port answers, so an
unreachable address fails in seconds with a precise message instead of Ray's endless retries.
When the calling process is already connected (``ray.init`` done by a notebook or a test), that
connection is used and left open.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import Any

from sertk.errors import ClusterError, ConfigError

INSTALL_HINT = "pip install 'sertk[ray]' (Ray Data and Ray Train)"
CONNECT_TIMEOUT = 10.0  # seconds for the TCP check of HOST:PORT (the whole check stays < 30 s)
LOCAL_OBJECT_STORE = 512 * 1024**2  # bytes; decoded audio and small result rows flow through it


def require_ray() -> Any:
    """The ``ray`` module, or ClusterError saying how to install it."""
    try:
        import ray
        import ray.data  # noqa: F401 (the extra installs both; check both)
    except ImportError as error:
        raise ClusterError(
            f"--engine ray needs Ray, which is not installed ({error}); install it with "
            f"{INSTALL_HINT}, or run without --engine ray"
        ) from None
    return ray


def check_address(address: str, *, timeout: float = CONNECT_TIMEOUT) -> None:
    """ClusterError unless a Ray cluster answers at ``HOST:PORT`` within about ``2 * timeout``
    seconds: the port must accept a TCP connection, then Ray's GCS must answer there (a proxy
    or another service on the port is refused too). ``"auto"`` is left to Ray (it fails at once
    when no cluster was started on this machine); ``ray://`` client addresses get the TCP check.
    """
    if address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ClusterError(
            f"--address {address!r} is not HOST:PORT (the head node's address, e.g. "
            "10.0.0.5:6379, as printed by `ray start --head`) or 'auto'"
        )
    start = time.monotonic()
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as error:
        waited = time.monotonic() - start
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} ({error or 'timed out'}, after "
            f"{waited:.1f} s): start it there with `ray start --head --port {port}`, check the "
            "host, port and firewall, or leave out --address to run on a local cluster"
        ) from None
    if "://" not in address:
        _ask_gcs(address, timeout=timeout)


def _ask_gcs(address: str, *, timeout: float) -> None:
    """Ask the GCS at ``address`` for its cluster id (what ``ray health-check`` does), in a
    thread so a server that never answers costs ``timeout`` seconds, not Ray's retries."""
    import threading

    try:
        from ray._raylet import GcsClient
    except ImportError:  # a Ray without it: ray.init will tell
        return
    outcome: list[BaseException | None] = []

    def ask() -> None:
        try:
            GcsClient(address=address)
            outcome.append(None)
        except Exception as error:  # noqa: BLE001 (reported below)
            outcome.append(error)

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout)
    if not outcome or outcome[0] is not None:
        why = f"{outcome[0]}" if outcome else f"no answer within {timeout:g} s"
        raise ClusterError(
            f"cannot reach the Ray cluster at {address}: the port is open but no Ray GCS "
            f"answers there ({why}); give the address `ray start --head` printed (port 6379 "
            "by default), or leave out --address to run on a local cluster"
        )


@contextlib.contextmanager
def connect(
    address: str | None = None,
    *,
    workers: int | None = None,
    temp_dir: str | None = None,
    object_store_memory: int = LOCAL_OBJECT_STORE,
) -> Iterator[Any]:
    """Yield the ``ray`` module connected to a cluster (see the module docstring).

    ``workers`` sizes a local cluster (default: this machine's CPU count); ``temp_dir`` holds a
    local cluster's session files (default: a fresh folder, removed afterwards).
    """
    ray = require_ray()
    if address is not None:
        check_address(address)
    if ray.is_initialized():
        _check_same_cluster(ray, address)
        _quiet(ray)
        yield ray
        return
    owned_dir = None
    if address is None:
        if temp_dir is None:
            temp_dir = owned_dir = tempfile.mkdtemp(prefix="sertk-ray-")
        cpus = max(os.cpu_count() or 1, (workers or 1) + 1)
        options: dict[str, Any] = {
            "num_cpus": cpus, "object_store_memory": object_store_memory, "_temp_dir": temp_dir,
        }  # fmt: skip
    else:
        options = {"address": address}
    try:
        ray.init(
            include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False, **options
        )
    except (ConnectionError, RuntimeError, ValueError) as error:
        if owned_dir:
            shutil.rmtree(owned_dir, ignore_errors=True)
        where = "a local cluster" if address is None else f"the Ray cluster at {address}"
        raise ClusterError(f"cannot connect to {where}: {error}") from None
    started = set(threading.enumerate())
    try:
        _quiet(ray)
        yield ray
    finally:
        _settle(started)
        with contextlib.suppress(Exception):  # a failing disconnect must not hide the cause
            ray.shutdown()
        if owned_dir:
            shutil.rmtree(owned_dir, ignore_errors=True)


# threads that stay parked for the process's life without touching Ray
_PARKED = ("Prefetcher", "tqdm_monitor")


def _settle(started: set[threading.Thread], timeout: float = 10.0) -> None:
    """Let the threads a job started (Ray Data's executor, batch formatting) finish before the
    connection closes: after an interruption one may still be winding down, and a thread that
    touches Ray after ``ray.shutdown()`` makes Ray end the whole process."""
    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        if thread in started or thread is threading.current_thread() or thread.name in _PARKED:
            continue
        thread.join(max(0.0, deadline - time.monotonic()))


def _check_same_cluster(ray: Any, address: str | None) -> None:
    """An explicit ``HOST:PORT`` must be the cluster this process is already connected to."""
    if address is None or address == "auto":
        return
    current = ray.get_runtime_context().gcs_address
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    here, _, here_port = current.rpartition(":")
    same_host = host == here or {host, here} <= {"127.0.0.1", "localhost", _own_ip()}
    if port != here_port or not same_host:
        raise ClusterError(
            f"this process is already connected to the Ray cluster at {current}, not {address}; "
            "call ray.shutdown() first, or leave out --address"
        )


def _own_ip() -> str:
    try:
        return socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"


def _quiet(ray: Any) -> None:
    """sertk prints its own progress (files/s); Ray Data's bars and plan banners would interleave."""
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    context.print_on_execution_start = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    # its "Progress bars disabled" notice is about the line above: sertk draws its own
    logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)


def cluster_slots(ray: Any, *, gpus_per_worker: float = 0.0) -> int:
    """How many workers fit the connected cluster at once: its GPUs / ``gpus_per_worker`` when
    workers need GPUs, else its CPUs less one (kept for reading)."""
    resources = ray.cluster_resources()
    if gpus_per_worker > 0:
        gpus = resources.get("GPU", 0.0)
        if gpus < gpus_per_worker:
            raise ClusterError(
                f"the workers need {gpus_per_worker} GPU each but the cluster has {gpus:g}; "
                "use --device cpu, or join nodes with GPUs"
            )
        return max(1, int(gpus // gpus_per_worker))
    return max(1, int(resources.get("CPU", 1)) - 1)


def worker_options(*, gpus_per_worker: float) -> dict[str, Any]:
    """``map_batches`` resources of one worker actor: one CPU, plus GPUs when asked for."""
    options: dict[str, Any] = {"num_cpus": 1}
    if gpus_per_worker > 0:
        options["num_gpus"] = gpus_per_worker
    return options


def gpus_for(device: str | None, gpus_per_worker: float | None) -> float:
    """GPUs per worker: ``gpus_per_worker`` (default 1) with a CUDA ``device``, else 0."""
    if gpus_per_worker is not None and gpus_per_worker < 0:
        raise ConfigError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker}")
    if not str(device or "cpu").startswith("cuda"):
        if gpus_per_worker:
            raise ConfigError("--gpus-per-worker needs --device cuda")
        return 0.0
    return 1.0 if gpus_per_worker is None else float(gpus_per_worker)


def block_count(count: int, *, workers: int, batch_size: int) -> int:
    """Input blocks for ``count`` items: one per batch (a Ray task each), batches of at most
    ``batch_size`` items yet small enough that every worker gets a share of a short job."""
    batch = max(1, min(batch_size, -(-count // max(1, workers))))
    return max(1, -(-count // batch))


@dataclasses.dataclass
class Timing:
    """Wall times of one Ray job, as seen by the driver."""

    seconds: float = 0.0  # the whole job
    startup: float = 0.0  # until the first results: scheduling, actor start, model load, batch 1
    first: int = 0  # items in those first results

    def rate(self, items: int) -> float:
        """Items per second over the whole job."""
        return items / self.seconds if self.seconds > 0 else 0.0

    def steady_rate(self, items: int) -> float:
        """Items per second once results flow (``items`` minus the first ones, after startup)."""
        span = self.seconds - self.startup
        return (items - self.first) / span if span > 0 and items > self.first else 0.0


def stream(dataset: Any, timing: Timing, *, total: int, desc: str, progress: bool) -> Iterator:
    """The dataset's result blocks (numpy dicts) as they arrive, with a files/s progress bar,
    recording ``timing``."""
    from tqdm.auto import tqdm

    start = time.perf_counter()
    # prefetch_batches=0: hand each block on as it arrives (a prefetch holds one back)
    blocks = iter(dataset.iter_batches(batch_size=None, batch_format="numpy", prefetch_batches=0))
    try:
        with tqdm(total=total, unit="file", desc=desc, disable=not progress) as bar:
            while (batch := _next_block(blocks)) is not None:
                count = len(next(iter(batch.values())))
                if not timing.first:
                    timing.startup, timing.first = time.perf_counter() - start, count
                yield batch
                bar.update(count)
    finally:  # interrupted too: stop Ray Data's executor before the connection goes
        close = getattr(blocks, "close", None)
        if close is not None:
            close()
    timing.seconds = time.perf_counter() - start


def _next_block(blocks: Iterator) -> Any:
    """The next result block, None at the end; a failed job (e.g. workers that cannot load the
    model: a path missing on their node) becomes a ClusterError with the workers' own message."""
    try:
        return next(blocks)
    except StopIteration:
        return None
    except Exception as error:  # Ray's exception types wrap the worker's traceback
        raise ClusterError(
            f"the Ray job failed in a worker: {root_message(error)}; on a multi-node cluster "
            "check that every node sees the same paths and has the same packages"
        ) from None


def root_message(error: BaseException) -> str:
    """The worker's own error, from the last line of a Ray exception's text."""
    from sertk.training.distributed import error_line

    return error_line(str(error)) or type(error).__name__
