"""Attention maps for attention transfer (AT; Zagoruyko & Komodakis, ICLR 2017), both sides.

An attention map (the paper's p = 2 "activation-based" map) is the channel mean of the
squared activation of one layer:

    Q(A) = 1/C sum_c A_c^2            (B, C, H, W) -> (B, H, W)

The loss (:class:`vskd.losses.ATLoss`) flattens each map, L2-normalises it per sample and
compares student and teacher at matched depths.

Which layers are matched, and what that means across modalities
----------------------------------------------------------------
The two networks are paired by **depth, i.e. by output stride** (8, 16, 32): at the paper's
224 px inputs each pair has the same map size, at the CPU default (GAF 48 px, frames 56 px)
almost the same (student ResNet18 / VGG16-BN / teacher):

    student ResNet18    student VGG16-BN   teacher BN-Inception   224 px    default (48 / 56 px)
    layer2              after pool3         inception_3b           28 x 28   6 / 6 / 7
    layer3              after pool4         inception_4d           14 x 14   3 / 3 / 4
    layer4              after pool5         inception_5b            7 x 7    2 / 1 / 2

The teacher sees S video frames per clip; its maps are computed per frame and averaged over
the segments (the same segment average as its semantic feature), at the block's native size,
by the teacher stage (``attention/<block>`` in ``teacher_outputs.h5``). The loss pools both
maps of a pair with adaptive average pooling to the smaller of the two sizes.

The student's input is a Gramian Angular Field image, not a picture: position (i, j) of a GAF
is a pair of time steps of the accelerometer trial, position (y, x) of a frame is a place in
the scene. There is no correspondence between the two layouts, so AT here does not teach the
student to "look where the teacher looks". It asks the student to distribute its activation
energy over its map, at each depth, in the same proportions as the teacher distributes its
over the video frame (e.g. concentrated versus spread out, and where): a structural prior,
borrowed across modalities, which is how the paper's comparison (Table 4, "AT") could apply
an image-to-image method to video-to-sensor distillation at all.
"""

from __future__ import annotations

import torch

# The teacher blocks whose maps the teacher stage stores, shallow to deep (output stride 8,
# 16, 32: the last block before each grid reduction, and the last block).
TEACHER_BLOCKS = ("inception_3b", "inception_4d", "inception_5b")


def attention_map(activation: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, H, W): the channel mean of the squared activation (AT, p = 2)."""
    if activation.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) activation, got shape {tuple(activation.shape)}")
    return activation.pow(2).mean(1)
