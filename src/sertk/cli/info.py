"""``sertk info``: versions, compute device and which extras are installed."""

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
        "info", help="show versions, compute device and installed extras"
    )
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
