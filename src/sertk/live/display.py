"""Terminal rendering of live results: a panel redrawn in place on a TTY, else one line each."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from sertk.live.result import Result

LEVEL_FLOOR_DB = -60.0  # the left end of the input level meter
_UP_AND_CLEAR = "\x1b[{n}F"  # cursor to the start of the line n lines up
_CLEAR_LINE = "\x1b[2K"


def bar(fraction: float, width: int = 24) -> str:
    """A bar of ``width`` cells filled to ``fraction`` (clipped to [0, 1])."""
    filled = round(min(1.0, max(0.0, fraction)) * width)
    return "█" * filled + "·" * (width - filled)


def level_fraction(level_db: float) -> float:
    """Where ``level_db`` sits between ``LEVEL_FLOOR_DB`` and 0 dBFS, in [0, 1]."""
    return min(1.0, max(0.0, 1.0 - level_db / LEVEL_FLOOR_DB))


def adaptation_text(result: Result) -> str:
    """``  [global 12/20 s]`` or ``  [adapted]`` (empty without adaptation)."""
    return "" if result.adaptation is None else f"  [{result.adaptation.describe()}]"


def render_line(result: Result) -> str:
    """One plain line per result (for logs and pipes)."""
    what = f"{result.label:<10}"
    what += f" {result.confidence:.2f}" if result.confidence is not None else "     "
    return (
        f"{result.time:8.2f}s  {what}  level {result.level_db:6.1f} dBFS  "
        f"latency {result.latency_s * 1000:5.0f} ms  skipped {result.skipped}"
        f"{adaptation_text(result)}"
    )


def render_panel(result: Result, labels: Sequence[str], *, skipped_total: int = 0) -> list[str]:
    """The lines of the live panel: emotion and confidence, one bar per class, level meter."""
    width = max(len(label) for label in labels)
    if result.speech:
        head = f"{result.label.upper():<{width}}  {bar(result.confidence or 0.0)} {result.confidence:.2f}"
    else:
        head = f"{'(' + result.label + ')':<{width}}  {bar(0.0)}"
    lines = [f"  t {result.time:7.1f} s   {head}{adaptation_text(result)}"]
    probabilities = result.probabilities or {}
    for label in labels:
        p = probabilities.get(label)
        shown = f"{p:.2f}" if p is not None else "  - "
        lines.append(f"    {label:<{width}}  {bar(p or 0.0, 20)} {shown}")
    lines.append(
        f"    {'level':<{width}}  {bar(level_fraction(result.level_db), 20)} "
        f"{result.level_db:6.1f} dBFS"
    )
    lines.append(f"    latency {result.latency_s * 1000:4.0f} ms   skipped windows {skipped_total}")
    return lines


class TerminalDisplay:
    """Shows results on ``stream``: redraws a panel in place when it is a terminal, else prints
    :func:`render_line` per result."""

    def __init__(self, labels: Sequence[str], *, stream: TextIO | None = None) -> None:
        self.labels = tuple(labels)
        self.stream = stream if stream is not None else sys.stdout
        self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())
        self._drawn = 0
        self._skipped = 0

    def show(self, result: Result) -> None:
        self._skipped += result.skipped
        if not self.interactive:
            self.stream.write(render_line(result) + "\n")
        else:
            lines = render_panel(result, self.labels, skipped_total=self._skipped)
            prefix = _UP_AND_CLEAR.format(n=self._drawn) if self._drawn else ""
            self.stream.write(prefix + "".join(f"{_CLEAR_LINE}{line}\n" for line in lines))
            self._drawn = len(lines)
        self.stream.flush()
