import numpy as np
import pytest

from vskd.index import id_listing, make_split


def table():
    """8 subjects x 3 actions x 4 trials."""
    s, a, t = np.meshgrid(np.arange(1, 9), np.arange(3), np.arange(1, 5), indexing="ij")
    return s.ravel(), t.ravel(), a.ravel()


def test_cross_subject_odd_even():
    subjects, trials, labels = table()
    split = make_split(subjects, trials, labels, {"name": "cross_subject", "train_subjects": [1, 3, 5, 7]}, 0)
    assert set(subjects[split["train"]]) == {1, 3, 5, 7}
    assert set(subjects[split["test"]]) == {2, 4, 6, 8}
    assert len(split["train"]) == len(split["test"]) == 48 and len(split["val"]) == 0


def test_subject_specific_trials():
    subjects, trials, labels = table()
    split = make_split(subjects, trials, labels, {"name": "subject_specific", "train_trials": [1, 2]}, 0)
    assert set(trials[split["train"]]) == {1, 2} and set(trials[split["test"]]) == {3, 4}
    assert set(subjects[split["test"]]) == set(range(1, 9))


def test_validation_carved_from_training_stratified_and_deterministic():
    subjects, trials, labels = table()
    cfg = {"name": "cross_subject", "train_subjects": [1, 3, 5, 7], "val_fraction": 0.25}
    a, b = make_split(subjects, trials, labels, cfg, 0), make_split(subjects, trials, labels, cfg, 0)
    np.testing.assert_array_equal(a["val"], b["val"])
    assert len(a["val"]) == 12 and len(a["train"]) == 36
    assert np.bincount(labels[a["val"]]).tolist() == [4, 4, 4]       # stratified
    assert set(subjects[a["val"]]) <= {1, 3, 5, 7}                    # from training subjects
    assert not set(a["val"]) & set(a["train"]) and not set(a["val"]) & set(a["test"])
    other = make_split(subjects, trials, labels, cfg, 1)
    np.testing.assert_array_equal(other["test"], a["test"])            # the test part never moves
    assert not np.array_equal(other["val"], a["val"])


@pytest.mark.parametrize("cfg, message", [
    ({"name": "random"}, "unknown split name"),
    ({"name": "cross_subject"}, "train_subjects"),
    ({"name": "cross_subject", "train_subjects": [9]}, "leaves 0 training"),
    ({"name": "subject_specific", "train_trials": []}, "train_trials"),
])
def test_bad_split_configs(cfg, message):
    subjects, trials, labels = table()
    with pytest.raises(ValueError, match=message):
        make_split(subjects, trials, labels, cfg, 0)


def test_cross_session_uses_the_session_column():
    subjects, sessions, labels = table()          # the trial column holds the session (MMAct)
    split = make_split(subjects, sessions, labels, {"name": "cross_session", "train_sessions": [1, 2, 3]}, 0)
    assert set(sessions[split["train"]]) == {1, 2, 3} and set(sessions[split["test"]]) == {4}
    assert len(split["test"]) == 24
    with pytest.raises(ValueError, match="'cross_session' needs a non-empty 'train_sessions'"):
        make_split(subjects, sessions, labels, {"name": "cross_session"}, 0)


def test_id_listing():
    assert id_listing([]) == 0
    assert id_listing(["a", "b"]) == "2 (a, b)"
    assert id_listing([f"x{i}" for i in range(8)], limit=3) == "8 (x0, x1, x2, ...)"
