"""``sertk info``: versions, compute device and which extras are installed; ``sertk info
BUNDLE``: what a model bundle is, and its content hash.

    sertk info                       # the toolkit
    sertk info default               # a bundle: kind, labels, contract, content hash
    sertk info my-bundle --rehash    # store the hash of a bundle.json edited on purpose

The content hash (sha256 over ``bundle.json`` in canonical form and every file it references)
is what ``--model-sha256 HASH`` pins in predict, evaluate, export, serve, listen, gui and
ensemble. A bundle saved by this sertk stores it and is refused at load when anything changed
since; ``--rehash`` stores the hash of the bundle as it is now, after checking that it loads.
"""

from __future__ import annotations

import argparse

from sertk._version import __version__

CORE = ["numpy", "scipy", "soundfile", "soxr", "safetensors", "scikit-learn"]
EXTRAS = {
    "neural": ["torch"],
    "ssl": ["torch", "transformers"],
    "gui": ["PySide6-Essentials"],
    "serve": ["fastapi", "uvicorn", "python-multipart"],
    "onnx": ["onnx", "onnxruntime"],
    "live": ["sounddevice"],
    "opensmile": ["opensmile"],
    "ray": ["ray"],
}


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "info", help="show versions, compute device and installed extras (or a bundle's details)"
    )
    parser.add_argument(
        "bundle", nargs="?", metavar="BUNDLE",
        help="a model bundle folder, run folder or 'default': its kind, labels and content hash",
    )  # fmt: skip
    parser.add_argument(
        "--rehash", action="store_true",
        help="store BUNDLE's content hash in its bundle.json (after editing it on purpose)",
    )  # fmt: skip
    parser.add_argument(
        "--backend", choices=("torch", "onnx"), default="torch",
        help="load BUNDLE as its ONNX export (onnx) or its own model (torch)",
    )  # fmt: skip
    parser.set_defaults(run=run)


def _version(distribution: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _device() -> str:
    try:
        import torch  # only to ask it for the device
    except ImportError:
        return "cpu (torch not installed: numpy and ONNX models; pip install 'sertk[neural]')"

    if torch.cuda.is_available():
        return f"cuda ({torch.cuda.get_device_name(0)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def run(args: argparse.Namespace) -> int:
    if args.bundle is not None:
        return show_bundle(args.bundle, rehash=args.rehash, backend=args.backend)
    if args.rehash:
        from sertk.errors import ConfigError

        raise ConfigError("--rehash needs a BUNDLE: sertk info BUNDLE --rehash")
    import platform

    print(f"{'sertk':<13} {__version__}")
    print(f"{'python':<13} {platform.python_version()} ({platform.machine()})")
    for name in CORE:
        print(f"{name:<13} {_version(name) or 'MISSING'}")
    print(f"{'device':<13} {_device()}")
    print("extras:")
    for extra, distributions in EXTRAS.items():
        versions = [(d, _version(d)) for d in distributions]
        installed = all(v is not None for _, v in versions)
        detail = ", ".join(f"{d} {v}" for d, v in versions if v) if installed else "not installed"
        print(f"  {extra:<10} {'yes' if installed else 'no ':<4} {detail}")
    return 0


def show_bundle(name: str, *, rehash: bool, backend: str) -> int:
    """Print a bundle's details and content hash (after storing it, with ``rehash``)."""
    import json

    from sertk.bundle import BUNDLE_FILE, HASH_KEY, load_bundle, rehash_bundle, resolve_bundle

    path = resolve_bundle(name)
    if rehash:
        digest = rehash_bundle(path, backend=backend)
        print(f"sertk info: stored content hash {digest} in {path / BUNDLE_FILE}")
    bundle = load_bundle(path, backend=backend)
    stored = json.loads((path / BUNDLE_FILE).read_text(encoding="utf-8")).get(HASH_KEY)
    contract = bundle.contract
    rows = {
        "bundle": str(path),
        "kind": f"{bundle.kind} ({bundle.model_name}), format {bundle.format_version}, "
        f"made by sertk {bundle.sertk_version} on {bundle.created}",
        "labels": " ".join(bundle.labels),
        "features": json.dumps(bundle.features) if bundle.features else "per member",
        "preprocess": json.dumps(bundle.preprocess) if bundle.preprocess else "per member",
        "normalization": contract.normalization,
        "views": ", ".join(str(view) for view in contract.views) or "none",
        "content hash": bundle.content_hash,
        "stored hash": "verified"
        if stored
        else "none (saved before sertk stored hashes; "
        "pin it with --model-sha256, or store it with --rehash)",
    }
    for key, value in rows.items():
        print(f"{key:<14} {value}")
    return 0
