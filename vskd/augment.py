"""Training-time augmentation of the accelerometer series, encoded to a GAF at load time.

Each transform stands for a variation between real recordings of the same action:

* ``rotation_deg``: the watch sits at a slightly different angle on every wrist, so the
  three axes mix. A random 3-D rotation of up to this many degrees about a random axis.
* ``time_warp``: people move at different speeds, and not uniformly within one action.
  A smooth, monotone warp of the time axis whose local speed stays within 1 +- this.
* ``crop``: the trial's start and end are set by hand, a little early or late. A random
  contiguous part of at least this fraction of the trial is kept.
* ``gain``: people move with more or less vigour. On the development subjects one subject's
  motion in one action is 0.83-1.16x the four subjects' mean (interquartile ranges over the
  27 actions; RMS about the 1 s moving average; ``python -m benchmarks.wrist_vigour``),
  against 7 % between one subject's own trials. The trial's motion about its mean is scaled
  by a factor uniform in 1 +- this; the mean (about gravity in the wrist's average
  orientation) stays. Under the min-max scales (``gaf.scale: axis``/``joint``) this affine
  change leaves the image unchanged; under ``tanh`` and ``sigmoid`` intensity is information.
* ``jitter``: sensor noise, Gaussian, this standard deviation in g.

Randomness is a function of (seed, epoch, row) alone, as for the teacher's clips, so a
training run does not depend on the number of loader workers.
"""

from __future__ import annotations

import numpy as np
import torch

from vskd.choices import AUGMENT_IDENTITY
from vskd.gaf import GAFDataset, accelerometer_to_gaf

WARP_KNOTS = 4  # speed changes this many times over a trial: smooth at 50 Hz


def is_identity(cfg: dict | None) -> bool:
    return not cfg or all(cfg.get(k, v) == v for k, v in AUGMENT_IDENTITY.items())


def random_rotation(rng: np.random.Generator, max_deg: float) -> np.ndarray:
    """Rodrigues' rotation about a uniformly random axis by an angle uniform in +-max_deg."""
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    angle = np.deg2rad(rng.uniform(-max_deg, max_deg))
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    return np.eye(3) + np.sin(angle) * k + (1 - np.cos(angle)) * (k @ k)


def time_warp(acc: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Resample (N, 3) along a warped clock: local speed piecewise linear in [1-s, 1+s]."""
    n = len(acc)
    speed = np.interp(np.linspace(0, 1, n), np.linspace(0, 1, WARP_KNOTS),
                      rng.uniform(1 - strength, 1 + strength, WARP_KNOTS))
    clock = np.concatenate([[0.0], np.cumsum(speed[:-1])])
    clock *= (n - 1) / clock[-1]  # same span: the trial is neither lengthened nor cut
    src = np.arange(n)
    return np.stack([np.interp(clock, src, acc[:, c]) for c in range(acc.shape[1])], axis=1)


def random_crop(acc: np.ndarray, rng: np.random.Generator, min_fraction: float) -> np.ndarray:
    n = len(acc)
    keep = max(2, int(round(n * rng.uniform(min_fraction, 1.0))))
    start = int(rng.integers(0, n - keep + 1))
    return acc[start:start + keep]


def motion_gain(acc: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """mean + s (acc - mean), s uniform in [1 - strength, 1 + strength]: the motion about the
    trial's mean scaled, the mean itself (about gravity) kept."""
    mean = acc.mean(axis=0, keepdims=True)
    return mean + rng.uniform(1 - strength, 1 + strength) * (acc - mean)


def augment(acc: np.ndarray, rng: np.random.Generator, cfg: dict) -> np.ndarray:
    """One random variant of an (N, 3) accelerometer trial (module docstring)."""
    cfg = {**AUGMENT_IDENTITY, **cfg}
    out = np.asarray(acc, dtype=np.float64)
    if cfg["rotation_deg"] > 0:
        out = out @ random_rotation(rng, cfg["rotation_deg"]).T
    if cfg["time_warp"] > 0:
        out = time_warp(out, rng, cfg["time_warp"])
    if cfg["crop"] < 1:
        out = random_crop(out, rng, cfg["crop"])
    if cfg["gain"] > 0:  # drawn only when on: the other transforms' draws stay as they were
        out = motion_gain(out, rng, cfg["gain"])
    if cfg["jitter"] > 0:
        out = out + rng.normal(0.0, cfg["jitter"], size=out.shape)
    return out


class AugmentedGAFDataset(GAFDataset):
    """(image, label, row) like :class:`vskd.gaf.GAFDataset`, the image encoded from a fresh
    augmentation of the trial's accelerometer (stored in ``gaf.h5`` as ``acc``) every epoch."""

    def __init__(self, path, rows, cfg: dict, seed: int):
        import h5py

        from vskd.h5store import get_meta

        super().__init__(path, rows)
        self.cfg, self.seed = dict(cfg), int(seed)
        with h5py.File(path, "r") as h5:
            if "acc" not in h5:
                raise ValueError(f"{path}: no raw accelerometer ('acc'), written by the gaf stage "
                                 "since student.augment exists; rerun it (dvc repro gaf@<dataset>)")
            self.offsets = h5["acc_offsets"][()]
            self.image_size, self.method = int(get_meta(h5, "image_size")), get_meta(h5, "method")
            self.scale = get_meta(h5, "scale") if "scale" in h5.attrs else "axis"
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i):
        row = int(self.rows[i])
        acc = self._file()["acc"][self.offsets[row]:self.offsets[row + 1]]
        rng = np.random.default_rng((self.seed, self.epoch, row))
        image = accelerometer_to_gaf(augment(acc, rng, self.cfg), self.image_size, self.method, self.scale)
        return torch.from_numpy(image), int(self.labels[row]), row
