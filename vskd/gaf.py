"""Gramian Angular Field (Wang & Oates 2015; VSKD paper section 3.1, eq. 1).

A series x_1..x_n is scaled to [-1, 1] (min-max per trial, or ``tanh`` of its value in g) or to
(0, 1) (``sigmoid`` of its value in g), read as angles phi_i = arccos(x_i), and encoded as the
n x n field

    summation  (GASF)  G[i, j] = cos(phi_i + phi_j)
    difference (GADF)  G[i, j] = sin(phi_i - phi_j)

computed in closed form without arccos: cos(phi) = x and sin(phi) = sqrt(1 - x^2) on [0, pi].
On [-1, 1] the GASF cannot tell a series from its negative: arccos(-x) = pi - arccos(x), so
cos(phi_i + phi_j) is unchanged. On (0, 1) the angles stay in [0, pi/2), where the GASF is one
to one (its diagonal is 2 x_i^2 - 1); Wang & Oates allow either range.
Each accelerometer axis gives one field; the three are stacked as channels (x, y, z), and the
whole trial (no windowing) is encoded, then resized to a fixed image size, as the authors did.
We keep float32 tensors; the authors' JPEG round trip is deliberately not reproduced.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from vskd.choices import GAF_METHODS, GAF_SCALES

# Axes whose range is below this (in g) are treated as constant. Per-trial min-max scaling
# of a near-constant series would otherwise turn sensor noise into full-range texture.
CONSTANT_RANGE = 1e-8
MINMAX_SCALES = ("axis", "joint")

# gaf.scale "tanh": a -> tanh(a / TANH_SCALE_G), one fixed map of g for every trial. Min-max
# scaling stretches every trial to the full range, so a gentle wave and a vigorous one give
# the same field; a fixed map keeps the intensity and the gravity offset (the orientation).
# 2 g: gravity at rest maps to tanh(0.5) = 0.46, a 4 g swing to 0.96, so the wrist's working
# range (UTD-MHAD trials span 1.6-8.6 g peak to peak, 5th-95th percentile) stays unsaturated.
TANH_SCALE_G = 2.0
# A sensor at rest reads |a| = 1 g, and over a trial the median |a| stays near it whatever the
# activity. Far outside this range the series is not in g (m/s^2 reads 9.81 at rest), and
# tanh(a / 2 g) would saturate nearly every sample.
IN_G_MEDIAN_NORM = (0.5, 2.0)
# gaf.scale "sigmoid": a -> sigmoid(a / 1 g) = (1 + tanh(a / 2 g)) / 2, the tanh map moved onto
# (0, 1). The GASF on [-1, 1] erases each axis' sign (module docstring): which way the forearm
# points and which way it moves, e.g. a circle drawn clockwise against counter-clockwise, whose
# series differ by the sign of one axis when gravity lies along another. On (0, 1) it survives.
IN_G_SCALES = ("tanh", "sigmoid")


def scale_minmax(x: np.ndarray, scale: str = "axis") -> np.ndarray:
    """Scale each series (last axis) to [-1, 1]; ``joint``: one range for all the series of
    the last two axes (the three axes of a trial). A constant series maps to 0 (phi = pi/2)."""
    if scale not in MINMAX_SCALES:
        raise ValueError(f"scale must be one of {MINMAX_SCALES} for min-max scaling, got {scale!r}")
    x = np.asarray(x, dtype=np.float64)
    over = (-2, -1) if scale == "joint" and x.ndim >= 2 else -1
    lo = x.min(axis=over, keepdims=True)
    hi = x.max(axis=over, keepdims=True)
    span = hi - lo
    constant = span < CONSTANT_RANGE
    scaled = (2.0 * (x - lo) / np.where(constant, 1.0, span)) - 1.0
    scaled = np.where(constant, 0.0, scaled)
    # Rounding can step just outside [-1, 1]; sqrt(1 - x^2) must stay real.
    return np.clip(scaled, -1.0, 1.0)


def scale_series(x: np.ndarray, scale: str) -> np.ndarray:
    """Each series (last axis) scaled as ``gaf.scale`` says: per-trial min-max to [-1, 1]
    (:func:`scale_minmax`, ``axis``/``joint``), the fixed map tanh(a / TANH_SCALE_G) to
    [-1, 1], or ``sigmoid``: (1 + tanh(a / TANH_SCALE_G)) / 2 to (0, 1)."""
    if scale in IN_G_SCALES:
        t = np.tanh(np.asarray(x, dtype=np.float64) / TANH_SCALE_G)
        return t if scale == "tanh" else 0.5 * (1.0 + t)
    return scale_minmax(x, scale)


def _angles(x: np.ndarray, method: str, scale: str = "axis") -> tuple[np.ndarray, np.ndarray]:
    """Validated series (..., n) -> (cos phi, sin phi), each (..., n), float64."""
    if method not in GAF_METHODS:
        raise ValueError(f"method must be one of {GAF_METHODS}, got {method!r}")
    x = np.asarray(x)
    if x.shape[-1] < 2:
        raise ValueError(f"a series needs at least 2 samples, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("series contains NaN or inf")
    if scale not in GAF_SCALES:
        raise ValueError(f"scale must be one of {GAF_SCALES}, got {scale!r}")
    cos = scale_series(x, scale)
    return cos, np.sqrt(1.0 - cos**2)


def _field(cos: np.ndarray, sin: np.ndarray, method: str) -> np.ndarray:
    """The GAF as a difference of two outer products: (..., m) -> (..., m, m)."""
    if method == "summation":  # cos(a+b) = cos a cos b - sin a sin b
        return cos[..., :, None] * cos[..., None, :] - sin[..., :, None] * sin[..., None, :]
    # sin(a-b) = sin a cos b - cos a sin b
    return sin[..., :, None] * cos[..., None, :] - cos[..., :, None] * sin[..., None, :]


def gramian_angular_field(x: np.ndarray, method: str = "summation", scale: str = "axis") -> np.ndarray:
    """GAF of each series along the last axis: (..., n) -> (..., n, n), float64."""
    return _field(*_angles(x, method, scale), method)


@functools.lru_cache(maxsize=512)
def resize_matrix(n: int, size: int) -> np.ndarray:
    """(size, n) float64 matrix R of torch's antialiased bilinear resize of a length-n axis to
    ``size``: resizing an n x n image G gives R G R^T (bilinear resizing is separable and linear).

    Read off by resizing the identity, so it is torch's resize, weights and all. n == size: the
    identity. Cached per (n, size) and read-only (the export graph and every trial share it).
    """
    if n < 2 or size < 1:
        raise ValueError(f"need n >= 2 and size >= 1, got n={n}, size={size}")
    if n == size:
        r = np.eye(n)
    else:
        eye = torch.eye(n, dtype=torch.float64).reshape(n, 1, 1, n)
        rows = F.interpolate(eye, size=(1, size), mode="bilinear", align_corners=False, antialias=True)
        r = rows[:, 0, 0, :].T.numpy().copy()
    r.flags.writeable = False
    return r


def accelerometer_to_gaf(acc: np.ndarray, image_size: int, method: str = "summation",
                         scale: str = "axis") -> np.ndarray:
    """(N, 3) accelerometer -> (3, image_size, image_size) float32 image, channels x, y, z.

    The n x n fields are resized with bilinear interpolation and antialiasing (a trial is
    usually longer than the image is wide, so this mostly shrinks).

    Computed factored: a GAF is a difference of two outer products (GASF = c c^T - s s^T,
    GADF = s c^T - c s^T, with c = cos phi, s = sin phi), and the resize is R G R^T, so
    the resized field is (Rc)(Rc)^T - (Rs)(Rs)^T: the n x n field is never built. Equal
    to resizing :func:`gramian_angular_field` (tested to 1e-6) at O(n S + S^2) per axis
    instead of O(n^2 + n S^2).
    """
    acc = np.asarray(acc)
    if acc.ndim != 2 or acc.shape[1] != 3:
        raise ValueError(f"expected an (N, 3) accelerometer array, got shape {acc.shape}")
    cos, sin = _angles(acc.T, method, scale)  # (3, n) each
    if cos.shape[-1] != image_size:
        r = resize_matrix(cos.shape[-1], image_size)
        cos, sin = cos @ r.T, sin @ r.T  # (3, S)
    return np.clip(_field(cos, sin, method), -1.0, 1.0).astype(np.float32)


def check_in_g(series: list[np.ndarray], sensors: list, scale: str = "tanh") -> None:
    """``gaf.scale: tanh`` and ``sigmoid`` read their input in g: stop when the trials' median
    |a| is not ~1 g."""
    medians = np.array([np.median(np.linalg.norm(np.asarray(a, dtype=np.float64), axis=1)) for a in series])
    typical = float(np.median(medians))
    low, high = IN_G_MEDIAN_NORM
    if not low <= typical <= high:
        example = sensors[int(np.argmin(np.abs(medians - typical)))]
        raise ValueError(f"gaf.scale {scale} expects the accelerometer in g, but the median |a| of the trials is "
                         f"{typical:.2f} (e.g. {example}); a sensor at rest reads 1 g. Convert the dataset "
                         f"reader's output to g (m/s^2: divide by 9.81) or set gaf.scale: joint")


class GAFDataset(torch.utils.data.Dataset):
    """GAF images from ``gaf.h5`` for the rows given: (image, label, row).

    The file is opened lazily in each worker (an h5py handle must not cross a fork); one
    sample is one chunk, so a read is one seek.
    """

    def __init__(self, path, rows):
        import h5py

        from vskd.h5store import read_index

        self.path, self.rows = path, np.asarray(rows)
        with h5py.File(path, "r") as h5:
            self.labels = read_index(h5)["labels"]
        self._h5 = None

    def __len__(self):
        return len(self.rows)

    def _file(self):
        import h5py

        if self._h5 is None:
            self._h5 = h5py.File(self.path, "r")
        return self._h5

    def __getitem__(self, i):
        row = int(self.rows[i])
        return torch.from_numpy(self._file()["gaf"][row]), int(self.labels[row]), row


def build_gaf_store(samples, read_accelerometer, out_path, image_size: int, method: str,
                    class_names: list[str], dataset: str, progress=lambda it, **kw: it,
                    on_bad_sample: str = "error", scale: str = "axis") -> dict:
    """Encode every sample's accelerometer into ``out_path`` (atomically): /gaf (N, 3, S, S),
    and the raw series as /acc with /acc_offsets.

    A recording that cannot be read or encoded (a bad file, NaN or inf, all three axes
    constant: a dead sensor) stops the stage, or with ``on_bad_sample="skip"`` is left out,
    counted (``skipped``) and recorded in the store's ``skipped`` attribute. One or two
    constant axes are kept (their GAF channel is constant) and counted (``constant_axis``).
    """
    import h5py

    from vskd.badsamples import BadSampleError, BadSamples
    from vskd.h5store import atomic_path, set_meta, write_index
    from vskd.index import id_listing, index_columns

    bad = BadSamples(on_bad_sample)
    lengths, kept, constant_axis, series = [], [], [], []
    with atomic_path(out_path) as tmp, h5py.File(tmp, "w") as h5:
        images = h5.create_dataset("gaf", shape=(len(samples), 3, image_size, image_size),
                                   maxshape=(None, 3, image_size, image_size),
                                   dtype=np.float32, chunks=(1, 3, image_size, image_size))
        for sample in progress(samples, desc="encode GAF", unit="trial"):
            try:
                acc = read_accelerometer(sample.sensor)
                image = accelerometer_to_gaf(acc, image_size, method, scale)
            except (ValueError, OSError) as exc:  # the reader's LayoutError, NaN/inf, shape, I/O
                bad.handle(sample.id, sample.sensor, str(exc))
                continue
            constant = np.ptp(np.asarray(acc, dtype=np.float64), axis=0) < CONSTANT_RANGE
            if constant.all():
                bad.handle(sample.id, sample.sensor, "all three accelerometer axes are constant "
                           "(a dead or disconnected sensor); replace or remove the recording")
                continue
            if constant.any():
                constant_axis.append(sample.id)
            images[len(kept)] = image
            series.append(np.asarray(acc, dtype=np.float32))
            lengths.append(len(acc))
            kept.append(sample)
        if not kept:
            raise BadSampleError(f"{out_path}: none of the {len(samples)} sensor recordings could be "
                                 f"encoded ({len(bad.skipped)} skipped); nothing to train on")
        if scale in IN_G_SCALES:
            check_in_g(series, [s.sensor for s in kept], scale)
        images.resize(len(kept), axis=0)
        write_index(h5, index_columns(kept))
        h5.create_dataset("lengths", data=np.array(lengths, dtype=np.int64))
        # The raw trials, concatenated (row r is acc[acc_offsets[r]:acc_offsets[r + 1]]): the
        # student's augmentation re-encodes them at load time (vskd/augment.py).
        h5.create_dataset("acc", data=np.concatenate(series), chunks=True)
        h5.create_dataset("acc_offsets", data=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
        set_meta(h5, class_names=class_names, dataset=dataset, method=method, image_size=image_size, scale=scale,
                 skipped=bad.skipped)
    summary = {"trials": len(kept), "min_length": int(min(lengths)), "max_length": int(max(lengths))}
    if constant_axis:
        summary["constant_axis"] = id_listing(constant_axis)
    return {**summary, **bad.summary()}
