"""``RingBuffer``: a preallocated, fixed-size float32 buffer of the newest samples of a stream."""

from __future__ import annotations

import numpy as np

from sertk.errors import SertkError


class RingBuffer:
    """The newest ``capacity`` samples of an unbounded mono stream, in one preallocated array.

    Samples are addressed by their absolute index in the stream (0 = the first sample ever
    written), so a reader can ask for ``[end - length, end)`` without caring where the write
    position wrapped. Memory is ``capacity`` float32 samples for the life of the buffer. Not
    thread-safe on its own: the engine guards it with its lock.

    >>> ring = RingBuffer(4)
    >>> ring.write(np.arange(6, dtype=np.float32))
    >>> ring.total, ring.read(6, 3).tolist()
    (6, [3.0, 4.0, 5.0])
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise SertkError(f"ring buffer capacity must be at least 1 sample, got {capacity}")
        self.capacity = int(capacity)
        self._data = np.zeros(self.capacity, dtype=np.float32)
        self.total = 0  # samples written since the start of the stream

    @property
    def nbytes(self) -> int:
        """Bytes held by the sample array (constant)."""
        return self._data.nbytes

    @property
    def oldest(self) -> int:
        """Absolute index of the oldest sample still held."""
        return max(0, self.total - self.capacity)

    def write(self, block: np.ndarray) -> None:
        """Append a float32 ``[samples]`` block; only its last ``capacity`` samples are kept."""
        size = len(block)
        if size == 0:
            return
        kept = block[-self.capacity :]
        start = (self.total + size - len(kept)) % self.capacity
        first = min(len(kept), self.capacity - start)
        self._data[start : start + first] = kept[:first]
        self._data[: len(kept) - first] = kept[first:]
        self.total += size

    def read(self, end: int, length: int) -> np.ndarray:
        """A copy of the samples ``[end - length, end)`` (absolute indices), float32 ``[length]``."""
        begin = end - length
        if length < 0 or begin < self.oldest or end > self.total:
            raise SertkError(
                f"samples [{begin}, {end}) are not in the buffer (it holds [{self.oldest}, "
                f"{self.total})); make the buffer longer than the window"
            )
        start = begin % self.capacity
        first = min(length, self.capacity - start)
        return np.concatenate([self._data[start : start + first], self._data[: length - first]])
