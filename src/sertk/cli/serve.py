"""``sertk serve``: the REST API and web page for a model bundle (FastAPI + uvicorn).

    sertk serve                                   # the default model on http://127.0.0.1:8000
    sertk serve --model runs/emodb --port 9000 --max-upload-mb 50 --max-duration 1200

Open ``http://127.0.0.1:8000/`` for the web page (upload a file or record from the microphone)
and ``/docs`` for the API. Inference runs in worker processes, each with its own copy of the
model (``--workers``, default one per core; ``--long-workers`` more for recordings over 30 s),
loaded before the port opens; concurrent requests are micro-batched (``--max-batch 1`` turns
that off). Overload gets 503 (``--queue-depth``), slow requests 504 (``--request-timeout``),
slow clients 408. ``--api-key`` (or ``SERTK_API_KEY``) requires a key, ``--rate-limit`` bounds
each client, ``--allow-origin`` lets a web page of another origin call the API. It listens on
loopback unless ``--host`` says otherwise.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys

from sertk.cli import options
from sertk.errors import ConfigError, SertkError

LOOPBACK = ("127.0.0.1", "localhost", "::1")
# the numeric options: flag, type, default, metavar, help
NUMBERS = (
    ("--max-upload-mb", float, 20, "MB", "largest accepted upload (default 20)"),
    ("--max-duration", float, 600, "S", "longest accepted audio in seconds (default 600)"),
    ("--max-batch", int, 16, "N", "most requests classified together (1: no micro-batching)"),
    ("--batch-wait-ms", float, 5, "MS", "how long a batch waits for more requests (default 5)"),
    ("--workers", int, None, "N", "inference processes for short recordings (default: one per "
     "core; 0: inference inside the server process, on one thread)"),
    ("--long-workers", int, 1, "N", "processes for recordings over 30 s (default 1)"),
    ("--worker-threads", int, None, "N",
     "CPU threads of each worker's numpy/torch (default: cores / workers)"),
    ("--queue-depth", int, 64, "N", "requests that may wait; more get 503 + Retry-After (default 64)"),
    ("--request-timeout", float, 300, "S",
     "time budget of a request, queue included; then 504 (default 300)"),
    ("--header-timeout", float, 10, "S",
     "close connections whose request headers take longer (default 10)"),
    ("--body-timeout", float, 30, "S", "408 when an upload sends nothing for this long (default 30)"),
)  # fmt: skip


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "serve", help="serve a model over HTTP: REST API + web page (needs the 'serve' extra)"
    )
    parser.add_argument(
        "--model", default="default", metavar="BUNDLE",
        help="model bundle folder, run folder, or 'default' (the shipped model)",
    )  # fmt: skip
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    for flag, kind, default, metavar, text in NUMBERS:
        parser.add_argument(flag, type=kind, default=default, metavar=metavar, help=text)
    parser.add_argument(
        "--api-key", default=os.environ.get("SERTK_API_KEY") or None, metavar="KEY",
        help="require this key (header X-API-Key or Authorization: Bearer) on /v1; "
        "default: $SERTK_API_KEY, which keeps it out of the process list",
    )  # fmt: skip
    parser.add_argument("--rate-limit", metavar="N/s|N/min",
                        help="requests per client (by address), e.g. 10/s; 429 beyond")  # fmt: skip
    parser.add_argument(
        "--allow-origin", action="append", default=[], metavar="ORIGIN",
        help="let web pages of ORIGIN (https://host[:port]) call the API (CORS); repeatable",
    )  # fmt: skip
    parser.add_argument("--workers-threads", type=int, help=argparse.SUPPRESS)  # old spelling
    options.add_model_pin(parser)
    options.add_device(parser)
    parser.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        default="torch",
        help="onnx: run a folder written by `sertk export` with onnxruntime",
    )
    parser.add_argument("--log-level", default="info",
                        choices=("critical", "error", "warning", "info", "debug"))  # fmt: skip
    parser.set_defaults(run=run)


def _check_installed() -> None:

    missing = [
        m for m in ("fastapi", "uvicorn", "multipart") if importlib.util.find_spec(m) is None
    ]
    if missing:
        raise SertkError(
            f"sertk serve needs {', '.join(missing)}: install the extra with "
            "pip install 'sertk[serve]'"
        )


def run(args: argparse.Namespace) -> int:

    _check_installed()
    device = options.check_device(args.device or "cpu")
    if args.workers_threads is not None:
        if args.worker_threads is not None:
            raise ConfigError("give --worker-threads once (not --workers-threads too)")
        options.warn("serve", f"--workers-threads is now --worker-threads {args.workers_threads}")
        args.worker_threads = args.workers_threads
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be between 0 and 65535, got {args.port}")
    if args.worker_threads is not None and args.worker_threads < 1:
        raise ConfigError(f"--worker-threads must be >= 1, got {args.worker_threads}")
    if args.header_timeout <= 0:
        raise ConfigError(f"--header-timeout must be > 0 seconds, got {args.header_timeout:g}")

    import uvicorn
    from uvicorn.logging import DefaultFormatter

    from sertk.recognizer import Recognizer
    from sertk.server import create_app, uvicorn_config

    recognizer = Recognizer.load(
        args.model, device=device, backend=args.backend, sha256=args.model_sha256
    )  # fails before the port opens
    if args.workers == 0 and args.worker_threads is not None and "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(args.worker_threads)
    app = create_app(
        recognizer,
        max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration,
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
        workers=args.workers,
        long_workers=args.long_workers,
        worker_threads=args.worker_threads,
        queue_depth=args.queue_depth,
        request_timeout=args.request_timeout,
        body_timeout=args.body_timeout,
        api_key=args.api_key,
        rate_limit=args.rate_limit,
        allow_origins=tuple(args.allow_origin),
    )
    handler = logging.StreamHandler()  # the server's own lines, formatted as uvicorn's
    handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s"))
    logging.getLogger("sertk").addHandler(handler)
    logging.getLogger("sertk").setLevel(args.log_level.upper())
    print(f"sertk serve: {recognizer!r}", file=sys.stderr)
    if args.host not in LOOPBACK and not args.api_key:
        print(
            f"sertk serve: listening on {args.host}, reachable from other machines, without an "
            "API key (--api-key or SERTK_API_KEY)",
            file=sys.stderr,
        )
    config = uvicorn_config(app, host=args.host, port=args.port,
                            header_timeout=args.header_timeout, log_level=args.log_level)  # fmt: skip
    uvicorn.Server(config).run()
    return 0
