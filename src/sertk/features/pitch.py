"""Vectorised YIN F0 tracking (de Cheveigné & Kawahara, 2002) over all frames at once.

Frames are centred every ``hop`` samples like the other hand-crafted descriptors
(:func:`sertk.features.frames.frame_signal`). Large temporaries live in per-thread scratch arrays
(:mod:`sertk.features.scratch`) and the running sums run over contiguous memory; the arithmetic
is the same as in earlier releases, so F0 and voicing decisions are unchanged bit for bit.

>>> import numpy as np
>>> t = np.arange(16000) / 16000
>>> f0, prob, voiced = yin(np.sin(2 * np.pi * 200 * t), 16000, hop=160)
>>> bool(np.allclose(f0[5:-5], 200, rtol=0.01)), bool(voiced[5:-5].all())
(True, True)
"""

from __future__ import annotations

import numpy as np
from scipy.fft import irfft, next_fast_len, rfft

from sertk.features.frames import frame_signal
from sertk.features.scratch import scratch

_EPS = 1e-10


def yin(
    x: np.ndarray,
    sampling_rate: int,
    *,
    hop: int,
    fmin: float = 60.0,
    fmax: float = 500.0,
    threshold: float = 0.25,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """F0 (Hz, 0 when unvoiced), voicing probability and voiced flag (0/1), each
    ``[1 + samples // hop]`` float64, of a float64 ``[samples]`` signal."""
    tau_min = max(2, int(sampling_rate // fmax))
    tau_max = int(np.ceil(sampling_rate / fmin))
    win = tau_max + 1  # integration window: one longest period
    cmnd, energy = _cumulative_mean_normalised_difference(x, hop, win, tau_max)
    inner = cmnd[:, tau_min : tau_max + 1]
    is_min = (inner <= cmnd[:, tau_min - 1 : tau_max]) & (
        inner <= cmnd[:, tau_min + 1 : tau_max + 2]
    )
    dips = is_min & (inner < threshold)
    first = np.argmax(dips, axis=1)
    best = np.where(dips.any(axis=1), first, np.argmin(inner, axis=1)) + tau_min
    rows = np.arange(len(cmnd))
    left, mid, right = cmnd[rows, best - 1], cmnd[rows, best], cmnd[rows, best + 1]
    curvature = left - 2.0 * mid + right
    shift = np.where(curvature > _EPS, 0.5 * (left - right) / np.maximum(curvature, _EPS), 0.0)
    period = best + np.clip(shift, -1.0, 1.0)
    prob = np.clip(1.0 - mid, 0.0, 1.0)
    frame_energy = energy / win
    loud = frame_energy > max(1e-10, 1e-5 * frame_energy.max())
    voiced = dips.any(axis=1) & loud
    f0 = np.where(voiced, sampling_rate / period, 0.0)
    return f0, np.where(loud, prob, 0.0), voiced.astype(np.float64)


def _cumulative_mean_normalised_difference(
    x: np.ndarray, hop: int, win: int, tau_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """YIN's ``d'(tau)`` ``[frames, tau_max + 2]`` (a scratch array) and each frame's energy
    over the integration window ``[frames]``."""
    view = frame_signal(x, win + tau_max + 1, hop)
    n, length = view.shape
    lags = tau_max + 2
    frames = np.subtract(
        view, view.mean(axis=1, keepdims=True), out=scratch("yin.frames", (n, length))
    )
    # single precision and a 2-3-5 smooth length make the FFTs ~6x faster; the lag products stay exact enough
    n_fft = next_fast_len(length + win, real=True)
    single = scratch("yin.single", (n, n_fft), np.float32)  # zero padded here, not in scipy
    single[:, length:] = 0.0
    np.copyto(single[:, :length], frames, casting="same_kind")
    spectrum = rfft(single, axis=1)
    single[:, win:] = 0.0  # now the integration window alone
    spectrum *= np.conjugate(rfft(single, axis=1))
    acf = scratch("yin.acf", (n, lags))
    np.copyto(acf, irfft(spectrum, n_fft, axis=1)[:, :lags])
    del spectrum
    power = scratch("yin.power", (n, length + 1))  # running sum of squares along each frame
    power[:, 0] = 0.0
    np.cumsum(np.square(frames, out=frames), axis=1, out=power[:, 1:])
    energy = power[:, win] - power[:, 0]
    diff = np.subtract(
        power[:, win : win + lags], power[:, :lags], out=scratch("yin.diff", (n, lags))
    )
    diff += energy[:, None]
    acf *= 2.0
    diff -= acf
    np.maximum(diff, 0.0, out=diff)
    cum = np.cumsum(diff[:, 1:], axis=1, out=scratch("yin.cum", (n, lags - 1)))
    cmnd = scratch("yin.cmnd", (n, lags))
    cmnd.fill(1.0)
    weighted = np.multiply(diff[:, 1:], np.arange(1, lags), out=acf[:, 1:])
    with np.errstate(divide="ignore", invalid="ignore"):
        np.divide(weighted, cum, out=cmnd[:, 1:], where=cum > _EPS)
    return cmnd, energy
