"""A worker process: ``python -m sertk.server.worker_main --bundle PATH [--threads N] [--nice N]``.

Started by :class:`sertk.server.processes.ProcessWorker`. It loads its own
:class:`~sertk.recognizer.Recognizer`, says ``{"ready": true}`` on its stdout (or ``{"ready":
false, "error": ...}``), then answers job messages read from stdin
(:func:`sertk.server.worker.handle`) until stdin closes. Everything it prints or logs goes to
stderr, the server's log; stdout carries messages only.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Any

from sertk.errors import SertkError
from sertk.recognizer import Recognizer
from sertk.server.protocol import ChannelClosed, read_message, write_message
from sertk.server.worker import handle


def serve_jobs(recognizer: Any, inbox: int, outbox: int) -> None:
    """Answer job messages from ``inbox`` on ``outbox`` until ``inbox`` closes."""
    while True:
        try:
            header, blobs = read_message(inbox)
        except ChannelClosed:
            return
        write_message(outbox, {"results": handle(recognizer, header, blobs)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sertk.server.worker_main")
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--backend", default="torch")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--nice", type=int, default=0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server stops its workers itself
    outbox = os.dup(1)
    os.dup2(2, 1)  # anything a library prints goes to the log, never into the message stream
    logging.basicConfig(level=logging.INFO, format="sertk worker %(process)d: %(message)s")
    if args.nice:
        os.nice(args.nice)
    try:
        recognizer = Recognizer.load(
            args.bundle, device=args.device, backend=args.backend, threads=args.threads
        )
    except SertkError as error:
        write_message(outbox, {"ready": False, "error": str(error)})
        return 1
    if args.threads and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(args.threads)
    write_message(outbox, {"ready": True, "pid": os.getpid()})
    serve_jobs(recognizer, sys.stdin.fileno(), outbox)
    return 0


if __name__ == "__main__":
    sys.exit(main())
