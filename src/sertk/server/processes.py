"""The server's handle on one inference worker: a process of its own, or the server itself.

- :class:`ProcessWorker` starts ``python -m sertk.server.worker_main`` (its own Recognizer, loaded
  from the bundle path), sends it jobs on its stdin and reads answers on its stdout
  (:mod:`sertk.server.protocol`). When the process dies mid-job (killed, out of memory, a
  crashing decoder), :meth:`~ProcessWorker.run` raises :class:`WorkerCrashed` for that job only;
  the pool starts a new process. A job nobody waits for any more, or one past its hard deadline,
  is stopped by killing the process.
- :class:`LocalWorker` runs jobs on the calling thread with a Recognizer of the server
  (``workers=0``: no processes; a running job cannot be stopped, its result is dropped).
"""

from __future__ import annotations

import logging
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sertk.errors import SertkError
from sertk.server.protocol import ChannelClosed, frames, read_message
from sertk.server.worker import handle

log = logging.getLogger("sertk.server")
POLL_S = 0.1  # how often a waiting job checks whether it was abandoned or is past its deadline
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


class WorkerCrashed(SertkError):
    """The worker running a job stopped before answering (the job's answer is a 500)."""


class WorkerStopped(WorkerCrashed):
    """The pool stopped a worker on purpose: its job was abandoned or ran past its deadline."""


class WorkerFailed(SertkError):
    """A worker process could not start (its model did not load)."""


class ProcessWorker:
    """One ``python -m sertk.server.worker_main`` process (see the module docstring).

    ``threads``: CPU threads for its numpy/torch/onnxruntime; ``nice``: added to its CPU
    niceness (the long-recording lane runs below the short requests).
    """

    def __init__(
        self,
        bundle: str | os.PathLike,
        *,
        device: str = "cpu",
        backend: str = "torch",
        threads: int = 1,
        nice: int = 0,
        startup_timeout: float = 120.0,
    ) -> None:
        self.command = [
            sys.executable, "-m", "sertk.server.worker_main", "--bundle", str(Path(bundle)),
            "--device", device, "--backend", backend, "--threads", str(threads),
            "--nice", str(nice),
        ]  # fmt: skip
        self.environment = {**os.environ, **dict.fromkeys(THREAD_VARIABLES, str(threads))}
        self.startup_timeout = startup_timeout
        self.process: subprocess.Popen | None = None

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        """Start the process and wait until its model is loaded; WorkerFailed if it is not."""
        self.process = subprocess.Popen(
            self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=self.environment,
            start_new_session=True,  # Ctrl-C reaches the server, which stops its workers
        )  # fmt: skip
        if not self._readable(time.monotonic() + self.startup_timeout):
            self.kill()
            raise WorkerFailed(f"a worker did not load its model in {self.startup_timeout:g} s")
        try:
            reply, _ = read_message(self.process.stdout.fileno())
        except (ChannelClosed, ValueError):
            raise WorkerFailed(f"a worker exited while starting ({self._exit()})") from None
        if not reply.get("ready"):
            self.kill()
            raise WorkerFailed(f"a worker could not load its model: {reply.get('error')}")

    def run(
        self,
        header: dict[str, Any],
        blobs: list[bytes],
        *,
        abandoned: Callable[[], bool],
        deadline: float,
    ) -> list[dict[str, Any]]:
        """Send one job, wait for its results; WorkerCrashed when the process stops,
        WorkerStopped when it is killed because ``abandoned()`` turned true or it ran past
        ``deadline`` (``time.monotonic``)."""
        assert self.process is not None and self.process.stdin and self.process.stdout

        def check() -> None:
            if abandoned():
                self.kill()
                raise WorkerStopped("its client left or ran out of time; the work was stopped")
            if time.monotonic() > deadline:
                self.kill()
                raise WorkerStopped("the job ran past the server's time budget; stopped")

        try:
            self._send(frames(header, blobs), check)
            while not self._readable(time.monotonic() + POLL_S):
                check()
            reply, _ = read_message(self.process.stdout.fileno())
        except (OSError, ChannelClosed, ValueError):
            raise WorkerCrashed(self._crash_message()) from None
        results = reply.get("results")
        if not isinstance(results, list) or len(results) != len(header["names"]):
            self.kill()
            raise WorkerCrashed("the inference worker answered out of step; it was replaced")
        return results

    def _send(self, parts: list[bytes], check: Callable[[], None]) -> None:
        """Write ``parts`` to the worker's stdin (non-blocking), calling ``check()`` while
        the pipe is full: a worker that stops reading cannot hold the lane's thread."""
        fd = self.process.stdin.fileno()
        os.set_blocking(fd, False)
        for part in parts:
            view = memoryview(part)
            while view:
                if not select.select([], [fd], [], POLL_S)[1]:
                    check()
                    continue
                try:
                    view = view[os.write(fd, view) :]
                except BlockingIOError:
                    continue

    def _readable(self, until: float) -> bool:
        fd = self.process.stdout.fileno()
        while True:
            ready, _, _ = select.select(
                [fd], [], [], max(0.0, min(POLL_S, until - time.monotonic()))
            )
            if ready:
                return True
            if time.monotonic() >= until or self.process.poll() is not None:
                return bool(select.select([fd], [], [], 0)[0])

    def _crash_message(self) -> str:
        return (
            f"the inference worker handling this request stopped ({self._exit()}); it is being "
            "replaced and other requests are unaffected"
        )

    def _exit(self) -> str:
        try:
            code = self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.kill()
            return "it stopped answering"
        if code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit status {code}"

    def kill(self) -> None:
        if self.alive:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 5.0) -> None:
        """Close its stdin (it exits after the job in hand), kill it if it does not."""
        if self.process is None:
            return
        try:
            self.process.stdin.close()
            self.process.wait(timeout)
        except (OSError, subprocess.TimeoutExpired):
            self.kill()
        self.process.stdout.close()


class LocalWorker:
    """Runs jobs with the server's own ``recognizer``, on the lane's thread (``workers=0``)."""

    alive = True

    def __init__(self, recognizer: Any) -> None:
        self.recognizer = recognizer
        self.pid = os.getpid()

    def start(self) -> None:
        pass

    def run(self, header, blobs, *, abandoned, deadline) -> list[dict[str, Any]]:
        return handle(self.recognizer, header, blobs)

    def kill(self) -> None:
        pass

    def stop(self, timeout: float = 5.0) -> None:
        pass
