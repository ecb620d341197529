"""Accelerometer augmentation and the load-time GAF dataset (vskd/augment.py)."""

import numpy as np
import pytest

from vskd.augment import (AugmentedGAFDataset, augment, is_identity, motion_gain, random_crop, random_rotation,
                          time_warp)
from vskd.choices import AUGMENT_IDENTITY
from vskd.gaf import accelerometer_to_gaf, build_gaf_store
from vskd.index import Sample


def test_rotation_is_orthonormal_and_bounded():
    rng = np.random.default_rng(0)
    for _ in range(20):
        r = random_rotation(rng, 15.0)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        assert np.linalg.det(r) == pytest.approx(1.0)
        angle = np.degrees(np.arccos((np.trace(r) - 1) / 2))
        assert angle <= 15.0 + 1e-9
    np.testing.assert_allclose(random_rotation(rng, 0.0), np.eye(3))


def test_rotation_keeps_the_magnitude_of_gravity():
    acc = np.tile([0.0, 0.0, 1.0], (50, 1))
    out = augment(acc, np.random.default_rng(1), {"rotation_deg": 30})
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0)
    assert not np.allclose(out, acc)


def test_time_warp_keeps_ends_and_order():
    ramp = np.stack([np.arange(100.0)] * 3, axis=1)
    out = time_warp(ramp, np.random.default_rng(2), 0.3)
    assert out.shape == ramp.shape
    assert out[0, 0] == 0.0 and out[-1, 0] == pytest.approx(99.0)
    assert (np.diff(out[:, 0]) > 0).all()  # monotone: time never runs backwards
    steps = np.diff(out[:, 0])  # local speed, relative to the mean
    assert steps.min() / steps.mean() > 0.7 - 1e-6 and steps.max() / steps.mean() < 1.3 / 0.7


def test_crop_keeps_a_contiguous_part_of_at_least_the_fraction():
    x = np.arange(200.0)[:, None].repeat(3, axis=1)
    rng = np.random.default_rng(3)
    for _ in range(20):
        out = random_crop(x, rng, 0.8)
        assert 160 <= len(out) <= 200
        np.testing.assert_array_equal(np.diff(out[:, 0]), 1.0)


def test_identity_config_changes_nothing():
    acc = np.random.default_rng(4).normal(size=(80, 3))
    assert is_identity(None) and is_identity({}) and is_identity(dict(AUGMENT_IDENTITY))
    assert not is_identity({"jitter": 0.01})
    np.testing.assert_array_equal(augment(acc, np.random.default_rng(0), {}), acc)


def test_motion_gain_scales_the_motion_about_the_mean():
    acc = np.array([[0.0, 0.0, 1.0], [0.0, 0.0, 3.0], [0.0, 1.5, 2.0]])  # mean (0, 0.5, 2)
    s = np.random.default_rng(7).uniform(0.8, 1.2)
    out = motion_gain(acc, np.random.default_rng(7), 0.2)
    np.testing.assert_allclose(out, [[0, -0.5 * s + 0.5, 2 - s], [0, -0.5 * s + 0.5, 2 + s], [0, s + 0.5, 2]])
    np.testing.assert_allclose(out.mean(axis=0), [0.0, 0.5, 2.0])  # the mean (about gravity) stays
    assert 0.8 <= s <= 1.2


def test_gain_off_leaves_every_other_draw_as_it_was():
    acc = np.random.default_rng(8).normal(size=(90, 3))
    cfg = {"rotation_deg": 15, "time_warp": 0.2, "crop": 0.9, "jitter": 0.01}
    np.testing.assert_array_equal(augment(acc, np.random.default_rng(1), {**cfg, "gain": 0.0}),
                                  augment(acc, np.random.default_rng(1), cfg))
    assert not np.array_equal(augment(acc, np.random.default_rng(1), {**cfg, "gain": 0.2}),
                              augment(acc, np.random.default_rng(1), cfg))


def test_per_axis_gain_leaves_the_gaf_unchanged():
    """Under `gaf.scale: axis` a gain changes nothing: the GAF min-max scales every axis (eq. 1)."""
    acc = np.random.default_rng(5).normal(size=(120, 3))
    np.testing.assert_allclose(accelerometer_to_gaf(acc * [0.5, 2.0, 3.0], 32),
                               accelerometer_to_gaf(acc, 32), atol=1e-6)


@pytest.fixture
def gaf_store(tmp_path):
    rng = np.random.default_rng(6)
    series = {f"a{i}_s1_t1": rng.normal(size=(60 + 10 * i, 3)) for i in range(1, 4)}
    samples = [Sample(k, i, 1, 1, None, k) for i, k in enumerate(series)]
    path = tmp_path / "gaf.h5"
    build_gaf_store(samples, lambda k: series[k], path, 16, "summation", ["a", "b", "c"], "t")
    return path, series


def test_store_keeps_the_raw_series(gaf_store):
    import h5py

    path, series = gaf_store
    with h5py.File(path) as h5:
        offsets = h5["acc_offsets"][()]
        np.testing.assert_array_equal(offsets, [0, 70, 150, 240])
        np.testing.assert_allclose(h5["acc"][70:150], series["a2_s1_t1"], rtol=1e-6)


def test_dataset_without_augmentation_matches_the_store(gaf_store):
    import h5py

    path, _ = gaf_store
    ds = AugmentedGAFDataset(path, [0, 2], {"jitter": 0.0}, seed=0)
    image, label, row = ds[1]
    with h5py.File(path) as h5:
        np.testing.assert_allclose(image.numpy(), h5["gaf"][2], atol=1e-5)
    assert (label, row) == (2, 2)


def test_dataset_is_seeded_by_seed_epoch_and_row(gaf_store):
    path, _ = gaf_store
    cfg = {"rotation_deg": 10, "time_warp": 0.2, "crop": 0.8, "jitter": 0.02}
    a, b = AugmentedGAFDataset(path, [0, 1, 2], cfg, seed=0), AugmentedGAFDataset(path, [0, 1, 2], cfg, seed=0)
    np.testing.assert_array_equal(a[1][0], b[1][0])
    b.set_epoch(1)
    assert not np.array_equal(a[1][0], b[1][0])
    assert a[1][0].shape == (3, 16, 16)
