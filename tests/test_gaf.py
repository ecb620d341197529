import math

import numpy as np
import pytest

from vskd.gaf import accelerometer_to_gaf, gramian_angular_field, scale_minmax

S = 2 * math.sqrt(2) / 3  # sin(arccos(1/3))


def test_gasf_four_samples_by_hand():
    # [0, 1, 2, 3] scales to [-1, -1/3, 1/3, 1]; G[i, j] = x_i x_j - sqrt(1-x_i^2) sqrt(1-x_j^2)
    expected = np.array([
        [1, 1 / 3, -1 / 3, -1],
        [1 / 3, -7 / 9, -1, -1 / 3],
        [-1 / 3, -1, -7 / 9, 1 / 3],
        [-1, -1 / 3, 1 / 3, 1],
    ])
    np.testing.assert_allclose(gramian_angular_field(np.array([0.0, 1, 2, 3])), expected, atol=1e-12)


def test_gadf_four_samples_by_hand():
    # G[i, j] = sin(phi_i - phi_j); sin(phi) = [0, S, S, 0], cos(phi) = [-1, -1/3, 1/3, 1]
    g = gramian_angular_field(np.array([0.0, 1, 2, 3]), method="difference")
    assert g[0, 1] == pytest.approx(S)            # 0 * (-1/3) - (-1) * S
    assert g[1, 2] == pytest.approx(2 * S / 3)    # S/3 + S/3
    assert g[1, 0] == pytest.approx(-S)
    np.testing.assert_allclose(np.diag(g), 0, atol=1e-12)
    np.testing.assert_allclose(g, -g.T, atol=1e-12)


def test_matches_closed_form_with_arccos():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 57))
    phi = np.arccos(scale_minmax(x))
    np.testing.assert_allclose(gramian_angular_field(x), np.cos(phi[:, :, None] + phi[:, None, :]), atol=1e-12)
    np.testing.assert_allclose(gramian_angular_field(x, "difference"),
                               np.sin(phi[:, :, None] - phi[:, None, :]), atol=1e-12)


def test_scaling_is_per_series_and_hits_both_ends():
    x = np.array([[5.0, 7.0, 6.0], [-2.0, -4.0, -3.0]])
    np.testing.assert_allclose(scale_minmax(x), [[-1, 1, 0], [1, -1, 0]])


def test_constant_axis_gives_finite_image():
    acc = np.stack([np.linspace(-1, 1, 50), np.full(50, 0.98), np.sin(np.arange(50.0))], axis=1)
    image = accelerometer_to_gaf(acc, 16)
    assert np.isfinite(image).all()
    np.testing.assert_allclose(image[1], -1.0, atol=1e-6)  # phi = pi/2 everywhere: cos(pi) = -1
    assert np.isfinite(accelerometer_to_gaf(acc, 16, "difference")).all()


def test_accelerometer_image_shape_channels_and_range():
    rng = np.random.default_rng(1)
    acc = rng.normal(size=(177, 3))
    image = accelerometer_to_gaf(acc, 64)
    assert image.shape == (3, 64, 64) and image.dtype == np.float32
    assert image.min() >= -1 and image.max() <= 1
    # channel c is the field of axis c: an exact-size image equals the raw field
    exact = accelerometer_to_gaf(acc[:32], 32)
    np.testing.assert_allclose(exact[2], gramian_angular_field(acc[:32, 2]), atol=1e-6)


@pytest.mark.parametrize("bad, message", [
    (np.zeros((10, 2)), "expected an \\(N, 3\\)"),
    (np.zeros((1, 3)), "at least 2 samples"),
    (np.array([[0.0, 1, np.nan]] * 4), "NaN or inf"),
])
def test_bad_input_is_rejected_clearly(bad, message):
    with pytest.raises(ValueError, match=message):
        accelerometer_to_gaf(bad, 8)


def test_unknown_method():
    with pytest.raises(ValueError, match="method must be one of"):
        gramian_angular_field(np.arange(4.0), "markov")


