"""Torch fp32 vs onnxruntime fp32 / int8 (and torch dynamic int8): speed, size and agreement.

For each bundle (``--bundle PATH``, repeatable; ``--hubert-base`` adds a full-size HuBERT-base
with random weights + an untrained gru_attention head; ``--tiny-logmel`` a small logmel
gru_attention bundle) it exports ONNX fp32 and int8 bundles with ``sertk.export.export_onnx``
(parity-checked) into a temporary folder, then runs the whole inference path from the waveform
(the bundle's extractor -> model -> probabilities) on seeded 3 s clips through four backends:

- torch fp32: ``SslEncoder`` / numpy extractor + the bundle's scorer (what ``Recognizer`` runs);
- torch int8: the same with ``sertk.export.quantize_torch`` on the encoder and the head;
- ORT fp32 / ORT int8: ``OnnxSslEncoder`` / numpy extractor + the ONNX bundle's scorer.

Reported: ms per 3 s clip at batch 1 and 8 (median of repeats), size on disk of what each
backend loads, max |probability difference| and lowest cosine of probability rows against torch
fp32, argmax agreement, all as ratios against torch fp32 measured in the same run. With
``--trained BUNDLE --splits RUN/splits.json --corpus emodb --corpus-dir DIR`` it also scores
the fold's test speakers (``--fold``, default the bundle's own) with every backend: UA, WA.

Run: ``python benchmarks/bench_onnx.py --hubert-base --tiny-logmel [--threads 1]``. Timings vary
+-20 % run to run on shared machines; compare the ratios of one run, and use 1 thread when busy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from sertk.bundle import load_bundle, save_bundle
from sertk.export import export_onnx, quantize_torch
from sertk.models import build_model

BACKENDS = ("torch fp32", "torch int8", "ORT fp32", "ORT int8")


def median_ms(step: Callable[[], object], *, repeats: int, budget_s: float) -> float:
    """Median wall time of ``step()`` in ms after one warm-up call; stops once over budget."""
    step()
    times: list[float] = []
    started = time.perf_counter()
    while len(times) < repeats and (len(times) < 3 or time.perf_counter() - started < budget_s):
        tick = time.perf_counter()
        step()
        times.append((time.perf_counter() - tick) * 1000)
    return statistics.median(times)


def clips(count: int, *, seconds: float = 3.0, rate: int = 16000) -> list[np.ndarray]:
    """Seeded clips: a few sines plus noise, float32 ``[samples]``."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * rate)) / rate
    out = []
    for _ in range(count):
        tones = sum(np.sin(2 * np.pi * f * t) for f in rng.uniform(100, 1000, size=3))
        out.append((0.1 * tones + 0.05 * rng.normal(size=t.size)).astype(np.float32))
    return out


def backends(source: Path, fp32: Path, int8: Path, threads: int) -> dict[str, tuple]:
    """name -> (extractor, scorer) for the four backends."""
    bundle = load_bundle(source)
    result = {"torch fp32": (bundle.build_extractor(), bundle.build_scorer())}
    extractor, scorer = bundle.build_extractor(), bundle.build_scorer()
    if hasattr(extractor, "model"):  # SslEncoder
        extractor.model = quantize_torch(extractor.model)
    scorer.forward.model = quantize_torch(scorer.forward.model)
    result["torch int8"] = (extractor, scorer)
    for name, path in (("ORT fp32", fp32), ("ORT int8", int8)):
        onnx_bundle = load_bundle(path, backend="onnx")
        result[name] = (
            onnx_bundle.build_extractor(threads=threads),
            onnx_bundle.build_scorer(threads=threads),
        )
    return result


def disk_sizes(source: Path, fp32: Path, int8: Path) -> dict[str, float | None]:
    """MB each backend loads: torch = head weights (+ the SSL checkpoint), ORT = the graphs."""
    document = json.loads((source / "bundle.json").read_text())
    total = (source / "model.safetensors").stat().st_size
    if document["features"].get("name") == "ssl":
        folder = Path(document["features"]["model"])
        total += sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    sizes: dict[str, float | None] = {"torch fp32": total / 1e6, "torch int8": None}
    for name, path in (("ORT fp32", fp32), ("ORT int8", int8)):
        sizes[name] = sum(p.stat().st_size for p in path.glob("*.onnx")) / 1e6
    return sizes


