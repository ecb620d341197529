"""teacher.view_jitter: training clips drawn again from the Kinect joints from another camera
(skeleton_video.redraw_clip, frames.ClipDataset), on the real sample trial."""

import shutil

import h5py
import numpy as np
import pytest
import torch

from vskd.datasets import get_adapter
from vskd.datasets.skeleton_video import DRAWING_FILE, read_drawing, read_skeleton, redraw_clip
from vskd.frames import ClipDataset, VideoError, build_frames_store
from vskd.params import ParamsError, validate

BLOCK = {"download": {"skeleton_video": {"size": 128}}, "video": {"source": "skeleton"}, "sensor": {}}


@pytest.fixture
def drawn_store(shared_fixtures, tmp_path):
    """The real a1_s1_t1 trial drawn at 128 px and decoded to 64 px, joints kept."""
    raw = tmp_path / "raw"
    for folder, name in (("Skeleton", "a1_s1_t1_skeleton.mat"), ("Inertial", "a1_s1_t1_inertial.mat")):
        (raw / folder).mkdir(parents=True)
        shutil.copy(shared_fixtures / "utd_mhad" / name, raw / folder)
    adapter = get_adapter("utd_mhad")
    from vskd.datasets import skeleton_video

    skeleton_video.render_videos(raw, size=128)
    store = tmp_path / "frames.h5"
    samples = adapter.scan(raw, BLOCK)
    build_frames_store(samples, store, 64, ["a1"], "utd_mhad", skeletons=adapter.skeletons(raw, BLOCK))
    return raw, store


def test_drawing_json_records_settings_rate_and_file(drawn_store):
    raw, _ = drawn_store
    found = read_drawing(raw)
    assert found["drawing"]["size"] == 128 and found["drawing"]["yaw_deg"] == -45.0
    # 48 skeleton frames over 160 inertial samples at 50 Hz (3.2 s): 15 fps
    assert found["trials"] == {"a1_s1_t1": {"fps": 15.0, "skeleton": "Skeleton/a1_s1_t1_skeleton.mat"}}
    assert (raw / "SkeletonVideo" / DRAWING_FILE).is_file()


def test_redraw_at_no_offset_is_the_decoded_video_bit_for_bit(drawn_store):
    raw, store = drawn_store
    joints = read_skeleton(raw / "Skeleton" / "a1_s1_t1_skeleton.mat")
    times = [0, 7, 20, 47]
    with h5py.File(store) as h5:
        stored = h5["frames"]["a1_s1_t1"][()]
        np.testing.assert_array_equal(h5["skeleton"]["a1_s1_t1"][()], joints)
        assert h5["skeleton"]["a1_s1_t1"].attrs["fps"] == 15.0
    drawing = read_drawing(raw)["drawing"]
    same = redraw_clip(joints, 15.0, drawing, times, 0.0, 0.0, stored.shape[1:3])
    np.testing.assert_array_equal(same, stored[times])
    turned = redraw_clip(joints, 15.0, drawing, times, 20.0, 0.0, stored.shape[1:3])
    raised = redraw_clip(joints, 15.0, drawing, times, 0.0, 10.0, stored.shape[1:3])
    assert turned.shape == raised.shape == (4, 64, 64, 3)
    assert np.abs(turned.astype(int) - stored[times]).mean() > 1
    assert np.abs(raised.astype(int) - stored[times]).mean() > 1


def _clips(store, jitter, epoch=0):
    ds = ClipDataset(store, np.arange(1), 8, 56, train=True, scales=(1.0, 0.875), seed=3,
                     affine={"rotate_deg": 10, "stretch": 0.15}, view_jitter=jitter)
    ds.set_epoch(epoch)
    return ds[0][0]


def test_jitter_changes_only_the_view(drawn_store):
    _, store = drawn_store
    plain = _clips(store, None)
    # a turn too small to move a pixel: every other random draw (frames, crop, warp) is unchanged
    assert torch.equal(_clips(store, {"yaw_deg": 1e-9, "pitch_deg": 0}), plain)
    turned = _clips(store, {"yaw_deg": 30, "pitch_deg": 10})
    assert turned.shape == plain.shape == (8, 3, 56, 56)
    assert (turned - plain).abs().mean() > 0.01
    assert torch.equal(_clips(store, {"yaw_deg": 30, "pitch_deg": 10}), turned)  # (seed, epoch, row)
    assert not torch.equal(_clips(store, {"yaw_deg": 30, "pitch_deg": 10}, epoch=1), turned)


def test_evaluation_clips_are_never_redrawn(drawn_store):
    _, store = drawn_store
    a = ClipDataset(store, np.arange(1), 8, 56, train=False, view_jitter={"yaw_deg": 30, "pitch_deg": 10})
    b = ClipDataset(store, np.arange(1), 8, 56, train=False)
    assert torch.equal(a[0][0], b[0][0])


def test_a_store_without_joints_says_what_to_do(drawn_store):
    _, store = drawn_store
    with h5py.File(store, "a") as h5:
        del h5["skeleton"]
    with pytest.raises(VideoError, match=r"frames.h5: teacher.view_jitter .* holds none.*video.source: skeleton"):
        ClipDataset(store, np.arange(1), 8, 56, train=True, view_jitter={"yaw_deg": 20, "pitch_deg": 0})
    ClipDataset(store, np.arange(1), 8, 56, train=True, view_jitter={"yaw_deg": 0, "pitch_deg": 0})  # off: fine


def test_rgb_video_keeps_no_joints(drawn_store):
    raw, _ = drawn_store
    assert get_adapter("utd_mhad").skeletons(raw, {**BLOCK, "video": {"source": "rgb"}}) is None
    assert get_adapter("synthetic").skeletons(raw, BLOCK) is None


def test_view_jitter_params_are_checked():
    import yaml

    from tests.conftest import REPO

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["teacher"]["view_jitter"] = {"yaw_deg": -5, "pitch_deg": 0}
    with pytest.raises(ParamsError, match="teacher.view_jitter.yaw_deg.*>= 0"):
        validate(params)
    params["teacher"]["view_jitter"] = {"yaw_deg": 20, "pitch_deg": 95}
    with pytest.raises(ParamsError, match="teacher.view_jitter.pitch_deg.*< 90"):
        validate(params)
    params["teacher"]["view_jitter"] = {"yaw_deg": 20, "pitch_deg": 10}
    validate(params)
