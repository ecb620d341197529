"""Tests for the synthetic UTD-MHAD-layout data set (vskd.datasets.synthetic)."""

from __future__ import annotations

import math

import av
import numpy as np
import pytest
import scipy.io

from vskd.datasets import synthetic as S

TINY = dict(actions=3, subjects=2, trials=1, width=64, height=48, progress=False)


def _decode(path):
    with av.open(str(path)) as c:
        stream = c.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return np.stack(frames), stream


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("synth_a")
    summary = S.generate(out, seed=0, **TINY)
    return out, summary


# --------------------------------------------------------------------------- API
def test_public_constants():
    assert len(S.ACTIONS) >= 10
    assert len(set(S.ACTIONS)) == len(S.ACTIONS)
    assert isinstance(S.THIGH_ACTIONS, frozenset) and S.THIGH_ACTIONS
    assert all(1 <= a <= len(S.ACTIONS) for a in S.THIGH_ACTIONS)
    assert len(S.CONFUSABLE_PAIRS) >= 3
    # the default 10 actions include the thigh-sensor ones
    assert all(a <= 10 for a in S.THIGH_ACTIONS)


# ------------------------------------------------------------------------ layout
def test_layout_and_summary(tiny):
    out, summary = tiny
    expect = {f"a{a}_s{s}_t1" for a in (1, 2, 3) for s in (1, 2)}
    assert {p.name for p in (out / "RGB").iterdir()} == {f"{e}_color.avi" for e in expect}
    assert {p.name for p in (out / "Inertial").iterdir()} == {f"{e}_inertial.mat" for e in expect}
    assert {p.name for p in out.iterdir()} == {"RGB", "Inertial"}
    assert summary["recordings"] == summary["videos"] == summary["inertial"] == 6
    on_disk = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert summary["total_bytes"] == on_disk
    assert summary["seconds"] > 0
    assert [(i["action"], i["subject"], i["trial"]) for i in summary["items"]] == [
        (a, s, 1) for a in (1, 2, 3) for s in (1, 2)
    ]


def test_inertial_files(tiny):
    out, summary = tiny
    for item in summary["items"]:
        m = scipy.io.loadmat(out / "Inertial" / f"{item['name']}_inertial.mat")
        assert m["__header__"].startswith(b"MATLAB 5.0 MAT-file")
        d = m["d_iner"]
        assert d.dtype == np.float64 and d.ndim == 2 and d.shape[1] == 6
        # trials last 2.5-4 s at 50 Hz
        assert 125 <= d.shape[0] <= 200
        assert d.shape[0] == item["samples"] == round(item["duration"] * 50)
        assert np.all(np.isfinite(d))
        # within UTD-MHAD's sensor ranges (+-8 g, +-1000 deg/s) and actually moving
        assert np.abs(d[:, :3]).max() <= 8.0
        assert np.abs(d[:, 3:]).max() <= 1000.0
        assert np.ptp(d[:, :3], axis=0).max() > 0.5


def test_rest_reads_one_g_with_hanging_wrist_x_minus_one(tiny):
    out, summary = tiny
    for item in summary["items"]:
        d = scipy.io.loadmat(out / "Inertial" / f"{item['name']}_inertial.mat")["d_iner"]
        first = d[:10, :3]  # idle before a >= 0.25 s onset
        mag = np.linalg.norm(first, axis=1).mean()
        assert abs(mag - 1.0) < 0.1
        assert abs(first[:, 0].mean() + 1.0) < 0.1  # hanging arm: x ~ -1 g like real UTD-MHAD
        assert np.abs(d[:10, 3:].mean(axis=0)).max() < 10  # barely rotating
        last = d[-8:, :3]  # idle after the movement too
        assert abs(np.linalg.norm(last, axis=1).mean() - 1.0) < 0.1


def test_rest_like_real_file():
    real = scipy.io.loadmat("/work/shared/fixtures/utd_mhad/a1_s1_t1_inertial.mat")["d_iner"]
    ours = S.simulate_recording(1, 1, 1, render=False)["d_iner"]
    assert real.dtype == ours.dtype and real.shape[1] == ours.shape[1]
    assert np.sign(real[:5, 0].mean()) == np.sign(ours[:5, 0].mean()) == -1
    assert abs(real[:5, 0].mean() - ours[:5, 0].mean()) < 0.15