@pytest.mark.parametrize("method", ["summation", "difference"])
@pytest.mark.parametrize("n, size", [(177, 64), (200, 56), (40, 56), (5, 8)])
def test_factored_resize_equals_resizing_the_full_field(method, n, size):
    # accelerometer_to_gaf never builds the n x n field: it resizes cos and sin and takes
    # outer products. It must equal torch's antialiased bilinear resize of the full field.
    import torch
    import torch.nn.functional as F

    acc = np.random.default_rng(n).normal(size=(n, 3)).cumsum(axis=0)
    full = torch.from_numpy(gramian_angular_field(acc.T, method)).unsqueeze(0)
    ref = F.interpolate(full, size=(size, size), mode="bilinear", align_corners=False,
                        antialias=True)[0].clamp(-1, 1).numpy()
    np.testing.assert_allclose(accelerometer_to_gaf(acc, size, method), ref, atol=1e-6)


def test_resize_matrix_rows_are_averaging_weights():
    from vskd.gaf import resize_matrix

    r = resize_matrix(200, 50)  # 4:1 shrink: each output averages neighbouring inputs
    assert r.shape == (50, 200)
    np.testing.assert_allclose(r.sum(axis=1), 1.0, atol=1e-12)
    assert (r >= 0).all()
    np.testing.assert_array_equal(resize_matrix(7, 7), np.eye(7))


def test_joint_scale_keeps_the_axes_relative_size_by_hand():
    from vskd.gaf import scale_minmax

    x = np.array([[0.0, 1.0], [0.0, 3.0], [1.0, 1.0]])  # three axes, two samples
    np.testing.assert_allclose(scale_minmax(x, "axis"), [[-1, 1], [-1, 1], [0, 0]])  # constant axis -> 0
    # one range, [0, 3], for all three: 0 -> -1, 1 -> -1/3, 3 -> 1
    np.testing.assert_allclose(scale_minmax(x, "joint"), [[-1, -1 / 3], [-1, 1], [-1 / 3, -1 / 3]])
    with pytest.raises(ValueError, match="scale must be one of"):
        scale_minmax(x, "global")


def test_joint_scale_sees_gravity_that_axis_scaling_erases():
    from vskd.gaf import accelerometer_to_gaf

    t = np.linspace(0, 2 * np.pi, 60)
    motion = np.stack([np.sin(t), 0.1 * np.cos(t), 0.1 * np.sin(t)], axis=1)
    tilted = motion + [0.0, 0.0, 1.0]  # the same motion with gravity on z: another forearm angle
    assert np.allclose(accelerometer_to_gaf(motion, 16, scale="axis"), accelerometer_to_gaf(tilted, 16, scale="axis"),
                       atol=1e-6)
    assert not np.allclose(accelerometer_to_gaf(motion, 16, scale="joint"),
                           accelerometer_to_gaf(tilted, 16, scale="joint"), atol=1e-3)


def test_tanh_scale_by_hand():
    from vskd.gaf import TANH_SCALE_G, scale_series

    assert TANH_SCALE_G == 2.0
    x = np.array([[0.0, 2.0, -4.0]])  # g
    np.testing.assert_allclose(scale_series(x, "tanh"), [[0.0, np.tanh(1.0), -np.tanh(2.0)]])
    # GASF of a two-sample series at 0 g and 2 g: cos(phi_i + phi_j) = c_i c_j - s_i s_j
    c = np.array([0.0, np.tanh(1.0)])
    s = np.sqrt(1 - c ** 2)
    np.testing.assert_allclose(gramian_angular_field(np.array([0.0, 2.0]), scale="tanh"),
                               np.outer(c, c) - np.outer(s, s))


