"""The "explain" picture of a prediction or a timeline (matplotlib, imported on first use).

``plot_prediction(path_out, signal, sampling_rate, result, labels)`` writes a PNG with

- for a :class:`~sertk.recognizer.Prediction`: the waveform, the attention weights over time (when
  the prediction has them; they refer to the model's input, so pass the preprocessed signal,
  ``recognizer.preprocess(signal, rate)``, for the two to line up) and a bar chart of the class
  probabilities;
- for a :class:`~sertk.recognizer.Timeline`: the waveform with the segments coloured by label
  (silence grey) and the per-window class probabilities as a stacked area over time.

``title`` (``sertk predict --plot`` passes the file and the model) heads the picture.

Figures are built with ``matplotlib.figure.Figure`` (the Agg canvas, no pyplot), so plotting
never touches a GUI backend or global matplotlib state.

>>> from sertk.audio import load_audio
>>> from sertk.recognizer import Recognizer
>>> recognizer = Recognizer.load("default")
>>> signal, rate = load_audio("examples/03a02Wc.flac")
>>> plot_prediction("explain.png", signal, rate, recognizer.predict_file("examples/03a02Wc.flac"),
...                 recognizer.labels)
PosixPath('explain.png')
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sertk.audio import check_signal
from sertk.errors import SertkError

SILENCE_COLOR = "#bbbbbb"
_BUCKETS = 2000  # waveform drawn as a min/max envelope of at most this many time buckets


def label_colors(labels: Sequence[str]) -> dict[str, Any]:
    """One colour per label (matplotlib's tab10/tab20 in label order) plus grey for silence
    and for sound without speech."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    colors = {label: cmap(i % cmap.N) for i, label in enumerate(labels)}
    colors.setdefault("silence", SILENCE_COLOR)
    colors.setdefault("no speech", SILENCE_COLOR)
    return colors


def _draw_waveform(axes: Any, signal: np.ndarray, sampling_rate: int) -> None:
    """Min/max envelope of ``[samples]`` over time in seconds."""
    size = max(1, -(-len(signal) // _BUCKETS))
    padded = np.pad(signal, (0, (-len(signal)) % size), mode="edge").reshape(-1, size)
    times = (np.arange(len(padded)) * size + size / 2) / sampling_rate
    axes.fill_between(times, padded.min(axis=1), padded.max(axis=1), color="#335577", lw=0.5)
    axes.set(xlim=(0, len(signal) / sampling_rate), ylabel="amplitude")


def _draw_bars(axes: Any, probabilities: dict[str, float], labels: Sequence[str], colors) -> None:
    values = [probabilities.get(label, 0.0) for label in labels]
    axes.barh(range(len(labels)), values, color=[colors[label] for label in labels])
    axes.set_yticks(range(len(labels)), labels=labels)
    axes.invert_yaxis()
    axes.set(xlim=(0, 1), xlabel="probability")
    for row, value in enumerate(values):
        axes.text(min(value + 0.01, 0.9), row, f"{value:.2f}", va="center", fontsize=8)


def prediction_figure(
    signal: np.ndarray, sampling_rate: int, prediction: Any, labels: Sequence[str]
) -> Any:
    """Figure for one :class:`~sertk.recognizer.Prediction` (see the module docstring)."""
    from matplotlib.figure import Figure

    colors = label_colors(labels)
    has_attention = prediction.attention is not None and prediction.attention_rate
    figure = Figure(figsize=(9, 6.5 if has_attention else 5), layout="constrained")
    rows = figure.subplots(3 if has_attention else 2, 1)
    _draw_waveform(rows[0], signal, sampling_rate)
    detail = "no emotion" if prediction.confidence is None else f"{prediction.confidence:.0%}"
    rows[0].set_title(f"{prediction.label} ({detail})")  # "no speech (no emotion)"
    if has_attention:
        weights = np.asarray(prediction.attention)
        times = np.arange(len(weights)) / prediction.attention_rate
        rows[1].fill_between(times, 0, weights, step="post", color=colors[prediction.label])
        rows[1].set(xlim=rows[0].get_xlim(), ylabel="attention", xlabel="time (s)")
    else:
        rows[0].set_xlabel("time (s)")
    _draw_bars(rows[-1], prediction.probabilities or {}, labels, colors)
    return figure


def timeline_figure(
    signal: np.ndarray, sampling_rate: int, timeline: Any, labels: Sequence[str]
) -> Any:
    """Figure for a :class:`~sertk.recognizer.Timeline` (see the module docstring)."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    colors = label_colors(labels)
    figure = Figure(figsize=(11, 5.5), layout="constrained")
    wave, area = figure.subplots(2, 1, sharex=True)
    _draw_waveform(wave, signal, sampling_rate)
    for segment in timeline.segments:
        color = colors.get(segment.label, SILENCE_COLOR)
        for axes in (wave, area):
            axes.axvspan(segment.start, segment.end, color=color, alpha=0.3, lw=0)
        if segment.end - segment.start > 0.04 * timeline.duration:
            wave.text((segment.start + segment.end) / 2, 0.95, segment.label, fontsize=8,
                      ha="center", va="top", transform=wave.get_xaxis_transform())  # fmt: skip
    # one stacked bar per analysed stretch: a window's probabilities over the span it labels
    # (a lone window between silences is as visible as a long run)
    for segment in timeline.segments:
        if not segment.speech or not segment.probabilities:
            continue
        bottom = 0.0
        for label in labels:
            height = float(segment.probabilities.get(label, 0.0))
            area.bar(segment.start, height, width=segment.end - segment.start, bottom=bottom,
                     align="edge", color=colors[label], alpha=0.9, linewidth=0)  # fmt: skip
            bottom += height
    area.set(ylim=(0, 1), ylabel="probability", xlabel="time (s)")
    area.set_xlim(0, timeline.duration)
    handles = [Patch(color=colors[name], label=name) for name in [*labels, "silence"]]
    area.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8)
    return figure


def plot_prediction(
    path_out: str | Path,
    signal: np.ndarray,
    sampling_rate: int,
    prediction_or_timeline: Any,
    labels: Sequence[str],
    *,
    title: str | None = None,
) -> Path:
    """Write the explain PNG for a Prediction or a Timeline of ``signal``; returns the path.

    ``signal`` is ``[samples]`` or ``[channels, samples]`` (drawn mono); ``labels`` fix the
    colours and the bar order (normally ``recognizer.labels``); ``title`` heads the figure
    (say which recording and which model it shows).
    """
    array = check_signal(signal, sampling_rate)
    array = array.mean(axis=0) if array.ndim == 2 else array
    labels = list(labels)
    if not labels:
        raise SertkError("labels must name the model's classes; got none")
    result = prediction_or_timeline
    if hasattr(result, "segments"):
        figure = timeline_figure(array, int(sampling_rate), result, labels)
    elif hasattr(result, "probabilities"):
        figure = prediction_figure(array, int(sampling_rate), result, labels)
    else:
        raise SertkError(
            f"plot_prediction needs a Prediction or a Timeline, got {type(result).__name__}"
        )
    if title:
        figure.suptitle(title, fontsize=10)
    path = Path(path_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, metadata={"Title": title} if title else None)
    return path