def test_thigh_action_rests_at_one_g():
    a = min(S.THIGH_ACTIONS)
    d = S.simulate_recording(a, 1, 1, render=False)["d_iner"]
    assert abs(np.linalg.norm(d[:10, :3], axis=1).mean() - 1.0) < 0.1
    assert d[:10, 0].mean() < -0.8  # x along the (nearly vertical) thigh


# ------------------------------------------------------------------------- video
def test_video_decodes(tiny):
    out, summary = tiny
    for item in summary["items"]:
        frames, stream = _decode(out / "RGB" / f"{item['name']}_color.avi")
        assert frames.shape == (item["frames"], 48, 64, 3)
        assert abs(item["frames"] - item["samples"] * 15 / 50) <= 1
        assert stream.codec_context.name in ("mpeg4", "mjpeg")
        assert math.isclose(float(stream.average_rate), 15.0, rel_tol=1e-3)
        # RGB content, not grey: the clothes are coloured
        assert np.abs(frames[..., 0].astype(int) - frames[..., 2]).max() > 30


def test_video_matches_rendered_frames(tiny):
    out, summary = tiny
    item = summary["items"][0]
    frames, _ = _decode(out / "RGB" / f"{item['name']}_color.avi")
    ref = S.simulate_recording(item["action"], item["subject"], item["trial"], width=64, height=48)["frames"]
    # good quality: mean abs error of the lossy codec stays small
    assert np.abs(frames.astype(float) - ref).mean() < 3.0


# ------------------------------------------------------------------- determinism
def test_determinism_and_seed(tiny, tmp_path):
    out, summary = tiny
    again = tmp_path / "again"
    S.generate(again, seed=0, **TINY)
    other = tmp_path / "other"
    S.generate(other, seed=1, **TINY)
    for item in summary["items"]:
        mat = f"Inertial/{item['name']}_inertial.mat"
        avi = f"RGB/{item['name']}_color.avi"
        assert (out / mat).read_bytes() == (again / mat).read_bytes()
        np.testing.assert_array_equal(_decode(out / avi)[0], _decode(again / avi)[0])
        a = scipy.io.loadmat(out / mat)["d_iner"]
        b = scipy.io.loadmat(other / mat)["d_iner"]
        assert a.shape != b.shape or not np.allclose(a, b)
        fa, fb = _decode(out / avi)[0], _decode(other / avi)[0]
        assert fa.shape != fb.shape or np.abs(fa.astype(int) - fb).mean() > 5


def test_changing_actions_keeps_shared_recordings(tiny, tmp_path):
    out, _ = tiny
    fewer = tmp_path / "fewer"
    summary = S.generate(fewer, seed=0, **{**TINY, "actions": 2})
    assert summary["recordings"] == 4
    for item in summary["items"]:
        mat = f"Inertial/{item['name']}_inertial.mat"
        avi = f"RGB/{item['name']}_color.avi"
        assert (out / mat).read_bytes() == (fewer / mat).read_bytes()
        np.testing.assert_array_equal(_decode(out / avi)[0], _decode(fewer / avi)[0])


def test_simulate_recording_matches_files(tiny):
    out, summary = tiny
    item = summary["items"][-1]
    rec = S.simulate_recording(item["action"], item["subject"], item["trial"], render=False)
    d = scipy.io.loadmat(out / "Inertial" / f"{item['name']}_inertial.mat")["d_iner"]
    np.testing.assert_array_equal(rec["d_iner"], d)


# ----------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"actions": 0}, "actions"),
        ({"actions": len(S.ACTIONS) + 1}, "actions"),
        ({"subjects": 0}, "subjects"),
        ({"trials": -1}, "trials"),
        ({"trials": 1.5}, "trials"),
        ({"seed": -3}, "seed"),
        ({"width": 0}, "width"),
        ({"height": 7}, "height"),
        ({"fps": 0}, "fps"),
        ({"sensor_rate": -50.0}, "sensor_rate"),
        ({"fps": float("nan")}, "fps"),
    ],
)
def test_bad_arguments(tmp_path, kwargs, name):
    with pytest.raises(ValueError, match=name):
        S.generate(tmp_path / "bad", progress=False, **kwargs)
    assert not (tmp_path / "bad").exists()  # validated before anything is written


