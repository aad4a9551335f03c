"""``sertk export``: write an ONNX bundle (head + SSL encoder graphs), checked against torch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model bundle to ONNX (optionally int8), verified against torch",
        description=(
            "Export BUNDLE's model (and, for SSL bundles, its encoder) to ONNX with dynamic batch "
            "and time axes, check it against torch on random inputs (probabilities within 1e-4) "
            "and write an ONNX bundle directory that `Recognizer.load(..., backend='onnx')` runs "
            "with onnxruntime. Spectral features stay in numpy."
        ),
    )
    parser.add_argument("bundle", type=Path, help="model bundle directory (with bundle.json)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="ONNX bundle directory")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="export format")
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="onnxruntime dynamic int8 quantization of MatMul/Gemm (smaller, faster on CPU)",
    )
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (18-23, default 18)")
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime threads for the parity check"
    )
    parser.set_defaults(run=run)


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e6:.2f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def run(args: argparse.Namespace) -> int:
    from sertk.export.onnx_export import export_onnx

    target = export_onnx(
        args.bundle, args.output, quantize=args.quantize, opset=args.opset, threads=args.threads
    )
    section = json.loads((target / "bundle.json").read_text(encoding="utf-8"))["onnx"]
    print(f"wrote {target} (opset {section['opset']}, {args.quantize or 'fp32'})")
    for file in sorted(target.iterdir()):
        print(f"  {file.name:<28} {_size(file):>10}")
    parity = section["parity"]
    head = parity["head"]
    print(
        f"parity head (fp32 vs torch): max |dp| {head['max_abs_probabilities']:.2g} "
        f"(tolerance {head['tolerance']:g}) on {len(head['cases'])} batches of "
        f"1-{max(len(c) for c in head['cases'])} items, 1-{max(map(max, head['cases']))} frames"
    )
    if "encoder" in parity:
        encoder = parity["encoder"]
        print(
            f"parity encoder (fp32 vs torch): max |dh| {encoder['max_abs_hidden']:.2g}, "
            f"relative {encoder['max_rel_hidden']:.2g} (tolerance {encoder['tolerance']:g})"
        )
    if "int8" in parity:
        int8 = parity["int8"]
        print(
            f"int8 vs torch fp32: head max |dp| {int8['head']['max_abs_probabilities']:.2g}, "
            f"argmax agreement {int8['head']['argmax_agreement']:.0%}"
        )
        if "encoder" in int8:
            print(f"int8 encoder: min cosine {int8['encoder']['min_cosine']:.5f} to fp32 torch")
        for part in ("head", "encoder"):
            entry = section.get(part)
            if entry:
                ratio = entry["bytes"] / entry["fp32_bytes"]
                print(f"  {entry['name']}: {ratio:.2f}x the fp32 size")
    return 0
