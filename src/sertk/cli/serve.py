"""``sertk serve``: the REST API and web page for a model bundle (FastAPI + uvicorn).

    sertk serve                                   # the default model on http://127.0.0.1:8000
    sertk serve --model runs/emodb --port 9000 --max-upload-mb 50 --max-duration 1200

Open ``http://127.0.0.1:8000/`` for the web page (upload a file or record from the microphone)
and ``/docs`` for the API. The model is loaded once, before the port opens; all inference runs
on one worker thread that micro-batches concurrent requests (``--max-batch 1`` turns that off).
It listens on loopback unless ``--host`` says otherwise; there is no authentication, so put it
behind a proxy that has some before exposing it.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

from sertk.cli import options
from sertk.errors import ConfigError, SertkError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


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
    parser.add_argument("--max-upload-mb", type=float, default=20, metavar="MB",
                        help="largest accepted upload (default 20)")  # fmt: skip
    parser.add_argument("--max-duration", type=float, default=600, metavar="S",
                        help="longest accepted audio in seconds (default 600)")  # fmt: skip
    parser.add_argument("--max-batch", type=int, default=16, metavar="N",
                        help="most requests classified together (1: no micro-batching)")  # fmt: skip
    parser.add_argument("--batch-wait-ms", type=float, default=5, metavar="MS",
                        help="how long a batch waits for more requests (default 5)")  # fmt: skip
    parser.add_argument(
        "--worker-threads", type=int, metavar="N",
        help="CPU threads the inference worker's torch uses (default: torch's choice)",
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

    import uvicorn

    from sertk.recognizer import Recognizer
    from sertk.server import create_app

    recognizer = Recognizer.load(
        args.model, device=device, backend=args.backend, sha256=args.model_sha256
    )  # fails before the port opens
    if args.worker_threads is not None:
        import torch

        torch.set_num_threads(args.worker_threads)
    app = create_app(
        recognizer,
        max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration,
        max_batch=args.max_batch,
        batch_wait_ms=args.batch_wait_ms,
    )
    print(f"sertk serve: {recognizer!r}", file=sys.stderr)
    if args.host not in LOOPBACK:
        print(
            f"sertk serve: listening on {args.host}, reachable from other machines; the API has "
            "no authentication",
            file=sys.stderr,
        )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
    return 0
