"""One cross-validation training epoch from cached features vs re-running the encoder each epoch.

The runner (``sertk.experiment``) extracts SSL features of every utterance once, through the
``FeatureCache``, and every epoch of every fold trains the head on those arrays. The public
reference implementation instead runs the frozen encoder inside the training loop, so each
epoch decodes the audio and re-encodes every clip. This times one epoch (train + validation) of
each on ``--files`` EmoDB clips cropped to ``--duration`` seconds, with the reference head
(``gru_attention``, hidden 256, 2 layers) and a random HuBERT saved with ``save_pretrained``
and loaded through ``SslEncoder``: a small config by default (4 layers, 256 wide), full-size
HuBERT-base with ``--full``. The one-off extraction (cold cache) and reloading a warm cache
are reported too. Timings vary run to run on shared machines: compare the ratios of one run.

Run: ``python benchmarks/bench_cv_epoch.py [--files 40] [--full] [--threads 2]``.
Needs ``../shared/corpora/emodb`` (or ``$SERTK_CORPORA``); exits cleanly without it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sertk.audio import Preprocess, load_audio
from sertk.config import TrainConfig
from sertk.corpora import LabelMap, Utterance
from sertk.experiment.fitting import FeatureSet
from sertk.features.cache import FeatureCache, extract_utterances
from sertk.features.ssl import SslEncoder
from sertk.models import build_model
from sertk.training import collate, fit_normalization, seed_everything, train_model

LABELS = LabelMap.preset("emodb7")
SMALL = {
    "hidden_size": 256, "num_hidden_layers": 4, "num_attention_heads": 4,
    "intermediate_size": 1024, "conv_dim": (256,) * 7,
}  # fmt: skip


def emodb_utterances(count: int) -> list[Utterance] | None:
    """``count`` EmoDB clips spread over the corpus (every k-th file), or None without it."""
    from sertk.corpora import scan_corpus

    default = Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
    folder = Path(os.environ.get("SERTK_CORPORA", default)) / "emodb"
    if not folder.is_dir():
        return None
    utterances = scan_corpus("emodb", folder).utterances
    step = max(1, len(utterances) // count)
    return utterances[::step][:count]


def random_hubert(folder: Path, *, full: bool) -> SslEncoder:
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    HubertModel(HubertConfig() if full else HubertConfig(**SMALL)).save_pretrained(folder)
    return SslEncoder(str(folder))


def head(dim: int) -> torch.nn.Module:
    seed_everything(0)
    return build_model("gru_attention", input_dim=dim, num_classes=len(LABELS.labels),
                       hidden=256, layers=2, dropout=0.2)  # fmt: skip


def cached_epoch(features, labels, split: int, dim: int, out_dir: Path) -> float:
    """One epoch of the runner's path: head trained on in-memory cached features + validation."""
    stats = fit_normalization(features[:split])
    train = FeatureSet(features[:split], labels[:split], stats)
    valid = FeatureSet(features[split:], labels[split:], stats)
    start = time.perf_counter()
    train_model(head(dim), train, valid, config=TrainConfig(epochs=1, batch_size=32),
                labels=LABELS.labels, out_dir=out_dir, progress=False)  # fmt: skip
    return time.perf_counter() - start


def reencoding_epoch(encoder, utterances, labels, split: int, preprocess) -> float:
    """One epoch as the reference does it: decode, preprocess and encode every batch, then step."""
    model = head(encoder.dim)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, weight_decay=0.01)
    order = np.random.default_rng(0).permutation(split)

    def encoded(indices):
        signals = [preprocess(*load_audio(utterances[i].path)) for i in indices]
        features = encoder.extract_batch(signals, preprocess.sampling_rate)
        return collate([(f, labels[i]) for f, i in zip(features, indices, strict=True)])

    start = time.perf_counter()
    model.train()
    for begin in range(0, split, 32):
        x, lengths, y = encoded(order[begin : begin + 32])
        loss = torch.nn.functional.cross_entropy(model(x, lengths), y)
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    model.eval()
    with torch.no_grad():
        for begin in range(split, len(utterances), 32):
            x, lengths, _ = encoded(range(begin, min(begin + 32, len(utterances))))
            model(x, lengths)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--full", action="store_true", help="full-size HuBERT-base (94 M)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--folds", type=int, default=10, help="for the projection (EmoDB LOSO)")
    parser.add_argument("--epochs", type=int, default=30, help="for the projection")
    args = parser.parse_args()
    utterances = emodb_utterances(args.files)
    if utterances is None:
        print("EmoDB not found (../shared/corpora/emodb or $SERTK_CORPORA): skipped")
        return 0
    torch.set_num_threads(args.threads)
    preprocess = Preprocess(duration=args.duration, crop="start")
    labels = [LABELS.encode(u.label) for u in utterances]
    split = round(0.8 * len(utterances))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        encoder = random_hubert(root / "hubert", full=args.full)
        size = sum(p.numel() for p in encoder.model.parameters()) / 1e6
        print(f"{len(utterances)} EmoDB clips x {args.duration} s ({split} train / "
              f"{len(utterances) - split} valid), HuBERT {'base' if args.full else 'small'} "
              f"{size:.1f} M params, head gru_attention 256x2, torch threads {args.threads}, "
              f"load {os.getloadavg()[0]:.1f}")  # fmt: skip
        cache = FeatureCache(root / "cache")
        timings = {}
        for name in ("extract (cold cache, once per run)", "reload (warm cache, once per run)"):
            start = time.perf_counter()
            features = extract_utterances(utterances, encoder, preprocess=preprocess,
                                          cache=cache, progress=False)  # fmt: skip
            timings[name] = time.perf_counter() - start
        cached_epoch(features, labels, split, encoder.dim, root / "warmup")  # warm-up
        timings["epoch from cached features"] = cached_epoch(
            features, labels, split, encoder.dim, root / "cached"
        )
        timings["epoch re-encoding audio"] = reencoding_epoch(
            encoder, utterances, labels, split, preprocess
        )
    for name, seconds in timings.items():
        print(f"{name:<38} {seconds:8.2f} s")
    cached, reencoding = timings["epoch from cached features"], timings["epoch re-encoding audio"]
    print(f"re-encoding / cached epoch: {reencoding / cached:.1f}x")
    epochs = args.folds * args.epochs  # every fold trains on all but its test speakers
    once = timings["extract (cold cache, once per run)"]
    print(f"projected, these clips, {args.folds} folds x {args.epochs} epochs: cached {once + epochs * cached:.0f} s, "
          f"re-encoding {epochs * reencoding:.0f} s "
          f"({epochs * reencoding / (once + epochs * cached):.1f}x)")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
