"""Live latency and CPU load: a file played in real time through ``StreamingEngine``.

A recording (``--file``, or a seeded synthetic one: voiced stretches with a moving pitch and a
4 Hz syllable rhythm, separated by pauses) is played by ``FileSource(realtime=True)`` in 0.1 s
blocks, as a microphone delivers them. For every result, the latency is measured from outside
the engine: from the moment the block holding the window's last sample was handed to the engine
to the moment the result had been rendered as the terminal panel (``sertk listen``'s display).
The CPU load is the process's CPU time (all threads) over the wall time of the listening run.

The first result comes once a full window has arrived, so "sound -> shown" counts the blocks
from then on. Runs once per ``--hops`` value with the model, then once with a no-op model (gate,
buffer and display only) as the baseline, then an overload run: a model that takes
``--slow-ms`` per window at a 0.1 s hop, to show that a worker slower than the audio skips to the
newest window, stays current (how far the analysed window ends behind the audio that had arrived
when the model was called) and accounts for every hop (analysed + skipped = due). These
real-time figures live here, not in the tests: they depend on the machine's scheduling. The model is ``--model`` (default "default"); when "default" is
not shipped, a randomly initialised stand-in bundle of the same shape as a trained one is built
(``--fallback logmel``: log-mel 64 + CNN-LSTM as in recipes/emodb_logmel.yaml; ``hubert``:
full-size HuBERT-base + mean-pool as in the hubert recipes). Timings vary run to run on shared
machines: compare within one run.

Run: ``python benchmarks/bench_live.py [--model PATH] [--fallback logmel|hubert] [--seconds 20]
[--hops 0.5] [--slow-ms 350] [--threads N] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from sertk.errors import SertkError
from sertk.live import FileSource, StreamingEngine
from sertk.live.display import render_panel

RATE = 16000
EMODB7 = ["neutral", "happy", "sad", "angry", "fearful", "disgust", "boredom"]


def synthetic_speech(seconds: float, *, seed: int = 0) -> np.ndarray:
    """Voiced stretches (harmonics of a drifting f0, 4 Hz amplitude rhythm) and pauses."""
    rng = np.random.default_rng(seed)
    pieces, total = [], 0.0
    while total < seconds:
        voiced = rng.uniform(1.5, 3.5)
        t = np.arange(round(voiced * RATE)) / RATE
        f0 = rng.uniform(110, 240) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
        phase = 2 * np.pi * np.cumsum(f0) / RATE
        voice = sum(np.sin(k * phase) / k for k in range(1, 8))
        rhythm = 0.5 * (1 - np.cos(2 * np.pi * 4 * t))
        pause = np.zeros(round(rng.uniform(0.5, 1.5) * RATE))
        pieces += [0.1 * voice * rhythm, pause]
        total += voiced + len(pause) / RATE
    signal = np.concatenate(pieces)[: round(seconds * RATE)]
    return (signal + rng.normal(0, 3e-4, signal.size)).astype(np.float32)


def stand_in_bundle(kind: str, folder: Path) -> Path:
    """A randomly initialised bundle shaped like a trained one (see the module docstring)."""
    import torch

    from sertk.bundle import save_bundle
    from sertk.features import build_extractor
    from sertk.models import MODELS

    torch.manual_seed(0)
    if kind == "hubert":
        from transformers import HubertConfig, HubertModel, Wav2Vec2FeatureExtractor

        HubertModel(HubertConfig()).save_pretrained(folder / "hubert")
        Wav2Vec2FeatureExtractor(
            feature_size=1, sampling_rate=RATE, padding_value=0.0, do_normalize=True
        ).save_pretrained(folder / "hubert")
        extractor = build_extractor({"name": "ssl", "model": str(folder / "hubert")})
        model = MODELS["mean_pool"](extractor.dim, len(EMODB7), hidden=256)
    else:
        extractor = build_extractor({"name": "logmel", "n_mels": 64})
        hparams = {"channels": [64, 128], "lstm_hidden": 128, "dropout": 0.3}
        model = MODELS["cnn_lstm"](extractor.dim, len(EMODB7), **hparams)
    return save_bundle(
        folder / "bundle",
        model=model.eval(),
        model_name=model.name,
        labels=EMODB7,
        label_map={"name": "emodb7", "labels": EMODB7, "mapping": {x: x for x in EMODB7}},
        features=extractor,
        preprocess={"sampling_rate": RATE, "duration": 3.0, "crop": "start"},
    )


def load_recognizer(args: argparse.Namespace, folder: Path):
    from sertk.recognizer import Recognizer

    try:
        return Recognizer.load(args.model), str(args.model)
    except SertkError as error:
        if args.model != "default":
            raise
        print(f"'default' is not available ({error}); using a {args.fallback} stand-in")
        return Recognizer.load(stand_in_bundle(args.fallback, folder)), f"stand-in {args.fallback}"


class StampedSource:
    """``FileSource`` that notes when the block ending at each sample was handed over."""

    def __init__(self, source: FileSource) -> None:
        self.source, self.sampling_rate, self.stamps = source, source.sampling_rate, {}

    def __iter__(self):
        total = 0
        for block in self.source:
            total += len(block)
            self.stamps[total] = time.monotonic()
            yield block

    def close(self) -> None:
        self.source.close()


def listen(path: Path, predict, labels, *, window: float, hop: float) -> dict:
    """One real-time run: latencies to "shown", skipped windows, CPU over wall time."""
    source = StampedSource(FileSource(path, realtime=True, block=0.1))
    shown: list[tuple[int, float]] = []  # (window end sample, monotonic time rendered)

    def on_result(result) -> None:
        panel = "\n".join(render_panel(result, labels))  # the work the terminal display does
        if panel:
            shown.append((round(result.time * RATE), time.monotonic()))

    engine = StreamingEngine(
        predict, labels=labels, window=window, hop=hop, on_result=on_result, history=None
    )
    cpu, wall = time.process_time(), time.perf_counter()
    engine.run(source)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    stats = engine.stats
    ends = np.array([end for end, _ in shown])
    # window end -> shown: the engine's processing latency (display included)
    processing = [at - source.stamps[end] for end, at in shown if end in source.stamps]
    # any sound -> first shown: a block waits for the next analysed window that contains it
    # (from the first full window on: nothing is shown before it, by design)
    sound = []
    for end, handed in source.stamps.items():
        if end < round(window * RATE):
            continue
        index = int(np.searchsorted(ends, end))
        if index < len(shown):
            sound.append(shown[index][1] - handed)
    ms = lambda values, q: 1000 * float(np.percentile(values, q))  # noqa: E731
    return {
        "hop_s": hop,
        "results": stats["results"],
        "speech": stats["speech"],
        "skipped": stats["skipped"],
        "inference_mean_ms": 1000 * stats["mean_inference_s"],
        "window_end_to_shown_median_ms": ms(processing, 50),
        "window_end_to_shown_p95_ms": ms(processing, 95),
        "sound_to_shown_median_ms": ms(sound, 50),
        "sound_to_shown_max_ms": ms(sound, 100),
        "cpu_percent_of_one_core": 100 * cpu / wall,
        "wall_s": wall,
    }


def overload(path: Path, labels, *, window: float, delay_s: float, hop: float = 0.1) -> dict:
    """A model slower than the audio, in real time: skipped windows, how far each analysed
    window ends behind the audio fed when the model was called, and the hop accounting."""
    behind: list[int] = []

    def predict(signal, rate):
        behind.append(engine.stats["samples"])  # audio fed when the model is called
        time.sleep(delay_s)
        return np.full(len(labels), 1 / len(labels))

    engine = StreamingEngine(
        predict, labels=labels, window=window, hop=hop, vad=False, history=None
    )
    results = engine.run(FileSource(path, realtime=True, block=0.05))
    lags = [fed - round(r.time * RATE) for fed, r in zip(behind, results, strict=False)]
    due = int((engine.stats["samples"] - round(window * RATE)) // round(hop * RATE)) + 1
    stats = engine.stats
    return {
        "model_ms": 1000 * delay_s,
        "hop_s": hop,
        "results": stats["results"],
        "skipped": stats["skipped"],
        "due_windows": due,
        "max_behind_ms": 1000 * max(lags) / RATE,
        "buffer_bytes": stats["buffer_bytes"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--fallback", choices=["logmel", "hubert"], default="logmel")
    parser.add_argument("--file", type=Path, help="a recording (default: synthetic speech)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--hops", default="0.5", help="comma-separated hops, e.g. 0.5,0.1")
    parser.add_argument("--slow-ms", type=float, default=350.0,
                        help="the overload run's model time per window (default 350)")  # fmt: skip
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recognizer, name = load_recognizer(args, folder)
        path = args.file or folder / "speech.wav"
        if args.file is None:
            sf.write(path, synthetic_speech(args.seconds), RATE)
        window = recognizer.preprocess.duration or 3.0
        warm = np.random.default_rng(0).normal(0, 0.1, round(window * RATE)).astype(np.float32)
        for _ in range(3):  # first calls pay for lazy initialisation
            recognizer.predict_signal(warm, RATE)
        labels = recognizer.labels
        runs = [
            {"model": name, **listen(path, recognizer.predict_signal, labels, window=window, hop=h)}
            for h in map(float, args.hops.split(","))
        ]
        idle = listen(path, lambda s, r: np.full(len(labels), 1 / len(labels)), labels,
                      window=window, hop=float(args.hops.split(",")[0]))  # fmt: skip
        runs.append({"model": "no-op (baseline)", **idle})
        slow = overload(path, labels, window=window, delay_s=args.slow_ms / 1000)
    print(f"torch threads {torch.get_num_threads()}, window {window:g} s, {args.seconds:g} s audio")
    report(runs)
    print(
        f"overload: a {slow['model_ms']:g} ms model every {slow['hop_s']:g} s: {slow['results']} "
        f"analysed + {slow['skipped']} skipped = {slow['results'] + slow['skipped']} of "
        f"{slow['due_windows']} windows due; analysed windows ended at most "
        f"{slow['max_behind_ms']:.0f} ms behind the audio at the call (goal: a hop + two 50 ms "
        f"blocks); buffer {slow['buffer_bytes']} bytes"
    )
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "overload": slow}, indent=2))
    return 0


def report(runs: list[dict]) -> None:
    print(
        f"{'model':<20} {'hop':>4} {'results':>7} {'skipped':>7} {'infer':>6} "
        f"{'end>shown med':>13} {'p95':>6} {'sound>shown med':>15} {'max':>6} {'CPU %':>6}"
    )
    for r in runs:
        print(
            f"{r['model']:<20} {r['hop_s']:>4g} {r['results']:>7} {r['skipped']:>7} "
            f"{r['inference_mean_ms']:>6.1f} {r['window_end_to_shown_median_ms']:>13.1f} "
            f"{r['window_end_to_shown_p95_ms']:>6.1f} {r['sound_to_shown_median_ms']:>15.1f} "
            f"{r['sound_to_shown_max_ms']:>6.1f} {r['cpu_percent_of_one_core']:>6.1f}"
        )
    print("ms throughout. end>shown: the block holding a window's last sample handed to the engine")
    print("-> its result rendered. sound>shown: any block handed over -> the first result that")
    print("includes it rendered (goal: max <= hop + 150 ms). CPU %: process CPU / wall time.")


if __name__ == "__main__":
    sys.exit(main())
