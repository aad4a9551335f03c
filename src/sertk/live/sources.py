"""Audio sources for the live engine: a microphone, a file played in (real) time, any iterator.

A source is an iterable of mono float32 ``[samples]`` blocks at its ``sampling_rate``, with
``realtime`` (True when blocks arrive at the pace of the audio) and ``close()`` (stop early,
from any thread). :class:`MicrophoneSource` needs the ``sounddevice`` package and the PortAudio
library (``pip install 'sertk[live]'``, Debian ``libportaudio2``); it is imported only here.

>>> source = FileSource("examples/03a02Wc.flac", realtime=False)
>>> round(sum(len(block) for block in source) / source.sampling_rate, 2)
1.5
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from sertk.audio import load_audio
from sertk.errors import AudioError
from sertk.live import _checks


class IteratorSource:
    """Blocks from any iterable (arrays ``[samples]`` or ``[channels, samples]``) at ``sampling_rate``."""

    realtime = False

    def __init__(self, blocks: Iterable[Any], *, sampling_rate: int = 16000) -> None:
        self.sampling_rate = _checks.rate(sampling_rate)
        self._blocks = blocks
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[np.ndarray]:
        for block in self._blocks:
            if self._closed.is_set():
                return
            yield _checks.block(block)

    def close(self) -> None:
        self._closed.set()


class FileSource:
    """A file cut into ``block``-second blocks, at real-time pace (``realtime=True``: each block
    is handed over when its last sample would have been recorded) or as fast as it is read.

    The file is decoded once with :func:`sertk.audio.load_audio` (mono, resampled to
    ``sampling_rate``); ``duration`` is its length in seconds.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        sampling_rate: int = 16000,
        realtime: bool = True,
        block: float = 0.1,
    ) -> None:
        self.path = path
        self.signal, self.sampling_rate = load_audio(
            path, sampling_rate=_checks.rate(sampling_rate)
        )
        self.realtime = bool(realtime)
        self.block = _checks.seconds("block", block)
        self.duration = len(self.signal) / self.sampling_rate
        self._closed = threading.Event()

    def __iter__(self) -> Iterator[np.ndarray]:
        size = max(1, round(self.block * self.sampling_rate))
        began = time.monotonic()
        for start in range(0, len(self.signal), size):
            chunk = self.signal[start : start + size]
            if self.realtime:
                due = began + (start + len(chunk)) / self.sampling_rate
                self._closed.wait(max(0.0, due - time.monotonic()))
            if self._closed.is_set():
                return
            yield chunk.copy()

    def close(self) -> None:
        self._closed.set()


# --- microphone ---------------------------------------------------------------------------


def import_sounddevice() -> Any:
    """The ``sounddevice`` module, or an AudioError saying what to install."""
    try:
        import sounddevice
    except ImportError:
        raise AudioError(
            "live microphone input needs the sounddevice package: pip install 'sertk[live]'"
        ) from None
    except OSError as error:  # sounddevice is there but the PortAudio library is not
        raise AudioError(
            f"sounddevice cannot load the PortAudio library ({error}); install it: "
            "apt install libportaudio2 (Debian/Ubuntu) or brew install portaudio (macOS)"
        ) from None
    return sounddevice


def list_devices() -> list[dict[str, Any]]:
    """The audio devices PortAudio sees: dicts with ``index``, ``name``, ``hostapi``,
    ``inputs``, ``outputs``, ``sampling_rate`` and ``default_input`` (bool)."""
    sd = import_sounddevice()
    default = _default_input(sd)
    hostapis = sd.query_hostapis()
    return [
        {
            "index": index,
            "name": info["name"],
            "hostapi": hostapis[info["hostapi"]]["name"],
            "inputs": info["max_input_channels"],
            "outputs": info["max_output_channels"],
            "sampling_rate": info["default_samplerate"],
            "default_input": index == default,
        }
        for index, info in enumerate(sd.query_devices())
    ]


def format_devices(devices: list[dict[str, Any]]) -> str:
    """A readable device table (``>`` marks the default input), or why there is none."""
    if not devices:
        return (
            "no audio devices found: PortAudio sees no sound card. Plug in a microphone, or on "
            "a headless machine run a sound server (PulseAudio, PipeWire); `sertk listen "
            "--file F` analyses a recording instead"
        )
    lines = ["audio devices (> default input; use --input INDEX or part of a name):"]
    for d in devices:
        mark = ">" if d["default_input"] else " "
        lines.append(
            f"{mark} {d['index']:>3} {d['name']} ({d['hostapi']}): {d['inputs']} in, "
            f"{d['outputs']} out, {d['sampling_rate']:g} Hz"
        )
    return "\n".join(lines)


