"""One random affine map for every frame of a training clip (``teacher.affine``).

A new subject differs from the training subjects by where and how their limbs move, not only
by what they do: they lean, stand turned a little to the camera, and have other proportions.
A teacher trained from scratch on a few hundred clips learns the training subjects' exact
hand positions (97 % on its own clips, about 60 % on a new subject, docs/real-motion.md). A
rotation about the picture's centre models the lean and a camera roll; a separate stretch of
width and height models proportions and a turn about the vertical axis (a body turned by
delta to the camera shrinks across the picture by about cos(delta)). The same map holds for
the whole clip, so the motion between its frames is untouched.

The map sends picture coordinates p (centre 0, edges +-1) to A p with
A = R(angle) @ diag(sx, sy), angle uniform in +-``rotate_deg``, sx and sy uniform in
1 +- ``stretch``; pixels that come from outside the picture are black, the skeleton video's
background.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def draw_affine(rng: np.random.Generator, rotate_deg: float, stretch: float) -> tuple[float, float, float]:
    """(angle in degrees, sx, sy) for one clip."""
    angle = float(rng.uniform(-rotate_deg, rotate_deg))
    sx, sy = (float(v) for v in rng.uniform(1.0 - stretch, 1.0 + stretch, size=2))
    return angle, sx, sy


def affine_matrix(angle_deg: float, sx: float, sy: float) -> np.ndarray:
    """A = R(angle) @ diag(sx, sy), 2 x 2, in picture coordinates (x right, y down)."""
    a = math.radians(angle_deg)
    rotation = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    return rotation @ np.diag([sx, sy])


def apply_affine(clip: torch.Tensor, angle_deg: float, sx: float, sy: float) -> torch.Tensor:
    """(S, C, H, W) clip warped by A (one map for all frames), bilinear, black outside.

    ``affine_grid`` wants the map from output to input coordinates, A's inverse. Its
    normalised coordinates treat width and height alike, so on a non-square picture A acts
    on the normalised coordinates, which is all the augmentation needs.
    """
    inverse = np.linalg.inv(affine_matrix(angle_deg, sx, sy))
    theta = torch.zeros(clip.shape[0], 2, 3, dtype=clip.dtype)
    theta[:, :, :2] = torch.as_tensor(inverse, dtype=clip.dtype)
    grid = F.affine_grid(theta, list(clip.shape), align_corners=False)
    return F.grid_sample(clip, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
