"""The bad-input corpus: every kind of broken, lying or hostile input sertk must refuse precisely.

:func:`make_audio_inputs` writes the audio kinds into a folder and :func:`make_bundle_inputs` the
model-bundle kinds; each :class:`BadInput` says what must appear in the error (``expect``: a
regular expression, matched case-insensitively, that names the problem) and whether it can be
uploaded to the REST server (a directory or a symlink loop cannot). ``tests/test_bad_inputs.py``
runs every kind through the CLI, the Python API and the REST server.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
FORMATS = {"wav": ("WAV", "PCM_16"), "flac": ("FLAC", "PCM_16"), "ogg": ("OGG", "VORBIS"),
           "opus": ("OGG", "OPUS"), "mp3": ("MP3", "MPEG_LAYER_III")}  # fmt: skip


@dataclasses.dataclass(frozen=True)
class BadInput:
    """One kind of bad input: ``path`` (a file, folder or link), the problem its error must name
    (``expect``, a regex), whether it can be sent to the REST server (``upload``), other
    expectations where the server's limits (``rest``) or the CLI's folder expansion (``cli``)
    answer first, and options for the CLI (``cli_args``) and the API (``api_options``)."""

    kind: str
    path: Path
    expect: str
    upload: bool = True
    rest: str | None = None
    cli: str | None = None
    cli_args: tuple[str, ...] = ()
    api_options: dict = dataclasses.field(default_factory=dict)


def speech_like(seconds: float, *, seed: int = 0) -> np.ndarray:
    """A gliding tone with an envelope: float32 ``[samples]`` at 16 kHz."""
    t = np.arange(round(seconds * RATE)) / RATE
    pitch = 180 + 60 * np.sin(2 * np.pi * 0.5 * t)
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2
    noise = np.random.default_rng(seed).normal(0, 0.01, t.size)
    return (0.3 * envelope * np.sin(2 * np.pi * np.cumsum(pitch) / RATE) + noise).astype(np.float32)


def encode(signal: np.ndarray, kind: str, *, rate: int = RATE, subtype: str | None = None) -> bytes:
    buffer = io.BytesIO()
    file_format, default = FORMATS[kind]
    sf.write(buffer, signal.T if signal.ndim == 2 else signal, rate, format=file_format,
             subtype=subtype or default)  # fmt: skip
    return buffer.getvalue()


def patch(data: bytes, offset: int, fmt: str, value: int) -> bytes:
    out = bytearray(data)
    out[offset : offset + struct.calcsize(fmt)] = struct.pack(fmt, value)
    return bytes(out)


def flac_streaminfo(data: bytes, *, rate: int | None = None, total: int | None = None) -> bytes:
    """A FLAC whose STREAMINFO announces another ``rate`` or ``total`` number of samples."""
    out = bytearray(data)
    fields = int.from_bytes(out[18:26], "big")  # rate 20 bits, channels 3, bits 5, total 36
    if rate is not None:
        fields = (fields & ~(((1 << 20) - 1) << 44)) | (rate << 44)
    if total is not None:
        fields = (fields & ~((1 << 36) - 1)) | total
    out[18:26] = fields.to_bytes(8, "big")
    return bytes(out)


def silent_flac(path: Path, seconds: int, *, announce: int | None = None) -> Path:
    """``seconds`` of digital silence as FLAC (a few bytes per block: 3 h is about 0.5 MB);
    ``announce``: the number of samples its header claims instead (0: unknown)."""
    with sf.SoundFile(path, "w", RATE, 1, format="FLAC", subtype="PCM_16") as out:
        block = np.zeros(60 * RATE, np.float32)
        for start in range(0, seconds, 60):
            out.write(block[: min(60, seconds - start) * RATE])
    if announce is not None:
        path.write_bytes(flac_streaminfo(path.read_bytes(), total=announce))
    return path


def _audio_kinds(clip: np.ndarray, folder: Path) -> dict[str, tuple[bytes | Callable, str]]:
    """kind -> (file bytes, or a function writing the file at a path; expected problem)."""
    wav, flac = encode(clip, "wav"), encode(clip, "flac")
    ogg, opus, mp3 = encode(clip, "ogg"), encode(clip, "opus"), encode(clip, "mp3")
    floats = encode(clip, "wav", subtype="FLOAT")
    nan, inf = clip.copy(), clip.copy()
    nan[RATE // 2], inf[RATE] = np.nan, np.inf
    vorbis_at = ogg.index(b"\x01vorbis") + 11  # channels byte of the identification header
    cut_data = {
        "truncated_wav_header": (wav[:20], "truncated"),
        "truncated_wav_data": (wav[: len(wav) // 2], "truncated"),
        "truncated_flac": (flac[: len(flac) // 2], "corrupt or truncated"),
        "truncated_ogg_vorbis": (ogg[: len(ogg) // 2], "truncated or damaged ogg"),
        "truncated_ogg_opus": (opus[: len(opus) // 2], "corrupt, truncated or unsupported"),
        "truncated_mp3": (mp3[: len(mp3) // 3], "truncated or corrupt"),
        "header_only_wav": (patch(wav[:44], 40, "<I", 0), r"no audio \(0 frames\)"),
        "header_only_flac": (flac[:42], "no audio|corrupt|truncated"),
        "header_only_ogg": (ogg[: ogg.index(b"OggS", 100)], "no audio|truncated"),
    }
    lying = {
        "wav_rate_0_hz": (patch(wav, 24, "<I", 0), "0 Hz.*sample rate"),
        "wav_rate_1_hz": (patch(wav, 24, "<I", 1), "1 Hz.*sample rate"),
        "wav_rate_999_hz": (patch(wav, 24, "<I", 999), "999 Hz.*sample rate"),
        "wav_rate_4_ghz": (patch(wav, 24, "<I", 4_000_000_000), "4000000000 Hz.*sample rate"),
        "flac_rate_1_hz": (flac_streaminfo(flac, rate=1), "1 Hz.*sample rate"),
        "flac_rate_0_hz": (flac_streaminfo(flac, rate=0), "0 Hz.*sample rate"),
        "wav_65535_channels": (patch(wav, 22, "<H", 65535), "65535 channels"),
        "wav_0_channels": (patch(wav, 22, "<H", 0), "0 channels"),
        "wav_100_channels": (patch(wav, 22, "<H", 100), "100 channels"),
        "ogg_0_channels": (patch(ogg, vorbis_at, "<B", 0), "0 channels"),
        "wav_claims_3_hours": (
            patch(wav, 40, "<I", 3 * 3600 * RATE * 2),
            "truncated.*announces 172800000 frames",
        ),
        "flac_claims_3_hours": (
            flac_streaminfo(flac, total=3 * 3600 * RATE),
            "corrupt or truncated",
        ),
    }
    garbage = {
        "empty_file": (b"", "empty"),
        "text_named_wav": (
            b"this is a text file, not audio\n" * 40,
            "not a recognised audio format",
        ),
        "random_bytes": (np.random.default_rng(0).bytes(8000), "not a recognised audio format"),
        "png_named_mp3": (
            b"\x89PNG\r\n\x1a\n" + bytes(2000),
            "not a recognised audio format|no decodable",
        ),
        "zip_named_ogg": (b"PK\x03\x04" + bytes(2000), "not a recognised audio format"),
        "flac_magic_zeroed": (bytes(4) + flac[4:], "not a recognised audio format"),
        "nan_samples": (encode(nan, "wav", subtype="FLOAT"), r"non-finite samples \(NaN or inf\)"),
        "inf_samples": (encode(inf, "wav", subtype="FLOAT"), r"non-finite samples \(NaN or inf\)"),
        "one_byte": (b"R", "not a recognised audio format|truncated"),
        "riff_not_wave": (
            b"RIFF" + floats[4:8] + b"AVI " + floats[12:],
            "not a recognised audio format",
        ),
    }
    return {**cut_data, **lying, **garbage}


# the server's 600 s limit answers before decoding finds the file cut
REST = {"flac_claims_3_hours": r"announces 3:00:00 .*longer than the limit of 0:10:00"}
SUFFIX = {"wav": ".wav", "flac": ".flac", "ogg": ".ogg", "opus": ".opus", "mp3": ".mp3", "png": ".mp3",
          "zip": ".ogg"}  # fmt: skip


def _suffix(kind: str) -> str:
    for key, suffix in SUFFIX.items():
        if key in kind:
            return suffix
    return ".wav"


def make_audio_inputs(folder: Path) -> list[BadInput]:
    """Write every audio kind into ``folder``; returns them (see the module docstring)."""
    folder.mkdir(parents=True, exist_ok=True)
    clip = speech_like(2.0)
    inputs = []
    for kind, (data, expect) in _audio_kinds(clip, folder).items():
        path = folder / f"{kind}{_suffix(kind)}"
        path.write_bytes(data)
        inputs.append(BadInput(kind, path, expect, rest=REST.get(kind)))
    inputs += _special_files(folder, clip)
    return inputs


def _special_files(folder: Path, clip: np.ndarray) -> list[BadInput]:
    """Folders, links, pipes, names, long files: kinds that are not just bytes."""
    wav = encode(clip, "wav")
    directory = folder / "a_folder.wav"
    directory.mkdir()
    loop = folder / "loop.wav"
    os.symlink(loop, loop)  # a link to itself: a symlink loop
    dangling = folder / "dangling.wav"
    os.symlink(folder / "nowhere.wav", dangling)
    pipe = folder / "pipe.wav"
    os.mkfifo(pipe)
    unicode_name = folder / "ünïcödé 😀 émotion.wav"
    unicode_name.write_bytes(wav[: len(wav) // 2])
    newline_name = folder / "two\nlines.wav"
    newline_name.write_bytes(b"not audio at all\n" * 40)
    three_hours = silent_flac(folder / "three_hours_silence.flac", 3 * 3600)
    unknown = silent_flac(folder / "inflates_past_limit.flac", 700, announce=0)
    return [
        BadInput(
            "directory",
            directory,
            "is a directory",
            upload=False,
            cli="a_folder.wav: no audio files",
        ),  # the CLI looks inside folders
        BadInput("symlink_loop", loop, "symbolic link loop", upload=False),
        BadInput("dangling_symlink", dangling, "symbolic link to .*nowhere", upload=False),
        BadInput("named_pipe", pipe, "not a regular file", upload=False),
        BadInput("device_file", Path(os.devnull), "not a regular file", upload=False),
        BadInput("missing_file", folder / "missing.wav", "no such file", upload=False),
        BadInput("unicode_name_truncated", unicode_name, "ünïcödé 😀 émotion.wav: truncated"),
        BadInput("newline_name_text", newline_name, "lines.wav: not a recognised audio format"),
        BadInput(
            "three_hours_silence_flac",
            three_hours,
            r"announces 3:00:00 .*longer than the limit",
            cli_args=("--max-duration", "3600"),
            api_options={"max_duration": 3600},
            rest=r"announces 3:00:00 .*longer than the limit",
        ),
        BadInput(
            "flac_inflates_past_limit",
            unknown,
            r"decoding passed .*more than its header announced",
            cli_args=("--max-duration", "600"),
            api_options={"max_duration": 600},
        ),
    ]


def edit_document(path: Path, change: Callable[[dict], None]) -> None:
    document = json.loads((path / "bundle.json").read_text())
    change(document)
    (path / "bundle.json").write_text(json.dumps(document))


def _reverse_labels(document: dict) -> None:
    document["labels"].reverse()
    document["label_map"]["labels"].reverse()


def _weights(path: Path) -> Path:
    """The bundle's weights file: its own, or its first member's (a composite bundle)."""
    return min(path.rglob("model.safetensors"), key=lambda p: (len(p.parts), str(p)))


def _flip_weight_bit(path: Path) -> None:
    weights = _weights(path)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))


def make_bundle_inputs(source: Path, folder: Path) -> list[BadInput]:
    """Tampered copies of the bundle at ``source`` (one saved by this sertk, so it stores its
    content hash), one per kind."""
    import shutil

    kinds: dict[str, tuple[Callable[[Path], None], str]] = {
        "bundle_labels_reversed": (
            lambda p: edit_document(p, _reverse_labels),
            "was changed after the bundle was saved",
        ),
        "bundle_duration_1e12": (
            lambda p: edit_document(p, lambda d: d["preprocess"].update(duration=1e12)),
            r"preprocess\.duration is 1e\+12 seconds, outside",
        ),
        "bundle_wrong_checksum": (_flip_weight_bit, "does not match its checksum"),
        "bundle_missing_weights": (
            lambda p: _weights(p).unlink(),
            "lacks model.safetensors",
        ),
        "bundle_json_not_json": (
            lambda p: (p / "bundle.json").write_text("{not json"),
            "is not valid JSON",
        ),
        "bundle_json_missing": (lambda p: (p / "bundle.json").unlink(), "bundle.json"),
        "bundle_nan_hyperparameter": (  # json writes NaN, and reads it back
            lambda p: edit_document(p, lambda d: d["model"]["hparams"].update(clip=float("nan"))),
            r"model\.hparams\.clip is nan; every number in a bundle must be finite",
        ),
        "bundle_rate_1_hz": (
            lambda p: edit_document(p, lambda d: d["preprocess"].update(sampling_rate=1)),
            r"preprocess\.sampling_rate is 1 Hz, outside",
        ),
        "bundle_future_format": (
            lambda p: edit_document(p, lambda d: d.update(format_version=99)),
            "upgrade sertk",
        ),
        "bundle_feature_option_out_of_range": (
            lambda p: edit_document(p, lambda d: d["features"].update(n_mels=10**6)),
            "n_mels",
        ),
    }
    inputs = []
    for kind, (damage, expect) in kinds.items():
        target = folder / kind
        shutil.copytree(source, target)
        damage(target)
        inputs.append(BadInput(kind, target, expect, upload=False))
    return inputs
