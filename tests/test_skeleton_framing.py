"""benchmarks/skeleton_framing.py: the box the joints span and the framing that centres it."""

import numpy as np
import pytest

from benchmarks.skeleton_framing import CROP, MARGIN, body_box, framing
from vskd.datasets.skeleton_video import HEAD, HIP_C, L_FOOT, R_FOOT, R_HAND, image_coordinates


def _pose() -> np.ndarray:
    """One frame: hip at the origin, head 1 m up, feet 0.6 m down (1.6 m), right hand 0.8 m right."""
    joints = np.zeros((1, 20, 3))
    joints[0, HEAD, 1] = 1.0
    joints[0, [L_FOOT, R_FOOT], 1] = -0.6
    joints[0, R_HAND, 0] = 0.8
    return joints


def test_box_is_in_body_heights_from_the_hip():
    box = body_box([_pose()], yaw_deg=0.0, pitch_deg=0.0, low=0.0, high=100.0)
    assert box["x"] == pytest.approx((0.0, 0.5))       # the hand 0.8 m / 1.6 m to the right
    assert box["y"] == pytest.approx((-0.375, 0.625))  # feet 0.6 / 1.6 below, head 1 / 1.6 above


def test_framing_centres_the_box_and_the_drawing_puts_it_there():
    box = {"x": (0.0, 0.5), "y": (-0.375, 0.625)}
    fit = framing(box, body_fraction=0.8)
    assert fit["hip_at"] == [0.3, 0.6]   # 0.5 - 0.8 * 0.25, 0.5 + 0.8 * 0.125
    assert fit["edges"] == pytest.approx({"left": 0.3, "right": 0.7, "top": 0.1, "bottom": 0.9})
    assert fit["largest_body_fraction"] == pytest.approx((CROP - 2 * MARGIN) / 1.0)
    xy = image_coordinates(_pose(), size=100, body_fraction=0.8, hip_at=fit["hip_at"])
    np.testing.assert_allclose(xy[0, HIP_C], [30.0, 60.0])
    np.testing.assert_allclose(xy[0, HEAD], [30.0, 10.0])      # the box's top edge
    np.testing.assert_allclose(xy[0, R_FOOT], [30.0, 90.0])    # its bottom edge
    np.testing.assert_allclose(xy[0, R_HAND], [70.0, 60.0])    # its right edge
