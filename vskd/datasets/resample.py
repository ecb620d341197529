"""Resampling sensor recordings by linear interpolation: onto a time grid, or to a length.

Berkeley-MHAD's Shimmer accelerometers log at an irregular ~31 Hz (gaps of 22-46 Hz), and
phone sensors are no better. The GAF treats its input as equally spaced in time, so such a
recording is first interpolated linearly onto t0, t0 + 1/rate, ... up to its last sample
(:func:`resample_uniform`, the dataset readers).

A model with a fixed-length input sees a whole recording stretched or shrunk to that many
samples, first and last kept (:func:`resample_to_length`): the exported ONNX student's
window (vskd.export, vskd.predict) and MiniRocket's series length (vskd.minirocket). One
definition, so that both see a recording the same way.
"""

from __future__ import annotations

import numpy as np


def resample_uniform(t, x, rate_hz: float) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation of ``x`` (N, C), sampled at times ``t`` (N,) in seconds, at
    ``rate_hz``. Returns (grid, values): grid[k] = t0 + k / rate_hz for every k with
    grid[k] <= t_last.

    Out-of-order samples are sorted by time; samples sharing a timestamp are averaged.
    """
    if not rate_hz > 0:
        raise ValueError(f"rate_hz must be > 0, got {rate_hz!r}")
    t = np.asarray(t, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if t.ndim != 1 or len(t) != len(x):
        raise ValueError(f"timestamps {t.shape} and samples {x.shape} do not match")
    if not (np.isfinite(t).all() and np.isfinite(x).all()):
        raise ValueError("timestamps or samples contain NaN or inf")
    order = np.argsort(t, kind="stable")
    t, x = t[order], x[order]
    times, inverse, counts = np.unique(t, return_inverse=True, return_counts=True)
    if len(times) < len(t):
        sums = np.zeros((len(times), x.shape[1]))
        np.add.at(sums, inverse, x)
        x = sums / counts[:, None]
    rel = times - times[0]  # relative times keep full precision for unix timestamps
    # a last sample within 0.1 % of a period of a grid point counts as reaching it (float
    # timestamps of the epoch carry ~1e-7 s of rounding)
    n = int(np.floor(rel[-1] * rate_hz + 1e-3)) + 1 if len(rel) > 1 else 1
    if n < 2:
        raise ValueError(f"the recording spans {rel[-1]:.4f} s: less than one sample period at "
                         f"{rate_hz} Hz")
    grid = np.arange(n) / rate_hz
    values = np.column_stack([np.interp(grid, rel, x[:, c]) for c in range(x.shape[1])])
    return times[0] + grid, values


def resample_to_length(x, length: int) -> np.ndarray:
    """(N, C) samples -> (length, C) float64 by linear interpolation at ``length`` equally
    spaced positions from the first sample to the last (both kept exactly).

    A recording already ``length`` long comes back as a float64 copy, unchanged.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"expected an (N >= 2, C) recording, got shape {x.shape}")
    if isinstance(length, bool) or int(length) != length or length < 2:
        raise ValueError(f"length must be an integer >= 2, got {length!r}")
    if len(x) == length:
        return x.copy()
    source = np.arange(len(x), dtype=np.float64)
    target = np.linspace(0.0, len(x) - 1.0, int(length))
    return np.stack([np.interp(target, source, x[:, k]) for k in range(x.shape[1])], axis=1)
