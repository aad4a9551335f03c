"""Numerical checks of exported graphs against the torch model they came from.

Tolerances (fp32 graphs; an export that misses them is refused):

- head: max |ORT - torch| of the class probabilities <= ``HEAD_TOLERANCE`` (1e-4, absolute) and
  of the attention weights (models with attention) <= the same, on random features of several
  batch sizes and lengths (1 frame; lengths the export never saw; padded rows whose padding holds
  large random values, which must not change anything);
- encoder: max |ORT - torch| of the hidden states <= ``ENCODER_TOLERANCE`` (1e-4) times
  max(1, max |torch|), comparing ``OnnxSslEncoder.extract_batch`` with ``SslEncoder.extract_batch``
  on random signals from ``min_samples`` up, batched the way each model batches.

int8 graphs are not held to these; :func:`compare_head` / :func:`compare_encoder` report how far
they move (max difference, argmax agreement, cosine) and only non-finite output is refused.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from sertk.errors import BundleError
from sertk.inference.onnx import OnnxSslEncoder, make_session

HEAD_TOLERANCE = 1e-4
ENCODER_TOLERANCE = 1e-4
HEAD_CASES = ((1,), (211,), (97, 40), (300, 1, 17, 150, 299), (64, 64, 64, 64))
ENCODER_SECONDS = (0.01, 0.63, 1.0, 1.37, 0.8, 0.8)  # 0.01 s pads up to min_samples


def head_cases(model: torch.nn.Module, *, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random ``(features [batch, (layers,) frames, dim], lengths [batch])`` for ``HEAD_CASES``."""
    rng = np.random.default_rng(seed)
    dim, layers = model.hparams["input_dim"], model.hparams.get("num_layers_in")
    cases = []
    for lengths in HEAD_CASES:
        shape = (len(lengths), *(() if layers is None else (layers,)), max(lengths), dim)
        features = (10.0 * rng.standard_normal(shape)).astype(np.float32)  # padding: large noise
        for row, n in enumerate(lengths):
            features[row][..., :n, :] = rng.standard_normal(features[row][..., :n, :].shape)
        cases.append((features, np.array(lengths, dtype=np.int64)))
    return cases


def _run_both(model: torch.nn.Module, path: Path, *, threads: int | None):
    """Yield ``(lengths, torch outputs, onnx outputs)`` per case, outputs as name -> array."""
    session = make_session(path, threads=threads)
    names = [o.name for o in session.get_outputs()]
    attention = "attention" in names
    for features, lengths in head_cases(model):
        with torch.no_grad():
            result = model(
                torch.from_numpy(features), torch.from_numpy(lengths), return_attention=attention
            )
            logits, weights = result if attention else (result, None)
            expected = {"logits": logits.numpy(), "probabilities": logits.softmax(-1).numpy()}
            if attention:
                expected["attention"] = weights.numpy()
        try:
            values = session.run(None, {"features": features, "lengths": lengths})
        except Exception as error:  # onnxruntime raises its own exception types
            raise BundleError(
                f"the exported head fails on features {features.shape} ({error}); not writing it"
            ) from None
        got = dict(zip(names, values, strict=True))
        yield lengths, expected, got


