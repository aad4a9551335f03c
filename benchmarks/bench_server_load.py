"""Load test of ``sertk serve`` on loopback: requests/s, p50/p99 latency and failures by concurrency,
with micro-batching on and off.

Starts the server as a subprocess (``python -m sertk serve`` on 127.0.0.1, a free port) for a
bundle (``--model``: a path, or ``"default"``, the shipped model; when that is not installed, an
untrained reference-size bundle -- 64-band log-mel + GRU-attention, 3 s input -- is built in a
temporary folder), then for each concurrency (default 1, 10, 50) has that many client threads,
each with its own keep-alive ``httpx.Client``, POST a 3 s WAV clip to ``/v1/predict`` until
``--requests`` answers (default 200) or ``--cap`` seconds (default 60) have passed. Latency is
per request (send to parsed JSON); requests/s is answers over the level's wall time; a failure
is any status other than 200 or a transport error. This runs twice, with micro-batching
(``--max-batch 16 --batch-wait-ms 5``) and without (``--max-batch 1``), and prints the ratio
of their throughputs: compare within one run, as timings on a shared machine vary run to run.
The clients run on the same machine as the server and compete with it for the CPU.

Run: ``python benchmarks/bench_server_load.py [--model default] [--concurrency 1 10 50]
[--requests 200] [--cap 60] [--threads 1] [--json out.json]``. Loopback only.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import soundfile as sf

RATE = 16000
LABELS = ["neutral", "happy", "sad", "angry"]
MODES = {"batching": ("16", "5"), "no batching": ("1", "0")}


def clip_bytes(seconds: float = 3.0) -> bytes:
    """A 3 s gliding tone with noise bursts as WAV bytes."""
    rng = np.random.default_rng(0)
    t = np.arange(round(seconds * RATE)) / RATE
    pitch = 180 + 60 * np.sin(2 * np.pi * 0.5 * t)
    signal = 0.3 * np.sin(2 * np.pi * np.cumsum(pitch) / RATE) + 0.02 * rng.standard_normal(t.size)
    buffer = io.BytesIO()
    sf.write(buffer, signal.astype(np.float32), RATE, format="WAV")
    return buffer.getvalue()


def model_path(name: str, folder: Path) -> tuple[str, str]:
    """The bundle to serve and what it is: ``name`` if it resolves, else a built fallback."""
    from sertk.errors import BundleError
    from sertk.recognizer import resolve_bundle

    try:
        return str(resolve_bundle(name)), name
    except BundleError as error:
        if name != "default":
            raise
        print(f"note: {error}\nnote: serving an untrained log-mel + GRU-attention bundle instead")
    import torch

    from sertk.audio import Preprocess
    from sertk.bundle import save_bundle
    from sertk.features import build_extractor
    from sertk.models import build_model

    torch.manual_seed(0)
    model = build_model("gru_attention", input_dim=64, num_classes=len(LABELS))
    path = save_bundle(
        folder / "logmel-gru", model=model, model_name="gru_attention", labels=LABELS,
        label_map={"name": None, "labels": LABELS, "mapping": {x: x for x in LABELS}},
        features=build_extractor({"name": "logmel", "n_mels": 64}),
        preprocess=Preprocess(duration=3.0),
    )  # fmt: skip
    return str(path), "untrained logmel-64 + gru_attention (hidden 256, 2 layers), 3 s input"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model: str, max_batch: str, wait_ms: str, threads: int, log: Path):
    port = free_port()
    command = [sys.executable, "-m", "sertk", "serve", "--model", model, "--host", "127.0.0.1",
               "--port", str(port), "--max-batch", max_batch, "--batch-wait-ms", wait_ms,
               "--worker-threads", str(threads), "--log-level", "warning"]  # fmt: skip
    process = subprocess.Popen(command, stdout=log.open("w"), stderr=subprocess.STDOUT)
    base, deadline = f"http://127.0.0.1:{port}", time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the server did not answer /healthz within 120 s")


def load(base: str, data: bytes, concurrency: int, requests: int, cap: float) -> dict:
    """``concurrency`` threads POSTing ``data`` until ``requests`` answers or ``cap`` seconds."""
    lock = threading.Lock()
    issued = [0]
    latencies: list[float] = []
    failures: list[str] = []
    start = time.perf_counter()

    def client() -> None:
        with httpx.Client(base_url=base, timeout=120) as session:
            while True:
                with lock:
                    if issued[0] >= requests or time.perf_counter() - start > cap:
                        return
                    issued[0] += 1
                began = time.perf_counter()
                try:
                    response = session.post("/v1/predict", files={"file": ("clip.wav", data)})
                    ok = response.status_code == 200 and "label" in response.json()
                    problem = None if ok else f"HTTP {response.status_code}: {response.text[:200]}"
                except httpx.HTTPError as error:
                    problem = f"{type(error).__name__}: {error}"
                with lock:
                    if problem is None:
                        latencies.append(time.perf_counter() - began)
                    else:
                        failures.append(problem)

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    ordered = sorted(latencies)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else None  # noqa: E731
    return {
        "concurrency": concurrency, "answered": len(latencies), "failed": len(failures),
        "seconds": wall, "rps": len(latencies) / wall,
        "p50_ms": 1000 * statistics.median(ordered) if ordered else None,
        "p99_ms": 1000 * pick(0.99) if ordered else None, "failures": failures[:5],
    }  # fmt: skip


def run_mode(mode: str, model: str, data: bytes, args, folder: Path) -> list[dict]:
    max_batch, wait_ms = MODES[mode]
    process, base = start_server(model, max_batch, wait_ms, args.threads, folder / "server.log")
    rows = []
    try:
        load(base, data, 2, 10, args.cap)  # warm-up: first calls (allocator, lazy imports)
        for concurrency in args.concurrency:
            before = httpx.get(f"{base}/healthz").json()["inference"]
            row = load(base, data, concurrency, args.requests, args.cap)
            after = httpx.get(f"{base}/healthz").json()["inference"]
            batches = after["batches"] - before["batches"]
            row["mean_batch"] = (after["requests"] - before["requests"]) / max(batches, 1)
            rows.append({"mode": mode, **row})
            print(format_row(rows[-1]), flush=True)
    finally:
        process.terminate()
        process.wait(30)
    return rows


def format_row(row: dict) -> str:
    p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:8.1f}"
    p99 = "-" if row["p99_ms"] is None else f"{row['p99_ms']:8.1f}"
    return (
        f"{row['mode']:<12} {row['concurrency']:>5} {row['answered']:>8} {row['failed']:>6} "
        f"{row['rps']:>8.1f} {p50:>8} {p99:>8} {row['mean_batch']:>10.1f}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--requests", type=int, default=200, help="answers per concurrency level")
    parser.add_argument("--cap", type=float, default=60.0, help="seconds per concurrency level")
    parser.add_argument("--threads", type=int, default=1, help="server's torch threads")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    data = clip_bytes()
    with tempfile.TemporaryDirectory() as folder:
        model, about = model_path(args.model, Path(folder))
        print(f"model: {about}\nclip: 3.0 s WAV, {len(data)} bytes; {os.cpu_count()} CPUs; "
              f"server torch threads: {args.threads}")  # fmt: skip
        print(f"{'mode':<12} {'conc':>5} {'answered':>8} {'failed':>6} {'req/s':>8} "
              f"{'p50 ms':>8} {'p99 ms':>8} {'mean batch':>10}")  # fmt: skip
        rows = [r for mode in MODES for r in run_mode(mode, model, data, args, Path(folder))]
    print("\nthroughput with / without micro-batching (same run):")
    for concurrency in args.concurrency:
        on, off = (next(r for r in rows if r["mode"] == m and r["concurrency"] == concurrency)
                   for m in MODES)  # fmt: skip
        print(f"  {concurrency:>3} clients: {on['rps'] / off['rps']:.2f}x")
    failed = sum(r["failed"] for r in rows)
    print(f"failed requests: {failed}")
    for row in rows:
        for failure in row["failures"]:
            print(f"  {row['mode']} c={row['concurrency']}: {failure}")
    if args.json:
        args.json.write_text(json.dumps({"model": about, "rows": rows}, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
