"""The Kinect skeleton drawn as video (vskd/datasets/skeleton_video.py), on the real files."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import scipy.io

from tests.conftest import SHARED
from vskd.datasets import get_adapter
from vskd.datasets.skeleton_video import (COLOURS, HEAD, HIP_C, L_FOOT, R_FOOT, R_HAND, SkeletonError,
                                          camera_view, depth_shade, draw_frames, image_coordinates, panel_views,
                                          read_skeleton, render_videos)
from vskd.frames import decode_video

ODD = SHARED / "data" / "utd_mhad_odd_subjects"


@pytest.fixture
def skeleton_file(shared_fixtures):
    return shared_fixtures / "utd_mhad" / "a1_s1_t1_skeleton.mat"


def test_reads_the_real_file_frames_first(skeleton_file):
    joints = read_skeleton(skeleton_file)
    assert joints.shape == (48, 20, 3)
    # Kinect v1 camera frame, metres: the head above the hip, the subject ~2.8 m away
    np.testing.assert_allclose(joints[0, HEAD], [-0.04576265, 0.48398542, 2.83018947], rtol=1e-6)
    assert joints[0, HEAD, 1] > joints[0, HIP_C, 1] and 2 < joints[0, HIP_C, 2] < 4


def test_bad_files_name_the_file(tmp_path):
    path = tmp_path / "a1_s1_t1_skeleton.mat"
    scipy.io.savemat(path, {"d_iner": np.zeros((3, 6))})
    with pytest.raises(SkeletonError, match=r"a1_s1_t1_skeleton.mat: no variable 'd_skel'"):
        read_skeleton(path)
    scipy.io.savemat(path, {"d_skel": np.zeros((19, 3, 5))})
    with pytest.raises(SkeletonError, match=r"shape \(19, 3, 5\), expected \(20, 3, T >= 2\)"):
        read_skeleton(path)


def test_view_is_normalised_to_body_height_and_hip():
    joints = np.zeros((2, 20, 3))
    joints[:, HEAD, 1] = 1.0          # head 1 m above the hip (hip at 0, 0)
    joints[:, [L_FOOT, R_FOOT], 1] = -0.6  # feet 0.6 m below: body height 1.6 m
    xy = image_coordinates(joints, size=100, body_fraction=0.8, hip_at=[0.5, 0.58])  # 50 px/m
    np.testing.assert_allclose(xy[0, HIP_C], [50.0, 58.0])  # column centre, row 0.58 of the frame
    np.testing.assert_allclose(xy[0, HEAD], [50.0, 8.0])
    # the same pose twice as far and twice as tall draws the same figure
    np.testing.assert_allclose(image_coordinates(2 * joints, 100, 0.8, [0.5, 0.58]), xy)
    np.testing.assert_allclose(image_coordinates(joints, 100, 0.8), xy)   # the default framing
    # the framing that centres the joints' box: hip at column 43, row 42, the feet 30 px below
    xy = image_coordinates(joints, size=100, body_fraction=0.8, hip_at=[0.43, 0.42])
    np.testing.assert_allclose(xy[0, HIP_C], [43.0, 42.0])
    np.testing.assert_allclose(xy[0, R_FOOT], [43.0, 72.0])


def test_depth_cue_brightens_what_is_nearer():
    joints = np.zeros((1, 20, 3))
    joints[0, :, 2] = 3.0
    joints[0, R_HAND, 2] = 2.6  # hand 0.4 m in front of the hip
    joints[0, HEAD, 2] = 3.4    # head 0.4 m behind it
    shade = depth_shade(joints, True)
    assert shade[0, R_HAND] == pytest.approx(1.0) and shade[0, HEAD] == pytest.approx(0.35)
    assert shade[0, HIP_C] == pytest.approx(0.675)
    assert (depth_shade(joints, False) == 1).all()


def test_camera_view_turns_motion_along_the_camera_axis_into_the_picture():
    joints = np.zeros((2, 20, 3))
    joints[:, :, 2] = 3.0                 # everything 3 m away, the hip at x = y = 0
    joints[1, R_HAND, 2] = 2.6            # a push: the hand 0.4 m towards the camera
    front = camera_view(joints, 0.0, 0.0)
    assert front is joints                # the recorded view, untouched
    turned = camera_view(joints, 30.0, 0.0)
    # yaw 30: x' = x cos 30 + (z - 3) sin 30 -> the push moves the hand 0.2 m sideways
    np.testing.assert_allclose(turned[1, R_HAND], [-0.2, 0.0, 3 - 0.4 * np.cos(np.radians(30))], atol=1e-12)
    np.testing.assert_allclose(turned[:, HIP_C], joints[:, HIP_C])  # turned about the hip
    raised = camera_view(joints, 0.0, 30.0)
    # pitch 30: y' = y cos 30 + (z - 3) sin 30 -> seen from above, the nearer hand drops 0.2 m
    np.testing.assert_allclose(raised[1, R_HAND, :2], [0.0, -0.2], atol=1e-12)
    # a rotation: distances between joints are kept
    for view in (turned, raised, camera_view(joints, 45.0, 20.0)):
        np.testing.assert_allclose(np.linalg.norm(view[1, R_HAND] - view[1, HEAD]),
                                   np.linalg.norm(joints[1, R_HAND] - joints[1, HEAD]))


def test_trail_floor_keeps_the_oldest_path_visible():
    joints = np.zeros((21, 20, 3))
    joints[:, :, 2] = 3.0
    joints[:, HEAD, 1], joints[:, [L_FOOT, R_FOOT], 1] = 1.0, -0.6
    joints[:, R_HAND, 0] = np.linspace(-0.5, 0.5, 21)  # the right hand sweeps left to right
    front = dict(size=64, trail_s=2.0, depth_cue=False, yaw_deg=0.0, pitch_deg=0.0)
    faded = draw_frames(joints, 10.0, trail_floor=0.0, **front)[-1]
    floored = draw_frames(joints, 10.0, trail_floor=0.5, **front)[-1]
    # the oldest segment, age 20/21: 0.8 * (1 - 20/21) * 255 ~ 10 without a floor,
    # 0.8 * (0.5 + 0.5 / 21) * 255 ~ 107 with it (red channel of the right arm's colour)
    col, row = image_coordinates(joints, 64, 0.75)[0, R_HAND].round().astype(int)
    assert faded[row, col, 0] == round(255 * 0.8 * (1 / 21))
    assert floored[row, col, 0] == round(255 * 0.8 * (0.5 + 0.5 / 21))


def test_lead_draws_the_path_ahead_at_the_trails_faded_end():
    joints = np.zeros((21, 20, 3))
    joints[:, :, 2] = 3.0
    joints[:, HEAD, 1], joints[:, [L_FOOT, R_FOOT], 1] = 1.0, -0.6
    joints[:, R_HAND, 0] = np.linspace(-0.5, 0.5, 21)  # the right hand sweeps left to right
    front = dict(size=64, trail_s=2.0, depth_cue=False, yaw_deg=0.0, pitch_deg=0.0, trail_floor=0.5)
    plain, led = draw_frames(joints, 10.0, **front)[0], draw_frames(joints, 10.0, lead_s=1.5, **front)[0]
    # at frame 0 the hand is 0.5 m left of the body; 1.3 s later it will be 0.15 m right of it
    col, row = image_coordinates(joints, 64, 0.75)[13, R_HAND].round().astype(int)
    assert plain[row, col, 0] == 0                              # frame 0 has no trail yet
    assert led[row, col, 0] == round(255 * 0.8 * 0.5)          # the path ahead at the floor, 102
    far = image_coordinates(joints, 64, 0.75)[19, R_HAND].round().astype(int)  # 1.9 s ahead: beyond
    assert led[far[1], far[0], 0] == 0
    # 0 s ahead is the drawing without the setting
    assert np.array_equal(draw_frames(joints, 10.0, lead_s=0.0, **front), draw_frames(joints, 10.0, **front))


def _standing(frames: int) -> np.ndarray:
    """A figure 1.6 m tall, the hip at (0, 0, 3 m): head 1 m above it, feet 0.6 m below."""
    joints = np.zeros((frames, 20, 3))
    joints[:, :, 2] = 3.0
    joints[:, HEAD, 1], joints[:, [L_FOOT, R_FOOT], 1] = 1.0, -0.6
    return joints


def test_front_and_side_panels_show_a_push_where_the_front_view_cannot():
    joints = _standing(2)
    joints[1, R_HAND, 2] = 2.6  # a push: the hand 0.4 m towards the camera
    (_, front, _), (_, side, _) = panel_views(joints, [0.0, 90.0], 0.0, 64, 0.75, False, single=False,
                                              hip_at=[0.5, 0.58])
    # 48 px for 1.6 m: 30 px/m. Front panel: columns 0-31, the hip at its centre (16)
    assert front[0, HIP_C, 0] == pytest.approx(16.0)
    (_, other, _), _ = panel_views(joints, [0.0, 90.0], 0.0, 64, 0.75, False, single=False, hip_at=[0.43, 0.42])
    assert other[0, HIP_C] == pytest.approx([0.43 * 32, 0.42 * 64])  # hip_at of the panel's width
    assert front[1, R_HAND, 0] == pytest.approx(front[0, R_HAND, 0])   # the push is invisible
    # side panel (its own columns 0-31): the hip 0.1 body heights (4.8 px) behind the centre,
    # and the push moves the hand 0.4 m x 30 px/m = 12 px forward (to the left)
    assert side[0, HIP_C, 0] == pytest.approx(16.0 + 4.8)
    assert side[1, R_HAND, 0] - side[0, R_HAND, 0] == pytest.approx(-12.0)
    # seen from the subject's right: the right side (Kinect x > 0) is the nearer one
    joints[0, R_HAND, 0] = 0.3
    assert camera_view(joints, 90.0, 0.0)[0, R_HAND, 2] < camera_view(joints, 90.0, 0.0)[0, HIP_C, 2]


def test_panels_clip_at_their_border_and_one_front_view_is_the_plain_frame():
    near, far = _standing(1), _standing(1)
    near[0, R_HAND, 0] = 0.2  # 6 px right of the hip: inside the front panel
    far[0, R_HAND, 0] = 1.5   # 45 px right of it: off the front panel
    kw = dict(size=64, trail_s=0.0, depth_cue=False, pitch_deg=0.0)
    a, b = draw_frames(near, 20.0, yaw_deg=[0, 90], **kw)[0], draw_frames(far, 20.0, yaw_deg=[0, 90], **kw)[0]
    assert a.shape == (64, 64, 3)
    # the side panel sees the sideways hand only as depth (no cue here): it is drawn the same,
    # and the front panel's arm stops at the border instead of running into it
    assert np.array_equal(a[:, 32:], b[:, 32:]) and not np.array_equal(a[:, :32], b[:, :32])
    assert np.array_equal(draw_frames(far, 20.0, yaw_deg=0.0, **kw), draw_frames(far, 20.0, yaw_deg=[0.0], **kw))


def test_drawing_is_deterministic_and_colours_the_sides(skeleton_file):
    joints = read_skeleton(skeleton_file)
    a = draw_frames(joints, 19.5, size=64)
    b = draw_frames(joints, 19.5, size=64)
    assert a.shape == (48, 64, 64, 3) and a.dtype == np.uint8 and np.array_equal(a, b)
    pixels = a.reshape(-1, 3).astype(int)
    reddish = (pixels[:, 0] > 150) & (pixels[:, 1] < 100) & (pixels[:, 2] < 100)   # right arm
    bluish = (pixels[:, 2] > 150) & (pixels[:, 0] < 100)                            # left arm
    assert reddish.sum() > 100 and bluish.sum() > 100
    assert COLOURS["right_arm"] != COLOURS["left_arm"]


def test_trails_show_where_the_hand_came_from(skeleton_file):
    joints = read_skeleton(skeleton_file)
    with_trail = draw_frames(joints, 19.5, size=64, trail_s=1.0)
    without = draw_frames(joints, 19.5, size=64, trail_s=0.0)
    assert np.array_equal(with_trail[0], without[0])  # nothing before the first frame
    assert (with_trail[30] != without[30]).any()


def test_render_videos_decode_with_pyav(skeleton_file, tmp_path):
    (tmp_path / "Skeleton").mkdir()
    (tmp_path / "Inertial").mkdir()
    shutil.copy(skeleton_file, tmp_path / "Skeleton")
    shutil.copy(skeleton_file.with_name("a1_s1_t1_inertial.mat"), tmp_path / "Inertial")
    summary = render_videos(tmp_path, size=64)
    assert summary == {"skeleton_videos": 1}
    frames = decode_video(tmp_path / "SkeletonVideo" / "a1_s1_t1_skeleton.avi", 64)
    assert frames.shape == (48, 64, 64, 3)
    drawn = draw_frames(read_skeleton(skeleton_file), 48 / 3.2, size=64)
    assert np.array_equal(frames, drawn)  # lossless: the frames stage sees the drawing itself


def test_render_videos_in_parallel_draws_the_same_videos(skeleton_file, tmp_path):
    for workers in (1, 2):
        raw = tmp_path / f"w{workers}"
        (raw / "Skeleton").mkdir(parents=True)
        for trial in ("a1_s1_t1", "a1_s1_t2", "a2_s1_t1"):   # one real trial under three names
            shutil.copy(skeleton_file, raw / "Skeleton" / f"{trial}_skeleton.mat")
        assert render_videos(raw, size=64, workers=workers) == {
            "skeleton_videos": 3, "skeleton_without_inertial": "3 (a1_s1_t1, a1_s1_t2, a2_s1_t1)"}
    for video in sorted((tmp_path / "w1" / "SkeletonVideo").glob("*.avi")):
        assert np.array_equal(decode_video(video, 64), decode_video(tmp_path / "w2" / "SkeletonVideo" / video.name, 64))
    assert (tmp_path / "w1" / "SkeletonVideo" / "drawing.json").read_text() == \
        (tmp_path / "w2" / "SkeletonVideo" / "drawing.json").read_text()


@pytest.mark.skipif(not ODD.is_dir(), reason="../shared/data/utd_mhad_odd_subjects is absent")
def test_adapter_pairs_inertial_with_skeleton_video(tmp_path):
    src = tmp_path / "src"
    for folder, pattern in (("Inertial", "a2_s*_t1_inertial.mat"), ("Skeleton", "a2_s*_t1_skeleton.mat")):
        (src / folder).mkdir(parents=True)
        for f in sorted((ODD / folder).glob(pattern)):
            shutil.copy(f, src / folder)
    adapter = get_adapter("utd_mhad")
    block = {"source": str(src), "download": {"skeleton_video": {"size": 64}},
             "video": {"source": "skeleton"}, "sensor": {}}
    summary = adapter.prepare_raw(block, tmp_path / "raw")
    assert summary["skeleton_videos"] == 4
    samples = adapter.scan(tmp_path / "raw", block)
    assert [s.id for s in samples] == ["a2_s1_t1", "a2_s3_t1", "a2_s5_t1", "a2_s7_t1"]
    assert all(s.video.name.endswith("_skeleton.avi") for s in samples)
    with pytest.raises(ValueError, match="_color.avi"):  # rgb asked for, none there
        adapter.scan(tmp_path / "raw", {**block, "video": {"source": "rgb"}})
    assert adapter.check_params({**block, "video": {"source": "depth"}})[0][0] == "video"
    assert adapter.check_params({**block, "download": {"skeleton_video": {"colour": 1}}})[0][0] \
        == "download.skeleton_video"


def test_drawing_params_are_checked():
    from vskd.datasets import _utd_checks

    block = {"video": {"source": "skeleton"}, "split": {"name": "cross_subject"},
             "download": {"skeleton_video": {"yaw_deg": 45, "pitch_deg": 20, "trail_floor": 0.35}}}
    assert _utd_checks(block) == []
    block["download"]["skeleton_video"] = {"trail_floor": 1.5, "roll_deg": 3}
    problems = dict(_utd_checks(block))
    assert "roll_deg" in problems["download.skeleton_video"]
    assert "[0, 1], got 1.5" in problems["download.skeleton_video.trail_floor"]
    block["download"]["skeleton_video"] = {"lead_s": -1}
    assert "seconds >= 0" in dict(_utd_checks(block))["download.skeleton_video.lead_s"]
    for bad in ([0.5], [0.5, 1.2], "centre", [0.5, True]):
        block["download"]["skeleton_video"] = {"hip_at": bad}
        assert "two fractions" in dict(_utd_checks(block))["download.skeleton_video.hip_at"]
    block["download"]["skeleton_video"] = {"yaw_deg": [0, 90], "size": 128}
    assert _utd_checks(block) == []
    for bad, key, says in (({"yaw_deg": [0, 90, 45, 30]}, "yaw_deg", "1-3 numbers"),
                           ({"yaw_deg": "side"}, "yaw_deg", "got 'side'"),
                           ({"yaw_deg": [0, 90, 45], "size": 128}, "size", "3 equal panels")):
        block["download"]["skeleton_video"] = bad
        assert says in dict(_utd_checks(block))[f"download.skeleton_video.{key}"]
