"""``sertk export``: write an ONNX bundle (model graph, SSL encoder graph), checked against its source.

sertk export default --format onnx -o default-onnx
sertk export runs/x/final/bundle -o x-onnx --quantize int8
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from sertk.cli import options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="export a model bundle to ONNX (optionally int8), verified against its source",
        description=(
            "Export BUNDLE's model to ONNX: a torch head (and, for SSL bundles, its encoder) with "
            "dynamic batch and time axes, checked against torch on random inputs (probabilities "
            "within 1e-4), or a linear classical model (ridge, logreg, linear SVM), checked "
            "against numpy (within 1e-6); an ensemble member by member. The ONNX bundle "
            "directory runs with `sertk predict --backend onnx` (onnxruntime, no torch). "
            "Spectral and hand-crafted features stay in numpy."
        ),
    )
    parser.add_argument(
        "bundle", help="model bundle folder, run folder, or 'default' (the shipped model)"
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="ONNX bundle directory")
    parser.add_argument("--format", choices=["onnx"], default="onnx", help="export format")
    parser.add_argument(
        "--quantize",
        choices=["int8"],
        default=None,
        help="onnxruntime dynamic int8 quantization of MatMul/Gemm of a torch model (smaller, "
        "faster on CPU); a linear classical model stays float64 and says why",
    )
    parser.add_argument("--opset", type=int, default=None, help="ONNX opset (18-23, default 18)")
    parser.add_argument(
        "--threads", type=int, default=None, help="onnxruntime threads for the parity check"
    )
    options.add_model_pin(parser)
    parser.set_defaults(run=run)


def _size(path: Path) -> str:
    size = path.stat().st_size
    return f"{size / 1e6:.2f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def run(args: argparse.Namespace) -> int:
    from sertk.bundle import pin_bundle
    from sertk.export.onnx_export import DEFAULT_OPSET, export_onnx

    opset = DEFAULT_OPSET if args.opset is None else args.opset
    target = export_onnx(
        pin_bundle(args.bundle, args.model_sha256),
        args.output,
        quantize=args.quantize,
        opset=opset,
        threads=args.threads,
    )
    section = json.loads((target / "bundle.json").read_text(encoding="utf-8"))["onnx"]
    precision = section["quantize"] or section.get("precision", "fp32")
    print(f"wrote {target} (opset {section['opset']}, {precision})")
    for file in sorted(p for p in target.rglob("*") if p.is_file()):
        print(f"  {str(file.relative_to(target)):<28} {_size(file):>10}")
    for member in section.get("members", [None]):
        where = "" if member is None else f"{member['path']}: "
        _print_section(section if member is None else member, where)
    return 0


def _print_section(section: dict, where: str) -> None:
    parity = section["parity"]
    head = parity["head"]
    if "cases" in head:
        print(
            f"{where}parity head (fp32 vs torch): max |dp| {head['max_abs_probabilities']:.2g} "
            f"(tolerance {head['tolerance']:g}) on {len(head['cases'])} batches of "
            f"1-{max(len(c) for c in head['cases'])} items, 1-{max(map(max, head['cases']))} "
            "frames"
        )
    else:
        print(
            f"{where}parity head (float64 graph vs numpy): max |dp| "
            f"{head['max_abs_probabilities']:.2g} (tolerance {head['tolerance']:g}) on "
            f"{head['rows']} rows"
        )
    if "encoder" in parity:
        encoder = parity["encoder"]
        print(
            f"{where}parity encoder (fp32 vs torch): max |dh| {encoder['max_abs_hidden']:.2g}, "
            f"relative {encoder['max_rel_hidden']:.2g} (tolerance {encoder['tolerance']:g})"
        )
    if section.get("quantize_skipped"):
        print(f"{where}int8 skipped: {section['quantize_skipped']}")
    if "int8" in parity:
        int8 = parity["int8"]
        print(
            f"{where}int8 vs torch fp32: head max |dp| "
            f"{int8['head']['max_abs_probabilities']:.2g}, argmax agreement "
            f"{int8['head']['argmax_agreement']:.0%}"
        )
        if "encoder" in int8:
            print(f"{where}int8 encoder: min cosine {int8['encoder']['min_cosine']:.5f} to fp32")
        for part in ("head", "encoder"):
            entry = section.get(part)
            if entry:
                ratio = entry["bytes"] / entry["fp32_bytes"]
                print(f"  {entry['name']}: {ratio:.2f}x the fp32 size")
