import math

import pytest
import torch
import torch.nn.functional as F

from vskd.losses import (KDLoss, RKDAngleLoss, RKDDistanceLoss, SemanticLoss, WeightedSum,
                         dask_inputs, dask_loss, pairwise_distances)


def huber(d):
    return 0.5 * d * d if abs(d) < 1 else abs(d) - 0.5


def test_kd_by_hand_and_temperature_scaling():
    # p_t = softmax([ln 3, 0]) = [3/4, 1/4]; p_s uniform: KL = 3/4 ln(3/2) + 1/4 ln(1/2)
    kl = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)
    s = torch.zeros(1, 2)
    assert float(KDLoss(1.0)(s, torch.tensor([[math.log(3), 0.0]]))) == pytest.approx(kl)
    # with T = 2 and teacher logits doubled, the distributions are the same; loss scales by T^2
    assert float(KDLoss(2.0)(s, torch.tensor([[2 * math.log(3), 0.0]]))) == pytest.approx(4 * kl)
    z = torch.randn(4, 5)
    assert float(KDLoss(4.0)(z, z)) == pytest.approx(0.0, abs=1e-6)


def test_kd_rejects_nonpositive_temperature():
    with pytest.raises(ValueError, match="temperature"):
        KDLoss(0)


def test_pairwise_distances_exact():
    e = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])
    expected = torch.tensor([[0, 3, 4], [3, 0, 5], [4, 5, 0.0]])
    torch.testing.assert_close(pairwise_distances(e), expected)


def test_rkd_distance_by_hand():
    student = torch.tensor([[0.0, 0.0], [3.0, 0.0], [0.0, 4.0]])  # distances 3, 4, 5; mean 4
    teacher = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # distances 1, 1, sqrt 2
    mu_t = (2 + math.sqrt(2)) / 3
    diffs = [3 / 4 - 1 / mu_t, 4 / 4 - 1 / mu_t, 5 / 4 - math.sqrt(2) / mu_t]
    expected = 2 * sum(huber(d) for d in diffs) / 9  # 9 matrix entries, the diagonal agrees
    assert float(RKDDistanceLoss()(student, teacher)) == pytest.approx(expected, rel=1e-5)
    assert float(RKDDistanceLoss()(student, 2 * student)) == pytest.approx(0.0, abs=1e-7)


def test_rkd_angle_by_hand():
    student = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.5, math.sqrt(3) / 2]])  # 60 degrees each
    teacher = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # 90, 45, 45 degrees
    # per anchor, two entries hold the angle's cosine (i, k and k, i); i == k entries are 1 on
    # both sides, entries touching the anchor are 0 on both: 27 entries in all.
    diffs = [0.5 - 0.0] * 2 + [0.5 - math.sqrt(0.5)] * 4
    expected = sum(huber(d) for d in diffs) / 27
    assert float(RKDAngleLoss()(student, teacher)) == pytest.approx(expected, rel=1e-5)


def test_rkd_angle_invariant_to_similarity_transforms():
    t = torch.randn(6, 3)
    rotation = torch.linalg.qr(torch.randn(3, 3))[0]
    s = 2.5 * t @ rotation + 1.0
    assert float(RKDAngleLoss()(s, t)) == pytest.approx(0.0, abs=1e-6)
    assert float(RKDDistanceLoss()(s, t)) == pytest.approx(0.0, abs=1e-6)


def test_semantic_loss_by_hand():
    s = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    t = torch.tensor([[0.0, 0.0], [0.0, 3.0]])
    assert float(SemanticLoss()(s, t)) == pytest.approx((5 + 9) / 2)


def test_no_gradient_reaches_the_teacher_side():
    s_logits = torch.randn(5, 4, requires_grad=True)
    s_feat = torch.randn(5, 8, requires_grad=True)
    t_logits = torch.randn(5, 4, requires_grad=True)
    t_feat = torch.randn(5, 8, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3, 0])
    total, _ = dask_loss(1, 1, 1, 4)(dask_inputs(s_logits, s_feat, t_logits, t_feat, y))
    total.backward()
    assert t_logits.grad is None and t_feat.grad is None
    assert s_logits.grad is not None and s_feat.grad.abs().sum() > 0


def test_weighted_sum_is_the_named_formula():
    torch.manual_seed(0)
    s_logits, s_feat = torch.randn(6, 4), torch.randn(6, 8)
    t_logits, t_feat = torch.randn(6, 4), torch.randn(6, 8)
    y = torch.randint(0, 4, (6,))
    alpha, beta, gamma, T = 0.5, 2.0, 0.1, 4.0
    total, terms = dask_loss(alpha, beta, gamma, T, distance_weight=1.0, angle_weight=0.0)(
        dask_inputs(s_logits, s_feat, t_logits, t_feat, y))
    expected = (F.cross_entropy(s_logits, y) + alpha * KDLoss(T)(s_logits, t_logits)
                + beta * RKDDistanceLoss()(s_feat, t_feat) + gamma * SemanticLoss()(s_feat, t_feat))
    assert float(total) == pytest.approx(float(expected), rel=1e-6)
    assert set(terms) == {"ce", "kd", "rkd_distance", "rkd_angle", "semantic"}
    assert float(terms["rkd_angle"]) > 0  # weight 0: not in the total, still logged


def test_negative_weight_rejected():
    with pytest.raises(ValueError, match="'kd' must be >= 0"):
        WeightedSum({"kd": (-1.0, KDLoss())})
