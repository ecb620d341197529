import numpy as np
import pytest
import torch

from vskd.clip_affine import affine_matrix, apply_affine, draw_affine
from vskd.frames import ClipDataset


def test_identity_map_leaves_the_clip_as_it_is():
    clip = torch.rand(3, 3, 8, 8)
    assert torch.allclose(apply_affine(clip, 0.0, 1.0, 1.0), clip, atol=1e-6)


def test_quarter_turn_is_rot90_and_every_frame_gets_the_same_map():
    frame = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4)
    clip = torch.cat([frame, frame])                         # two identical frames
    out = apply_affine(clip, 90.0, 1.0, 1.0)
    # x right, y down: +90 deg sends the right edge (+x) to the bottom (+y), i.e. clockwise
    # on screen: torch.rot90 with k=-1 over (H, W)
    assert torch.allclose(out[0], torch.rot90(frame[0], k=-1, dims=(1, 2)), atol=1e-5)
    assert torch.equal(out[0], out[1])


def test_stretch_by_two_doubles_the_width_of_a_bar():
    clip = torch.zeros(1, 1, 8, 8)
    clip[..., 3:5] = 1.0                                     # a 2-px vertical bar in the middle
    out = apply_affine(clip, 0.0, 2.0, 1.0)
    # output pixel i samples the input at half its distance from the centre; bilinear between
    # pixel centres: pixel 1 reads input 2.25 (a quarter into the bar), pixel 2 reads 2.75
    expected = torch.tensor([0, .25, .75, 1, 1, .75, .25, 0])
    assert torch.allclose(out[0, 0], expected.expand(8, 8), atol=1e-5)   # the bar is 4 px wide now


def test_shrinking_brings_black_in_from_outside():
    clip = torch.ones(1, 1, 8, 8)
    out = apply_affine(clip, 0.0, 0.5, 0.5)
    assert float(out[0, 0, 0, 0]) == 0.0 and float(out[0, 0, 4, 4]) == 1.0


def test_matrix_is_rotation_times_stretch():
    a = affine_matrix(30.0, 2.0, 0.5)
    c, s = np.cos(np.pi / 6), np.sin(np.pi / 6)
    assert np.allclose(a, [[2 * c, -0.5 * s], [2 * s, 0.5 * c]])


def test_draw_stays_in_its_ranges():
    rng = np.random.default_rng(0)
    draws = np.array([draw_affine(rng, 10.0, 0.2) for _ in range(500)])
    assert np.all(np.abs(draws[:, 0]) <= 10.0) and np.all(np.abs(draws[:, 1:] - 1) <= 0.2)
    assert draws[:, 0].std() > 4.0                           # uniform on +-10: std 5.8


def _clips(frames_h5, affine):
    ds = ClipDataset(frames_h5, np.arange(2), 2, 16, train=True, scales=(1.0,), seed=3, affine=affine)
    return [ds[i][0] for i in range(2)]


@pytest.fixture
def frames_h5(tmp_path):
    import h5py
    from vskd.h5store import write_index

    path = tmp_path / "frames.h5"
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as h5:
        group = h5.create_group("frames")
        for sid in ("a", "b"):
            group.create_dataset(sid, data=rng.integers(0, 255, (4, 16, 16, 3), dtype=np.uint8))
        h5["lengths"] = np.array([4, 4])
        write_index(h5, {"ids": np.array(["a", "b"], dtype=object), "labels": np.array([0, 1]),
                         "subjects": np.array([1, 1]), "trials": np.array([1, 1])})
    return path


def test_clip_dataset_with_affine_off_is_unchanged_and_on_changes_the_clip(frames_h5):
    off = _clips(frames_h5, None)
    assert all(torch.equal(a, b) for a, b in zip(off, _clips(frames_h5, {"rotate_deg": 0, "stretch": 0})))
    on = _clips(frames_h5, {"rotate_deg": 15, "stretch": 0.2})
    assert all(not torch.allclose(a, b) for a, b in zip(off, on))
    assert all(torch.equal(a, b) for a, b in zip(on, _clips(frames_h5, {"rotate_deg": 15, "stretch": 0.2})))
