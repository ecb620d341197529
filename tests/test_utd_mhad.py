import numpy as np
import pytest
import scipy.io

from vskd.datasets import get_adapter
from vskd.datasets.utd_mhad import (KNOWN_MISSING, LayoutError, census, read_accelerometer, read_inertial,
                                    scan, sensor_location)
from vskd.index import Sample, make_split


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


def test_known_missing_recordings_are_counted_never_replaced(tmp_path):
    # a23_s6_t4 is one of the three the dataset never had: a stray half of it is left out
    make_tree(tmp_path, [(1, 1, 1), (21, 8, 4), (22, 1, 2), (23, 6, 4)], skip={("video", 23, 6, 4)})
    samples = scan(tmp_path, num_actions=27, known_missing=KNOWN_MISSING)
    assert [s.id for s in samples] == ["a1_s1_t1", "a21_s8_t4", "a22_s1_t2"]
    counts = census(samples)
    assert counts["known_missing"] == "3 (a8_s1_t4, a23_s6_t4, a27_s8_t4)"
    assert counts["absent"].startswith(f"{864 - 3 - 3} (a1_s1_t2, a1_s1_t3")
    assert (counts["wrist"], counts["thigh"]) == (2, 1)              # a22: thigh, a1 and a21: wrist
    assert sensor_location(21) == "right wrist" and sensor_location(22) == "right thigh"
    # without the known list (the synthetic data), half a recording is still an error
    with pytest.raises(LayoutError, match="a23_s6_t4 has no video"):
        scan(tmp_path, num_actions=27)


def test_complete_copy_counts_only_the_known_gaps(tmp_path):
    grid = [(a, s, t) for a in range(1, 28) for s in range(1, 9) for t in range(1, 5)
            if (a, s, t) not in KNOWN_MISSING]
    samples = [Sample(f"a{a}_s{s}_t{t}", a - 1, s, t, tmp_path, tmp_path) for a, s, t in grid]
    counts = census(samples)
    assert len(samples) == 861 and counts["absent"] == 0
    assert counts["known_missing"] == "3 (a8_s1_t4, a23_s6_t4, a27_s8_t4)"
    assert (counts["wrist"], counts["thigh"]) == (21 * 32 - 1, 6 * 32 - 2)


@pytest.mark.parametrize("cfg, train_test", [
    ({"name": "subject_specific", "train_trials": [1, 2]}, ({1, 2}, {3, 4})),
    ({"name": "cross_subject", "train_subjects": [1, 3, 5, 7]}, ({1, 2, 3, 4}, {1, 2, 3, 4})),
])
def test_both_splits_on_a_utd_index(tmp_path, cfg, train_test):
    make_tree(tmp_path, [(a, s, t) for a in (1, 22) for s in (1, 2, 3, 4) for t in (1, 2, 3, 4)])
    samples = scan(tmp_path, num_actions=27, known_missing=KNOWN_MISSING)
    subjects, trials, labels = (np.array([getattr(x, f) for x in samples]) for f in ("subject", "trial", "label"))
    split = make_split(subjects, trials, labels, cfg, 0)
    assert set(trials[split["train"]]) == train_test[0] and set(trials[split["test"]]) == train_test[1]
    if cfg["name"] == "cross_subject":
        assert set(subjects[split["train"]]) == {1, 3} and set(subjects[split["test"]]) == {2, 4}
    assert len(split["train"]) == len(split["test"]) == 16


def test_local_source_folder_in_official_layout(tmp_path):
    src = tmp_path / "UTD-MHAD"
    make_tree(src, [(1, 1, 1), (27, 8, 3)])
    adapter = get_adapter("utd_mhad")
    block = {"source": str(src), "download": {"urls": []}, "video": {}, "sensor": {}}
    summary = adapter.prepare_raw(block, tmp_path / "raw")
    assert summary == {"source": str(src), "archives": 0, "copied": 2, "skeleton_videos": 0}
    samples = adapter.scan(tmp_path / "raw", block)
    assert [s.id for s in samples] == ["a1_s1_t1", "a27_s8_t3"]
    assert adapter.class_names(tmp_path / "raw", block)[26] == "squat (two arms stretch out)"
    acc = adapter.read_accelerometer(samples[1].sensor, block)
    assert acc.shape == (20, 3) and acc[0, 0] == pytest.approx(27.8)