def predict(extractor, scorer, signals: list[np.ndarray]) -> np.ndarray:
    batch = getattr(extractor, "extract_batch", None)
    features = batch(signals, 16000) if batch else [extractor(s, 16000) for s in signals]
    return scorer.score([{(0, None): f} for f in features]).probabilities


def bench_bundle(source: Path, work: Path, args: argparse.Namespace) -> None:
    started = time.perf_counter()
    name = f"{source.parent.name}/{source.name}"
    folder = work / f"export-{len(list(work.glob('export-*')))}"
    fp32 = export_onnx(source, folder / "fp32", threads=args.threads)
    int8 = export_onnx(source, folder / "int8", quantize="int8", threads=args.threads)
    parity = json.loads((fp32 / "bundle.json").read_text())["onnx"]["parity"]
    print(f"\n## {name}: exported fp32 + int8 in {time.perf_counter() - started:.0f} s")
    print(
        f"export parity (fp32 vs torch): head max|dp| {parity['head']['max_abs_probabilities']:.2g}"
        + (
            f", encoder rel {parity['encoder']['max_rel_hidden']:.2g}"
            if "encoder" in parity
            else ""
        )
    )
    runs = backends(source, fp32, int8, args.threads)
    sizes = disk_sizes(source, fp32, int8)
    audio = clips(max(8, args.clips))
    extractor = runs["torch fp32"][0]
    if not hasattr(extractor, "model"):  # numpy features: the same for every backend
        ms = median_ms(lambda: extractor(audio[0], 16000), repeats=args.repeats, budget_s=5)
        print(f"of which feature extraction (numpy, every backend): {ms:.1f} ms per clip")
    print(
        "| backend | ms/clip bs1 | ratio | ms/clip bs8 | ratio | MB on disk | ratio "
        "| max abs dp | min cosine | argmax agree |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    base: dict[str, float] = {}
    reference = None
    for name in BACKENDS:
        one, eight, probabilities = measure(*runs[name], audio, args)
        if reference is None:
            reference, base = probabilities, {"one": one, "eight": eight, "mb": sizes[name]}
        gap = float(np.abs(probabilities - reference).max())
        norms = np.linalg.norm(probabilities, axis=1) * np.linalg.norm(reference, axis=1)
        cosine = float(np.min((probabilities * reference).sum(axis=1) / norms))
        agree = float(np.mean(probabilities.argmax(1) == reference.argmax(1)))
        mb = sizes[name]
        size = "n/a (in memory) | -" if mb is None else f"{mb:.1f} | {mb / base['mb']:.2f}"
        print(
            f"| {name} | {one:.1f} | {one / base['one']:.2f} | {eight:.1f} | "
            f"{eight / base['eight']:.2f} | {size} | {gap:.2g} | {cosine:.5f} | {agree:.0%} |"
        )


def measure(extractor, scorer, audio: list[np.ndarray], args: argparse.Namespace):
    """(ms per clip at batch 1, ms per clip at batch 8, probabilities of all clips)."""
    one = median_ms(
        lambda: predict(extractor, scorer, audio[:1]), repeats=args.repeats, budget_s=args.budget
    )
    eight = median_ms(
        lambda: predict(extractor, scorer, audio[:8]), repeats=args.repeats, budget_s=args.budget
    )
    return one, eight / 8, predict(extractor, scorer, audio)


def fold_accuracy(args: argparse.Namespace, work: Path) -> None:
    """UA/WA of every backend on the test speakers of one fold of a real corpus."""
    from sertk.corpora import LabelMap, scan_corpus
    from sertk.features.cache import extract_utterances
    from sertk.metrics import classification_report

    source = Path(args.trained)
    bundle = load_bundle(source)
    fold_name = args.fold or (bundle.extra or {}).get("fold")
    folds = {f["name"]: f for f in json.loads(Path(args.splits).read_text())["folds"]}
    test = set(folds[fold_name]["test"])
    label_map = LabelMap.from_dict(bundle.label_map)
    utterances = [
        u
        for u in scan_corpus(args.corpus, args.corpus_dir).utterances
        if u.id in test and label_map.target(u.label) is not None
    ]
    truth = [label_map.target(u.label) for u in utterances]
    fp32 = export_onnx(source, work / "trained-fp32", threads=args.threads)
    int8 = export_onnx(source, work / "trained-int8", quantize="int8", threads=args.threads)
    runs = backends(source, fp32, int8, args.threads)
    print(f"\n## accuracy: {source} on fold {fold_name} ({len(utterances)} test utterances)")
    print("| backend | UA | WA | argmax agree with torch fp32 |\n|---|---|---|---|")
    reference = None
    for name in BACKENDS:
        extractor, scorer = runs[name]
        features = extract_utterances(
            utterances, extractor, preprocess=bundle.build_preprocess(), progress=False
        )
        predicted = scorer.score([{(0, None): f} for f in features]).probabilities.argmax(1)
        reference = predicted if reference is None else reference
        report = classification_report(
            truth, [scorer.labels[i] for i in predicted], list(scorer.labels)
        )
        print(
            f"| {name} | {report['ua']:.3f} | {report['wa']:.3f} | "
            f"{np.mean(predicted == reference):.1%} |"
        )


def make_bundle(folder: Path, *, hubert_base: bool) -> Path:
    """A random full-size HuBERT-base + gru_attention bundle, or a tiny logmel one."""
    labels = ["neutral", "happy", "sad", "angry"]
    label_map = {"name": None, "labels": labels, "mapping": {x: x for x in labels}}
    torch.manual_seed(0)
    if hubert_base:
        import transformers

        from sertk.features import build_extractor

        transformers.HubertModel(transformers.HubertConfig()).save_pretrained(folder / "hubert")
        features = build_extractor({"name": "ssl", "model": str(folder / "hubert")})
        model = build_model("gru_attention", input_dim=768, num_classes=4)
        name = "hubert-base-gru"
    else:
        features = {"name": "logmel", "n_mels": 40}
        model = build_model("gru_attention", input_dim=40, num_classes=4, hidden=32, layers=1)
        name = "tiny-logmel-gru"
    return save_bundle(
        folder / name,
        model=model.eval(),
        model_name="gru_attention",
        labels=labels,
        label_map=label_map,
        features=features,
        preprocess={"sampling_rate": 16000},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", action="append", default=[], help="bundle to measure")
    parser.add_argument("--hubert-base", action="store_true", help="add a random HuBERT-base")
    parser.add_argument("--tiny-logmel", action="store_true", help="add a tiny logmel bundle")
    parser.add_argument("--threads", type=int, default=1, help="torch and onnxruntime threads")
    parser.add_argument("--clips", type=int, default=8, help="clips for the agreement figures")
    parser.add_argument("--repeats", type=int, default=10, help="timed repeats per figure")
    parser.add_argument("--budget", type=float, default=20.0, help="seconds per timed figure")
    parser.add_argument("--trained", help="trained bundle to score on a real fold")
    parser.add_argument("--splits", help="splits.json of the run the trained bundle came from")
    parser.add_argument("--fold", help="fold name (default: the bundle's extra.fold)")
    parser.add_argument("--corpus", default="emodb", help="corpus adapter name")
    parser.add_argument("--corpus-dir", help="corpus folder (e.g. ../shared/corpora/emodb)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s); timings per 3 s clip")
    with tempfile.TemporaryDirectory(prefix="bench_onnx_") as tmp:
        work = Path(tmp)
        bundles = [Path(b) for b in args.bundle]
        if args.tiny_logmel:
            bundles.append(make_bundle(work, hubert_base=False))
        if args.hubert_base:
            bundles.append(make_bundle(work, hubert_base=True))
        for source in bundles:
            bench_bundle(source, work, args)
        if args.trained:
            fold_accuracy(args, work)


if __name__ == "__main__":
    main()