def _default_input(sd: Any) -> int:
    try:
        index = sd.default.device[0]
        return int(index) if index is not None else -1
    except (TypeError, ValueError, IndexError):
        return -1


def resolve_device(device: int | str | None = None) -> int:
    """The index of an input device: ``None`` (the default input, else the first one with
    inputs), an index, or part of a device name. AudioError listing the devices otherwise."""
    devices = list_devices()
    inputs = [d for d in devices if d["inputs"] > 0]
    if isinstance(device, str) and device.strip().lstrip("-").isdigit():
        device = int(device)
    if device is None:
        chosen = [d for d in inputs if d["default_input"]] or inputs[:1]
        what = "no microphone (no audio input device) found"
    elif isinstance(device, int):
        chosen = [d for d in inputs if d["index"] == device]
        what = f"device {device} is not an audio input device"
    else:
        chosen = [d for d in inputs if device.lower() in d["name"].lower()]
        what = f"no audio input device has {device!r} in its name"
    if not chosen:
        raise AudioError(f"{what}.\n{format_devices(devices)}")
    return chosen[0]["index"]


class MicrophoneSource:
    """Live input from a microphone through PortAudio (``sounddevice``).

    ``device``: see :func:`resolve_device`. The device is opened at ``device_rate`` if given,
    else at ``sampling_rate`` when it supports it, else at its own default rate; blocks are
    resampled to ``sampling_rate`` on the fly (soxr's streaming resampler) when those differ. The audio callback only
    copies ``block``-second blocks into a bounded queue of ``queue_blocks``; if the consumer
    falls that far behind, the oldest block is dropped (``dropped`` counts them) so memory stays
    bounded. ``overflows`` counts the input overflows PortAudio reported.
    """

    realtime = True

    def __init__(
        self,
        device: int | str | None = None,
        *,
        sampling_rate: int = 16000,
        block: float = 0.1,
        queue_blocks: int = 50,
        device_rate: int | None = None,
    ) -> None:
        self._sd = import_sounddevice()
        self.sampling_rate = _checks.rate(sampling_rate)
        self.block = _checks.seconds("block", block)
        self.device = resolve_device(device)
        self.device_name = self._sd.query_devices(self.device)["name"]
        self.device_rate = self._choose_rate() if device_rate is None else _checks.rate(device_rate)
        self._queue: queue.Queue[np.ndarray] = queue.Queue(maxsize=max(2, int(queue_blocks)))
        self._closed = threading.Event()
        self.dropped = self.overflows = 0

    def _choose_rate(self) -> int:
        sd = self._sd
        try:
            sd.check_input_settings(self.device, channels=1, samplerate=self.sampling_rate)
            return self.sampling_rate
        except sd.PortAudioError:
            return int(sd.query_devices(self.device)["default_samplerate"])
        except ValueError as error:
            raise AudioError(f"cannot record from {self.device_name!r}: {error}") from None

    def _callback(self, indata: np.ndarray, frames: int, time_info: Any, status: Any) -> None:
        if status:
            self.overflows += 1
        block = indata[:, 0].copy()
        try:
            self._queue.put_nowait(block)
        except queue.Full:
            self.dropped += 1
            try:  # the engine wants the newest audio: drop the oldest block instead
                self._queue.get_nowait()
                self._queue.put_nowait(block)
            except (queue.Empty, queue.Full):
                pass

    def _open(self) -> Any:
        try:
            return self._sd.InputStream(
                device=self.device,
                channels=1,
                samplerate=self.device_rate,
                blocksize=max(1, round(self.block * self.device_rate)),
                dtype="float32",
                callback=self._callback,
            )
        except self._sd.PortAudioError as error:
            raise AudioError(
                f"cannot open the microphone {self.device_name!r} at {self.device_rate} Hz: "
                f"{error}.\n{format_devices(list_devices())}"
            ) from None

    def __iter__(self) -> Iterator[np.ndarray]:
        resampler = None
        if self.device_rate != self.sampling_rate:
            import soxr

            resampler = soxr.ResampleStream(
                self.device_rate, self.sampling_rate, 1, dtype="float32"
            )
        stream = self._open()
        try:
            stream.start()
            while not self._closed.is_set():
                try:
                    block = self._queue.get(timeout=0.2)
                except queue.Empty:
                    if not stream.active:
                        raise AudioError(
                            f"the microphone {self.device_name!r} stopped delivering audio"
                        ) from None
                    continue
                if resampler is not None:
                    block = resampler.resample_chunk(block)
                if len(block):
                    yield block
        finally:
            stream.stop()
            stream.close()

    def close(self) -> None:
        self._closed.set()
