"""The skeleton MiniRocket diagnostic (benchmarks/skeleton_minirocket.py): features and pairing."""

import json

import numpy as np
import pytest

from benchmarks.skeleton_minirocket import JOINTS, LENGTH, against, joint_paths, load
from vskd.datasets.skeleton_video import HEAD, HIP_C, L_FOOT, R_FOOT, R_HAND


def test_joint_paths_are_body_heights_from_the_median_hip():
    joints = np.zeros((10, 20, 3))
    joints[:, HIP_C] = [0.5, 0.0, 3.0]
    joints[:, HEAD] = [0.5, 1.0, 3.0]
    joints[:, [L_FOOT, R_FOOT]] = [0.5, -0.6, 3.0]          # 1.6 m tall
    joints[:, R_HAND] = [0.5 + 0.8, 0.4, 3.0 - 0.16]        # 0.5, 0.25 and -0.1 body heights away
    paths = joint_paths(joints)
    assert paths.shape == (3 * len(JOINTS), LENGTH)
    np.testing.assert_allclose(paths[:3], np.repeat([[0.5], [0.25], [-0.1]], LENGTH, axis=1), atol=1e-12)
    np.testing.assert_allclose(paths[-2], 1 / 1.6)           # the head's height, last joint's y


def test_against_pairs_trial_by_trial_and_refuses_other_trials(tmp_path):
    fold = {"test_ids": ["a1_s1_t1", "a2_s1_t1", "a3_s1_t1", "a4_s1_t1"], "y_true": [0, 1, 2, 3],
            "predictions": {"0": [0, 1, 2, 0]}}                       # 3 of 4 right
    result = {"seeds": [0], "folds": {"s1": fold}}
    protocol = {"predictions": {"s1": {"test_ids": fold["test_ids"], "y_true": [0, 1, 2, 3],
                                       "teacher": [0, 0, 0, 3],       # 2 of 4 right
                                       "minirocket": {"0": [0, 1, 2, 3]}}}}  # 4 of 4
    path = tmp_path / "protocol.json"
    path.write_text(json.dumps(protocol))
    out = against(result, path)
    assert out["teacher"]["accuracy_diff"] == pytest.approx(0.25)
    assert out["minirocket"]["accuracy_diff"] == pytest.approx(-0.25)
    reordered = {"test_ids": fold["test_ids"][::-1], "y_true": [3, 2, 1, 0], "teacher": [3, 0, 0, 0],
                 "minirocket": {"0": [3, 2, 1, 0]}}
    path.write_text(json.dumps({"predictions": {"s1": reordered}}))
    assert against(result, path)["teacher"]["accuracy_diff"] == pytest.approx(0.25)   # paired by trial id
    protocol["predictions"]["s1"]["test_ids"] = ["a9_s1_t1"] + fold["test_ids"][1:]
    path.write_text(json.dumps(protocol))
    with pytest.raises(ValueError, match="fold s1 holds other trials"):
        against(result, path)


def test_a_folder_without_skeletons_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="Skeleton: no a"):
        load(tmp_path, [1, 3])