def verify_head(
    model: torch.nn.Module, path: Path, *, threads: int | None = None
) -> dict[str, Any]:
    """Check ``path`` against ``model`` (see the module docstring); BundleError if it misses."""
    worst = {"probabilities": 0.0, "logits": 0.0, "attention": 0.0}
    seen: set[str] = set()
    for lengths, expected, got in _run_both(model, path, threads=threads):
        seen.update(expected)
        for name in expected:
            a, b = expected[name], got[name]
            if name == "attention":  # only valid rows/columns are defined; padding is 0 in both
                a, b = _valid_square(a, lengths), _valid_square(b, lengths)
            difference = float(np.max(np.abs(a - b))) if np.isfinite(b).all() else float("inf")
            worst[name] = max(worst[name], difference)
    report = {
        "tolerance": HEAD_TOLERANCE,
        "max_abs_probabilities": worst["probabilities"],
        "max_abs_logits": worst["logits"],
        "cases": [list(c) for c in HEAD_CASES],
    }
    if "attention" in seen:
        report["max_abs_attention"] = worst["attention"]
    if max(worst["probabilities"], worst["attention"]) > HEAD_TOLERANCE:
        raise BundleError(
            f"the exported head differs from the torch model by {worst['probabilities']:.3g} in "
            f"probabilities (attention {worst['attention']:.3g}; tolerance {HEAD_TOLERANCE:g}); "
            "refusing to write an ONNX bundle that does not match"
        )
    return report


def compare_head(
    model: torch.nn.Module, path: Path, *, threads: int | None = None
) -> dict[str, Any]:
    """How far a (quantized) head moves from ``model``: max prob difference, argmax agreement."""
    differences, agree, total = [], 0, 0
    for _, expected, got in _run_both(model, path, threads=threads):
        if not np.isfinite(got["probabilities"]).all():
            raise BundleError(f"{path.name} gives NaN or infinite probabilities; not writing it")
        differences.append(np.max(np.abs(expected["probabilities"] - got["probabilities"])))
        agree += int(
            (expected["probabilities"].argmax(-1) == got["probabilities"].argmax(-1)).sum()
        )
        total += len(got["probabilities"])
    return {"max_abs_probabilities": float(max(differences)), "argmax_agreement": agree / total}


def compare_encoder(
    encoder: Any, path: Path, meta: dict[str, Any], *, threads: int | None = None
) -> dict[str, Any]:
    """Hidden states of ``OnnxSslEncoder(path)`` vs ``encoder`` (an ``SslEncoder``): max abs and
    relative difference and the lowest per-item cosine similarity."""
    rng = np.random.default_rng(0)
    rate = encoder.sampling_rate
    signals = [
        (0.1 * rng.standard_normal(int(s * rate))).astype(np.float32) for s in ENCODER_SECONDS
    ]
    onnx_encoder = OnnxSslEncoder(path, meta, encoder.config(), threads=threads)
    expected = encoder.extract_batch(signals, rate)
    got = onnx_encoder.extract_batch(signals, rate)
    difference, relative, cosine = 0.0, 0.0, 1.0
    for a, b in zip(expected, got, strict=True):
        if a.shape != b.shape or not np.isfinite(b).all():
            raise BundleError(
                f"{path.name} gives hidden states of shape {b.shape} (finite: "
                f"{bool(np.isfinite(b).all())}) where torch gives {a.shape}; not writing it"
            )
        gap = float(np.max(np.abs(a - b)))
        difference = max(difference, gap)
        relative = max(relative, gap / max(1.0, float(np.max(np.abs(a)))))
        a64, b64 = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
        cosine = min(cosine, float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64))))
    return {"max_abs_hidden": difference, "max_rel_hidden": relative, "min_cosine": cosine}


def verify_encoder(
    encoder: Any, path: Path, meta: dict[str, Any], *, threads: int | None = None
) -> dict[str, Any]:
    """:func:`compare_encoder` held to ``ENCODER_TOLERANCE``; BundleError if it misses."""
    report = compare_encoder(encoder, path, meta, threads=threads)
    if report["max_rel_hidden"] > ENCODER_TOLERANCE:
        raise BundleError(
            f"the exported encoder differs from torch by {report['max_rel_hidden']:.3g} "
            f"(relative; tolerance {ENCODER_TOLERANCE:g}); refusing to write the ONNX bundle"
        )
    report["tolerance"] = ENCODER_TOLERANCE
    report["seconds"] = list(ENCODER_SECONDS)
    return report


def _valid_square(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    return np.concatenate([values[row, :n, :n].ravel() for row, n in enumerate(lengths)])
