"""Live emotion recognition: a streaming engine over microphone, file or any block iterator.

- :class:`StreamingEngine` (``engine.py``): ring buffer -> voice-activity gate -> ``predict`` on
  the newest window every hop, on a worker thread -> smoothed :class:`Result` objects.
- Sources (``sources.py``): :class:`MicrophoneSource` (sounddevice/PortAudio, imported only
  when used), :class:`FileSource` (real-time or as fast as possible), :class:`IteratorSource`.
- :class:`EnergyGate` (``vad.py``), :func:`save_history` (``result.py``, CSV or JSON Lines).

The engine depends on a ``predict(signal, sampling_rate)`` callable and a label list only, so it
runs under the CLI (``sertk listen``), a GUI or a test alike.

>>> from sertk.recognizer import Recognizer
>>> engine = StreamingEngine.from_recognizer(Recognizer.load("default"), deterministic=True)
>>> for result in engine.run(FileSource("examples/03a02Wc.flac", realtime=False)):
...     print(f"{result.time:5.1f} {result.label}")
  1.5 angry
"""

from sertk.live.buffer import RingBuffer
from sertk.live.engine import StreamingEngine
from sertk.live.result import NO_SPEECH, SILENCE, Result, save_history
from sertk.live.sources import (
    FileSource,
    IteratorSource,
    MicrophoneSource,
    format_devices,
    list_devices,
    resolve_device,
)
from sertk.live.vad import EnergyGate, level_db

__all__ = [
    "NO_SPEECH",
    "SILENCE",
    "EnergyGate",
    "FileSource",
    "IteratorSource",
    "MicrophoneSource",
    "Result",
    "RingBuffer",
    "StreamingEngine",
    "format_devices",
    "level_db",
    "list_devices",
    "resolve_device",
    "save_history",
]
