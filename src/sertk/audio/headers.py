"""What a file's header claims, checked before libsndfile opens it.

libsndfile refuses some lying headers with messages that do not say what is wrong ("SF_INFO
struct incomplete" for a 0 Hz WAV) and accepts others (a 1 Hz WAV, 65535 channels in some
formats). :func:`check_header` reads the first bytes of WAV/RF64, AIFF, FLAC and OGG
(Vorbis/Opus) files itself and raises :class:`~sertk.errors.AudioError` naming the field that is
absurd (the sample rate, the channel count) or the way a WAV file was cut, so every reader
(``load_audio``, the block reader behind long recordings) gets the same precise message.
"""

from __future__ import annotations

import io
import os
import struct
from typing import NamedTuple

from sertk.audio._checks import check_header_channels, check_header_rate
from sertk.errors import AudioError

HEAD_BYTES = 1 << 16  # bytes read to find the header fields


class Header(NamedTuple):
    """Fields a header announces (None where the format does not say or was not parsed)."""

    format: str
    sampling_rate: int | None
    channels: int | None


def check_header(source: object, name: str) -> Header | None:
    """Parse ``source``'s header (a path or a seekable binary file, left where it was) and raise
    AudioError for an absurd sample rate or channel count, or a WAV file cut short; None for a
    format this module does not parse (libsndfile checks those)."""
    head, total = read_head(source, HEAD_BYTES, name)
    header = parse_header(head)
    if header is not None and header.channels is not None:
        check_header_channels(header.channels, name)
    if header is not None and header.sampling_rate is not None:
        check_header_rate(header.sampling_rate, name)
    check_wav_length(head, total, name)
    return header


def read_head(source: object, size: int, name: str) -> tuple[bytes, int]:
    """The first ``size`` bytes of ``source`` and its total length, leaving a file object in place."""
    try:
        if isinstance(source, str):
            with open(source, "rb") as handle:
                return handle.read(size), os.fstat(handle.fileno()).st_size
        start = source.tell()
        try:
            head = source.read(size)
            total = source.seek(0, io.SEEK_END) - start
        finally:
            source.seek(start)
    except (OSError, ValueError) as exc:
        raise AudioError(f"{name}: cannot be read ({exc})") from exc
    if not isinstance(head, bytes | bytearray):
        raise AudioError(f"{name}: is not opened in binary mode")
    return bytes(head), total


def parse_header(head: bytes) -> Header | None:
    """The announced format, rate and channels of WAV/RF64, AIFF, FLAC or OGG bytes, else None."""
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return _riff(head)
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return _aiff(head)
    if head[:3] == b"ID3" and len(head) >= 10:  # an ID3v2 tag before a FLAC stream
        size = (head[6] & 0x7F) << 21 | (head[7] & 0x7F) << 14 | (head[8] & 0x7F) << 7 | head[9]
        head = head[10 + size :]
    if head[:4] == b"fLaC":
        return _flac(head)
    if head[:4] == b"OggS":
        return _ogg(head)
    return None


def _chunks(head: bytes, start: int, order: str):
    """``(id, data offset, size)`` of the RIFF/AIFF chunks in ``head`` from ``start``."""
    pos = start
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], struct.unpack(f"{order}I", head[pos + 4 : pos + 8])[0]
        yield chunk, pos + 8, size
        pos += 8 + size + (size & 1)


def _riff(head: bytes) -> Header:
    for chunk, at, _ in _chunks(head, 12, "<"):
        if chunk == b"fmt " and at + 8 <= len(head):
            channels, rate = struct.unpack("<HI", head[at + 2 : at + 8])
            return Header("WAV", rate, channels)
    return Header("WAV", None, None)


def _aiff(head: bytes) -> Header:
    for chunk, at, _ in _chunks(head, 12, ">"):
        if chunk == b"COMM" and at + 18 <= len(head):
            channels = struct.unpack(">h", head[at : at + 2])[0]
            exponent, mantissa = struct.unpack(">HQ", head[at + 8 : at + 18])
            exponent &= 0x7FFF
            rate = 0 if exponent == 0 else int(mantissa * 2.0 ** (exponent - 16383 - 63))
            return Header("AIFF", rate, channels)
    return Header("AIFF", None, None)


def _flac(head: bytes) -> Header:
    if len(head) < 26 or head[4] & 0x7F != 0:  # the first metadata block must be STREAMINFO
        return Header("FLAC", None, None)
    fields = int.from_bytes(head[18:26], "big")  # rate 20 bits, channels - 1: 3, bits - 1: 5, ...
    return Header("FLAC", fields >> 44, ((fields >> 41) & 0x7) + 1)


def _ogg(head: bytes) -> Header:
    """The first packet of the first page: a Vorbis or Opus identification header."""
    if len(head) < 27:
        return Header("OGG", None, None)
    packet = head[27 + head[26] :]
    if packet[:7] == b"\x01vorbis" and len(packet) >= 16:
        channels, rate = struct.unpack("<BI", packet[11:16])
        return Header("OGG", rate, channels)
    if packet[:8] == b"OpusHead" and len(packet) >= 10:
        return Header("OGG", None, packet[9])  # Opus always decodes at 48 kHz
    return Header("OGG", None, None)


def check_wav_length(head: bytes, total: int, name: str) -> None:
    """Catch a RIFF/WAVE file cut inside its header or data chunk (libsndfile reads those short)."""
    if head[:4] != b"RIFF":
        return
    if len(head) < 12:
        raise AudioError(f"{name}: truncated WAV file: only {total} bytes, cut inside its header")
    if head[8:12] != b"WAVE":
        return
    block_align, last = 1, 12
    for chunk, at, size in _chunks(head, 12, "<"):
        if chunk == b"fmt " and at + 14 <= len(head):
            block_align = max(1, struct.unpack("<H", head[at + 12 : at + 14])[0])
        if chunk == b"data":
            available = total - at
            # 0 and 0xFFFFFFFF are what streaming writers leave when they cannot seek back
            if size not in (0, 0xFFFFFFFF) and size - available >= block_align:
                raise AudioError(
                    f"{name}: truncated WAV file: its header announces {size // block_align} "
                    f"frames but the file holds only {max(available, 0) // block_align} "
                    f"({max(available, 0) / size:.0%}); re-export or re-download it"
                )
            return
        last = at + size + (size & 1)
    if last >= total or len(head) >= total:
        raise AudioError(
            f"{name}: truncated or malformed WAV file: no 'data' chunk in its {total} bytes "
            "(cut inside the header?)"
        )
