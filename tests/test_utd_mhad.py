import numpy as np
import pytest
import scipy.io

from vskd.datasets.utd_mhad import LayoutError, read_accelerometer, read_inertial, scan


def make_tree(root, recordings, skip=()):
    (root / "Inertial").mkdir(parents=True)
    (root / "RGB").mkdir()
    for a, s, t in recordings:
        if ("sensor", a, s, t) not in skip:
            scipy.io.savemat(root / "Inertial" / f"a{a}_s{s}_t{t}_inertial.mat",
                             {"d_iner": np.full((20, 6), a + s / 10)})
        if ("video", a, s, t) not in skip:
            (root / "RGB" / f"a{a}_s{s}_t{t}_color.avi").write_bytes(b"x")


def test_real_fixture_files(shared_fixtures):
    wrist = read_inertial(shared_fixtures / "utd_mhad" / "a1_s1_t1_inertial.mat")
    assert wrist.shape == (160, 6) and wrist.dtype == np.float64
    np.testing.assert_allclose(wrist[0], [-0.959473, -0.177734, -0.192871, 5.221374, 1.526718, 0.152672])
    thigh = read_accelerometer(shared_fixtures / "utd_mhad" / "a22_s2_t3_inertial.mat")
    assert thigh.shape == (139, 3)
    # a resting sensor reads about 1 g
    assert 0.8 < np.linalg.norm(wrist[0, :3]) < 1.2


def test_scan_pairs_and_orders_numerically(tmp_path):
    make_tree(tmp_path, [(10, 1, 1), (2, 1, 1), (1, 2, 3), (1, 1, 1)])
    samples = scan(tmp_path)
    # numeric order: a1 < a2 < a10 (ImageFolder's alphabetical order would put a10 second)
    assert [s.id for s in samples] == ["a1_s1_t1", "a1_s2_t3", "a2_s1_t1", "a10_s1_t1"]
    assert [s.label for s in samples] == [0, 0, 1, 9]
    assert samples[1].subject == 2 and samples[1].trial == 3
    assert samples[0].video.name == "a1_s1_t1_color.avi" and samples[0].sensor.parent.name == "Inertial"


def test_missing_modality_is_reported_not_dropped(tmp_path):
    make_tree(tmp_path, [(1, 1, 1), (1, 1, 2), (2, 1, 1)], skip={("video", 1, 1, 2), ("sensor", 2, 1, 1)})
    with pytest.raises(LayoutError, match="2 recording.*a1_s1_t2 has no video.*a2_s1_t1 has no sensor"):
        scan(tmp_path)


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(LayoutError, match="not a folder"):
        scan(tmp_path / "nope")
    with pytest.raises(LayoutError, match="no a\\{A\\}_s\\{S\\}_t\\{T\\}"):
        scan(tmp_path)


def test_action_outside_range(tmp_path):
    make_tree(tmp_path, [(12, 1, 1)])
    with pytest.raises(LayoutError, match="a12 outside 1..10"):
        scan(tmp_path, num_actions=10)


@pytest.mark.parametrize("content, message", [
    ({"x": np.zeros((5, 6))}, "no variable 'd_iner'"),
    ({"d_iner": np.zeros((5, 4))}, "shape \\(5, 4\\)"),
    ({"d_iner": np.array([[np.nan] * 6] * 3)}, "3 row\\(s\\) with NaN"),
])
def test_bad_inertial_files_name_the_file(tmp_path, content, message):
    path = tmp_path / "a1_s1_t1_inertial.mat"
    scipy.io.savemat(path, content)
    with pytest.raises(LayoutError, match=message) as err:
        read_inertial(path)
    assert str(path) in str(err.value)


def test_corrupt_mat_file(tmp_path):
    path = tmp_path / "a1_s1_t1_inertial.mat"
    path.write_bytes(b"MATLAB 5.0 garbage")
    with pytest.raises(LayoutError, match="not a readable MATLAB file"):
        read_inertial(path)
