"""benchmarks/teacher_ensemble.py: teachers averaged, on hand-made probabilities and stores."""

import numpy as np
import pytest

from benchmarks.teacher_ensemble import averaged_accuracy, ensemble_table, held_out_probabilities
from vskd import teacher_outputs


def test_averaging_keeps_what_all_get_wrong_and_removes_what_one_gets_wrong():
    y = np.array([0, 1, 2])
    # a: right, right, wrong (2 read as 0); b: wrong (0 read as 1), right, wrong (2 read as 0)
    a = np.array([[0.6, 0.3, 0.1], [0.1, 0.8, 0.1], [0.7, 0.0, 0.3]])
    b = np.array([[0.4, 0.5, 0.1], [0.2, 0.7, 0.1], [0.6, 0.1, 0.3]])
    assert averaged_accuracy([a], y) == pytest.approx(2 / 3)
    assert averaged_accuracy([b], y) == pytest.approx(1 / 3)
    # mean: [0.5, 0.4, .1] right; [.15, .75, .1] right; [.65, .05, .3] still wrong
    assert averaged_accuracy([a, b], y) == pytest.approx(2 / 3)
    c = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.0, 0.1, 0.9]])  # all right
    table = ensemble_table({"a": {"s1": a}, "b": {"s1": b}, "c": {"s1": c}}, {"s1": y})
    assert table["single"] == {"a": [pytest.approx(2 / 3)], "b": [pytest.approx(1 / 3)], "c": [1.0]}
    # pairs: a+b 2/3; a+c: [.75,.175,.075] [.1,.8,.1] [.35,.05,.6] all right; b+c: [.65,.275,.075],
    # [.15,.75,.1], [.3,.1,.6] all right -> mean (2/3 + 1 + 1) / 3
    assert table["k"] == {2: [pytest.approx((2 / 3 + 1 + 1) / 3)]}
    assert table["all"] == [pytest.approx(1.0)]   # third trial: [.433, .067, .5]


def test_held_out_probabilities_follow_the_ids_and_name_a_missing_run(tmp_path):
    fold = tmp_path / "utd_mhad" / "fold_s1"
    fold.mkdir(parents=True)
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]))
    teacher_outputs.write(fold / "teacher_outputs.h5", {"ids": np.array(["a1_s1_t1", "a3_s1_t1"], dtype=object),
                                                        "labels": np.array([0, 2])},
                          logits, np.zeros((2, 4)), class_names=["x", "y", "z"], selection="last")
    probs = held_out_probabilities(tmp_path, "s1", ["a3_s1_t1", "a1_s1_t1"])
    np.testing.assert_allclose(probs, [[0.1, 0.1, 0.8], [0.7, 0.2, 0.1]])
    with pytest.raises(FileNotFoundError, match="fold_s3.*finish that work folder"):
        held_out_probabilities(tmp_path, "s3", ["a1_s3_t1"])
