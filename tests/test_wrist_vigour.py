"""benchmarks/wrist_vigour.py: the motion RMS and the per-subject ratios, on hand-made series."""

import numpy as np
import pytest

from benchmarks.wrist_vigour import motion_rms, subject_ratios


def test_a_still_wrist_has_no_motion_whatever_its_orientation():
    assert motion_rms(np.tile([0.3, -0.2, 0.9], (120, 1))) == pytest.approx(0.0, abs=1e-12)


def test_motion_is_the_rms_about_the_moving_average():
    t = np.arange(1000)
    acc = np.zeros((1000, 3))
    acc[:, 2] = 1.0 + 0.5 * (-1.0) ** t     # gravity plus +-0.5 g every other sample
    assert motion_rms(acc, window=50) == pytest.approx(0.5, rel=0.02)  # edges padded: within 2 %


def test_subject_ratios_divide_by_the_subjects_mean_per_action():
    rms = {1: {1: [1.0, 3.0], 3: [4.0]},   # medians 2 and 4, mean 3
           2: {1: [2.0], 3: [2.0, 2.0]}}   # both 2
    assert subject_ratios(rms) == {1: pytest.approx([2 / 3, 1.0]), 3: pytest.approx([4 / 3, 1.0])}
