"""Load test of ``sertk serve`` on loopback: requests/s, p50/p99 latency, deliberate 503s,
failures and the memory of the server with its workers, by number of clients.

Starts the server as a subprocess (``python -m sertk serve`` on 127.0.0.1, a free port; its
defaults: one worker process per core, a queue of ``--queue-depth`` requests) for a bundle
(``--model``: a path, or ``"default"``, the shipped model; when that is not installed, an
untrained reference-size bundle -- 64-band log-mel + GRU-attention, 3 s input -- is built in a
temporary folder), then for each number of clients (default 1, 10, 50, 100) has that many
client threads, each with its own keep-alive ``httpx.Client``, POST a 3 s WAV clip to
``/v1/predict`` until ``--requests`` answers (default 200) or ``--cap`` seconds (default 120).
Latency is per answered request (send to parsed JSON); requests/s is answers over the level's
wall time. A 503 is the server's deliberate answer to a full queue and is counted apart
("503"); a failure is any other status or a transport error. The resident memory (RSS) of the
server and all its worker processes is read from /proc after the warm-up and after each level:
it should stay flat (the last level runs twice, so growth would show). This runs with micro-batching (``--max-batch 16 --batch-wait-ms 5``) and
without (``--max-batch 1``) unless ``--modes`` says otherwise, and prints the ratio of their
throughputs: compare within one run, as timings on a shared machine vary run to run. The
clients run on the same machine as the server and compete with it for the CPU.

Run: ``python benchmarks/bench_server_load.py [--model default] [--clients 1 10 50 100]
[--requests 200] [--cap 120] [--queue-depth 64] [--modes batching] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server_common import (  # noqa: E402
    clip,
    load,
    machine,
    model_path,
    rss_mb,
    start_server,
    stop_server,
    wav_bytes,
)

MODES = {"batching": ("16", "5"), "no batching": ("1", "0")}


def run_mode(mode: str, model: str, data: bytes, args, folder: Path) -> list[dict]:
    max_batch, wait_ms = MODES[mode]
    options = ["--max-batch", max_batch, "--batch-wait-ms", wait_ms,
               "--queue-depth", str(args.queue_depth)]  # fmt: skip
    process, base = start_server(model, options, folder / "server.log")
    rows = []
    try:
        load(base, data, 4, 40, args.cap)  # warm-up: first calls (allocator, lazy imports)
        warm = rss_mb(process.pid)
        print(f"{mode}: RSS after warm-up {warm:.0f} MB (server + workers)", flush=True)
        for clients in [*args.clients, args.clients[-1]]:  # the last level twice: RSS flat?
            before = httpx.get(f"{base}/healthz").json()["inference"]
            row = load(base, data, clients, args.requests, args.cap)
            after = httpx.get(f"{base}/healthz").json()["inference"]
            batches = after["batches"] - before["batches"]
            row["mean_batch"] = (after["requests"] - before["requests"]) / max(batches, 1)
            row["rss_mb"], row["rss_warm_mb"] = rss_mb(process.pid), warm
            rows.append({"mode": mode, **row})
            print(format_row(rows[-1]), flush=True)
    finally:
        stop_server(process)
    return rows


def format_row(row: dict) -> str:
    p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:8.1f}"
    p99 = "-" if row["p99_ms"] is None else f"{row['p99_ms']:8.1f}"
    return (
        f"{row['mode']:<12} {row['concurrency']:>7} {row['answered']:>8} {row['refused']:>5} "
        f"{row['failed']:>6} {row['rps']:>8.1f} {p50:>8} {p99:>8} {row['mean_batch']:>6.1f} "
        f"{row['rss_mb']:>7.0f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 10, 50, 100])
    parser.add_argument("--requests", type=int, default=200, help="answers per level")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds per level at most")
    parser.add_argument("--queue-depth", type=int, default=64)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    data = wav_bytes(clip(3.0))
    with tempfile.TemporaryDirectory() as folder:
        model, about = model_path(args.model, Path(folder))
        print(f"model: {about}\nclip: 3.0 s WAV, {len(data)} bytes; {machine()}")
        print(f"{'mode':<12} {'clients':>7} {'answered':>8} {'503':>5} {'failed':>6} "
              f"{'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'batch':>6} {'RSS MB':>7}")  # fmt: skip
        rows = [r for mode in args.modes for r in run_mode(mode, model, data, args, Path(folder))]
    if len(args.modes) == 2:
        print("\nthroughput with / without micro-batching (same run):")
        for clients in args.clients:
            on, off = (next(r for r in rows if r["mode"] == m and r["concurrency"] == clients)
                       for m in MODES)  # fmt: skip
            print(f"  {clients:>3} clients: {on['rps'] / off['rps']:.2f}x")
    for mode in args.modes:
        levels = [r for r in rows if r["mode"] == mode]
        print(f"{mode}: RSS after warm-up {levels[0]['rss_warm_mb']:.0f} MB, after each level "
              + " / ".join(f"{r['rss_mb']:.0f}" for r in levels) + " MB")  # fmt: skip
    failed = sum(r["failed"] for r in rows)
    print(f"failed requests (not counting deliberate 503s): {failed}; {machine()}")
    for row in rows:
        for failure in row["failures"]:
            print(f"  {row['mode']} c={row['concurrency']}: {failure}")
    if args.json:
        args.json.write_text(json.dumps({"model": about, "rows": rows}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