# ----------------------------------------------------------------------- physics
def test_second_derivative_matches_analytic():
    h = 1.0 / 200.0
    t = np.arange(-1, 400) * h
    w, amp = 2 * np.pi * 1.7, 0.3
    x = np.stack([amp * np.sin(w * t), amp * np.cos(w * t) + t**2, 0.5 * 9.81 * t**2], axis=1)
    acc = S.second_derivative(x, h)
    tm = t[1:-1]
    expect = np.stack([-amp * w * w * np.sin(w * tm), -amp * w * w * np.cos(w * tm) + 2.0, np.full_like(tm, 9.81)], 1)
    np.testing.assert_allclose(acc, expect, atol=2e-3 * amp * w * w)


def test_segment_rotation_and_gyro():
    psi = np.linspace(-3, 3, 13)
    beta = np.linspace(-1, 1, 13)
    r = S.segment_rotation(psi, beta)
    np.testing.assert_allclose(r @ np.swapaxes(r, -1, -2), np.broadcast_to(np.eye(3), r.shape), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-12)
    # hanging segment: sensor x points down, so the +1 g specific force reads x = -1 g
    r0 = S.segment_rotation(0.0, 0.0)
    np.testing.assert_allclose(r0.T @ np.array([0, 1.0, 0]), [-1, 0, 0], atol=1e-12)
    # constant in-plane rotation rate w -> gyro reads w on the out-of-plane (z) axis only
    w, h, t = 2.5, 1e-3, 0.4
    rr = [S.segment_rotation(w * (t + k * h), 0.0) for k in (-1, 0, 1)]
    np.testing.assert_allclose(S.body_angular_velocity(*rr, h), [0, 0, w], atol=1e-5)


def test_imu_is_consistent_with_pose_physics():
    """Rebuild the wrist accelerometer from the pose and compare with the stored signal."""
    rec = S.simulate_recording(3, 2, 1, render=False)
    d = rec["d_iner"]
    subj = S._make_subject(0, 2)
    rng = np.random.default_rng([0, 3, 2, 1])
    tr = S._make_trial(0, 3, 2, 1, subj, rng)
    t = np.arange(d.shape[0]) / 50.0
    h = 1e-3
    pos = [S._sensor_state(t + k * h, subj, tr, False)[0] for k in (-1, 0, 1)]
    rot = S._sensor_state(t, subj, tr, False)[1] @ subj.tilt_wrist
    acc = (pos[2] - 2 * pos[1] + pos[0]) / h**2
    f = np.einsum("nji,nj->ni", rot, acc + [0, S.GRAVITY, 0]) / S.GRAVITY
    resid = d[:, :3] - f
    assert np.abs(resid.mean(axis=0)).max() < 0.02  # only zero-mean noise left
    assert 0.005 < resid.std() < 0.06


# ----------------------------------------------------------- confusable pairs
def _features(d):
    acc, gyro = d[:, :3], d[:, 3:] / 100.0
    return np.concatenate([acc.mean(0), acc.std(0), gyro.std(0), 5 * np.abs(np.diff(acc, axis=0)).mean(0)])


def test_confusable_pairs_close_for_wrist_but_different_on_video():
    acts, subs = range(1, 9), range(1, 5)
    feats = {a: np.array([_features(S.simulate_recording(a, s, 1, render=False)["d_iner"]) for s in subs])
             for a in acts}

    def dist(a, b):
        return np.linalg.norm(feats[a][:, None] - feats[b][None], axis=-1).mean()

    for a, b in S.CONFUSABLE_PAIRS:
        others = [dist(x, y) for x in (a, b) for y in acts if y not in (a, b)]
        assert dist(a, b) < 0.75 * min(others), (a, b, dist(a, b), min(others))

    # ...while the videos differ clearly: the pixels that move differ between the pair
    # far more than between two trials of the same action
    def moving(a, s, t):
        f = S.simulate_recording(a, s, t, width=96, height=72)["frames"].astype(np.float32).mean(-1)
        return f.std(0) > 12

    def iou(m1, m2):
        return (m1 & m2).sum() / max((m1 | m2).sum(), 1)

    for a, b in S.CONFUSABLE_PAIRS:
        for s in (1, 2):
            ma1, ma2, mb1 = moving(a, s, 1), moving(a, s, 2), moving(b, s, 1)
            assert iou(ma1, mb1) < 0.8
            assert iou(ma1, mb1) < iou(ma1, ma2) - 0.15
