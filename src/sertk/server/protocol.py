"""The messages between the server and its worker processes: JSON headers and raw byte blobs.

A message is one JSON object (the header) followed by ``len(header["blobs"])`` byte strings
(the uploads), each frame written as an 8-byte little-endian length and its bytes. Nothing is
pickled: a worker decodes untrusted audio, so what it sends back is parsed as plain JSON,
never as objects that could run code in the server.

>>> import os
>>> read_end, write_end = os.pipe()
>>> write_message(write_end, {"kind": "ping"}, [b"abc"])
>>> read_message(read_end)
({'kind': 'ping', 'blobs': 1}, [b'abc'])
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Sequence
from typing import Any

_LENGTH = struct.Struct("<Q")
MAX_HEADER = 16 * 2**20  # a header is a few kB; a longer one means a broken stream


class ChannelClosed(Exception):
    """The other end of the pipe closed (the worker exited) before a whole message arrived."""


def frames(header: dict[str, Any], blobs: Sequence[bytes] = ()) -> list[bytes]:
    """The byte strings that make up the message ``header`` + ``blobs``, in order."""
    document = json.dumps({**header, "blobs": len(blobs)}, separators=(",", ":")).encode()
    return [part for frame in (document, *blobs) for part in (_LENGTH.pack(len(frame)), frame)]


def write_message(fd: int, header: dict[str, Any], blobs: Sequence[bytes] = ()) -> None:
    """Write ``header`` (a JSON object) and ``blobs`` to the file descriptor ``fd``."""
    for part in frames(header, blobs):
        _write_all(fd, part)


def read_message(fd: int) -> tuple[dict[str, Any], list[bytes]]:
    """The next ``(header, blobs)`` from ``fd``; ChannelClosed at end of stream."""
    header = json.loads(_read_frame(fd, limit=MAX_HEADER))
    if not isinstance(header, dict) or not isinstance(header.get("blobs"), int):
        raise ChannelClosed("a message header is not a JSON object with 'blobs'")
    return header, [_read_frame(fd) for _ in range(header["blobs"])]


def _read_frame(fd: int, *, limit: int | None = None) -> bytes:
    (length,) = _LENGTH.unpack(_read_exact(fd, _LENGTH.size))
    if limit is not None and length > limit:
        raise ChannelClosed(f"a {length}-byte header frame; the stream is out of step")
    return _read_exact(fd, length)


def _read_exact(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 2**20))
        if not chunk:
            raise ChannelClosed(f"the pipe closed with {left} of {size} bytes unread")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