def test_tanh_scale_keeps_intensity_that_minmax_erases():
    from vskd.gaf import accelerometer_to_gaf

    t = np.linspace(0, 2 * np.pi, 60)
    gentle = np.stack([np.sin(t), 0.5 * np.cos(t), 0.2 * np.sin(2 * t)], axis=1) * 0.3 + [-1.0, 0.0, 0.0]
    vigorous = (gentle - [-1.0, 0.0, 0.0]) * 3.0 + [-1.0, 0.0, 0.0]  # the same path, three times as hard
    assert np.allclose(accelerometer_to_gaf(gentle - gentle.mean(0), 16, scale="joint"),
                       accelerometer_to_gaf(vigorous - vigorous.mean(0), 16, scale="joint"), atol=1e-6)
    assert not np.allclose(accelerometer_to_gaf(gentle, 16, scale="tanh"),
                           accelerometer_to_gaf(vigorous, 16, scale="tanh"), atol=1e-2)
    with pytest.raises(ValueError, match="for min-max scaling"):
        from vskd.gaf import scale_minmax
        scale_minmax(gentle.T, "tanh")


def test_sigmoid_scale_by_hand():
    from vskd.gaf import scale_series

    x = np.array([[0.0, 2.0, -2.0]])  # g: sigmoid(a / 1 g) = (1 + tanh(a / 2 g)) / 2
    np.testing.assert_allclose(scale_series(x, "sigmoid"), [[0.5, 1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(2.0))]])
    # GASF of 0 g alone: phi = arccos(0.5) = pi / 3, cos(2 pi / 3) = -0.5
    np.testing.assert_allclose(gramian_angular_field(np.array([0.0, 0.0]), scale="sigmoid"), np.full((2, 2), -0.5))


def test_sigmoid_scale_keeps_the_sign_that_the_gasf_on_minus_one_one_erases():
    from vskd.gaf import accelerometer_to_gaf

    # A circle drawn clockwise and one drawn counter-clockwise, the arm held out so gravity
    # lies along x: y is the same motion with the opposite sign.
    t = np.linspace(0, 2 * np.pi, 80)
    cw = np.stack([np.full_like(t, -1.0), 0.8 * np.sin(t), 0.8 * np.cos(t)], axis=1)
    ccw = cw * [1.0, -1.0, 1.0]
    for scale in ("tanh", "axis"):  # (joint: the range of x, y, z together is not symmetric here)
        np.testing.assert_allclose(accelerometer_to_gaf(cw, 16, scale=scale)[1],
                                   accelerometer_to_gaf(ccw, 16, scale=scale)[1], atol=1e-6)
    diff = np.abs(accelerometer_to_gaf(cw, 16, scale="sigmoid")[1] - accelerometer_to_gaf(ccw, 16, scale="sigmoid")[1])
    assert diff.max() > 0.3
    # the GADF keeps the sign on [-1, 1] already: it flips the field
    np.testing.assert_allclose(accelerometer_to_gaf(cw, 16, "difference", "tanh")[1],
                               -accelerometer_to_gaf(ccw, 16, "difference", "tanh")[1], atol=1e-6)


def test_tanh_scale_stops_on_a_series_not_in_g():
    from vskd.gaf import check_in_g

    t = np.linspace(0, 4, 200)
    in_g = [np.stack([np.sin(k * t) * 0.5, 0.2 * np.cos(t), np.full_like(t, -1.0)], axis=1) for k in (1, 2, 3)]
    check_in_g(in_g, ["a.mat", "b.mat", "c.mat"])  # |a| ~ 1 g: fine
    typical = 9.81 * np.median([np.median(np.linalg.norm(a, axis=1)) for a in in_g])  # the same in m/s^2
    with pytest.raises(ValueError, match=rf"in g, but the median \|a\| of the trials is {typical:.2f} "
                                         rf"\(e\.g\. b\.mat\).*divide by 9\.81\) or set gaf.scale: joint"):
        check_in_g([a * 9.81 for a in in_g], ["a.mat", "b.mat", "c.mat"])
    with pytest.raises(ValueError, match=r"^gaf.scale sigmoid expects the accelerometer in g"):
        check_in_g([a * 9.81 for a in in_g], ["a.mat", "b.mat", "c.mat"], "sigmoid")
