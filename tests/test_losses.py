import math

import numpy as np

import pytest
import torch
import torch.nn.functional as F

from vskd.losses import (ATLoss, KDLoss, RKDAngleLoss, RKDDistanceLoss, SemanticLoss, SPLoss, WeightedSum,
                         dask_inputs, dask_loss, distill_inputs, distill_loss, pairwise_distances)
from vskd.params import ParamsError, validate


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
    assert float(terms["rkd_angle"]) == 0.0  # weight 0: not computed, logged as exactly 0
    assert float(RKDAngleLoss()(s_feat, t_feat)) > 0.01  # (the term itself is not 0 here)


def test_negative_weight_rejected():
    with pytest.raises(ValueError, match="'kd' must be >= 0"):
        WeightedSum({"kd": (-1.0, KDLoss())})


# --- attention transfer and similarity preserving -------------------------------------------

def test_at_by_hand():
    # Student activation: 1 sample, 2 channels, a 1 x 2 map: channel 1 = [1, 0], channel 2 = [1, 2].
    # Q_s = mean_c A^2 = [(1 + 1) / 2, (0 + 4) / 2] = [1, 2], normalised [1, 2] / sqrt 5.
    # Teacher map [1, 0], normalised [1, 0].
    # Squared differences: (1/sqrt5 - 1)^2 + (2/sqrt5)^2 = 1 - 2/sqrt5 + 1/5 + 4/5 = 2 - 2/sqrt5;
    # their mean over the 2 positions: 1 - 1/sqrt5 = 0.552786.
    a_s = torch.tensor([[[[1.0, 0.0]], [[1.0, 2.0]]]])
    q_t = torch.tensor([[[1.0, 0.0]]])
    assert float(ATLoss()([a_s], [q_t])) == pytest.approx(1 - 1 / math.sqrt(5), rel=1e-6)


def test_at_pools_to_the_smaller_map_and_sums_the_layers():
    # Student 1 x 2 map, one channel [1, 2]: Q_s = [1, 4], normalised [1, 4] / sqrt 17.
    # Teacher 2 x 2 map [[1, 3], [3, 1]], pooled to the student's 1 x 2: column means [2, 2],
    # normalised [1, 1] / sqrt 2. Mean squared difference:
    # ((1/sqrt17 - 1/sqrt2)^2 + (4/sqrt17 - 1/sqrt2)^2) / 2 = (17/17 + 1 - 10/sqrt34) / 2 = 1 - 5/sqrt34.
    a_s = torch.tensor([[[[1.0, 2.0]]]])
    q_t = torch.tensor([[[1.0, 3.0], [3.0, 1.0]]])
    pooled = 1 - 5 / math.sqrt(34)
    assert float(ATLoss()([a_s], [q_t])) == pytest.approx(pooled, rel=1e-6)
    # two layer pairs: the sum of both (the by-hand case of test_at_by_hand is the second)
    a2 = torch.tensor([[[[1.0, 0.0]], [[1.0, 2.0]]]])
    q2 = torch.tensor([[[1.0, 0.0]]])
    assert float(ATLoss()([a_s, a2], [q_t, q2])) == pytest.approx(pooled + 1 - 1 / math.sqrt(5), rel=1e-6)
    # the map's scale does not matter, only its shape (both sides are L2-normalised)
    assert float(ATLoss()([3 * a_s], [10 * q_t])) == pytest.approx(pooled, rel=1e-6)
    with pytest.raises(ValueError, match="one teacher map per student layer"):
        ATLoss()([a_s, a2], [q_t])


def test_at_is_zero_when_the_student_energy_matches():
    torch.manual_seed(0)
    a = torch.randn(4, 6, 5, 5)
    assert float(ATLoss()([a], [a.pow(2).mean(1)])) == pytest.approx(0.0, abs=1e-12)


def test_sp_by_hand():
    # Student features of a batch of 2: [1, 0] and [0, 1]: G_s = I, rows already unit.
    # Teacher [1, 0] twice: G_t = [[1, 1], [1, 1]], rows normalised to 1/sqrt2 each.
    # ||G_s - G_t||_F^2 = 2 (1 - 1/sqrt2)^2 + 2 (1/sqrt2)^2 = 4 - 2 sqrt2; / B^2 = 4: 1 - sqrt2 / 2.
    s = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    t = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    assert float(SPLoss()(s, t)) == pytest.approx(1 - math.sqrt(2) / 2, rel=1e-6)


def test_sp_compares_batches_of_any_widths_up_to_scale():
    torch.manual_seed(0)
    t = torch.randn(5, 16)
    assert float(SPLoss()(4.0 * t, t)) == pytest.approx(0.0, abs=1e-6)
    s = torch.randn(5, 3, 2, 2)  # flattened: any shape per sample
    assert float(SPLoss()(s, t)) > 0.01


# --- the distill stage's choice of loss ------------------------------------------------------

def params_for(method="dask", **distill):
    return {"alpha": 0.5, "beta": 2.0, "gamma": 0.25, "temperature": 4.0,
            "distill": {"method": method, "distance_weight": 1.0, "angle_weight": 1.0,
                        "at_weight": 1000.0, "sp_weight": 3000.0, **distill}}


def batch(seed=0, b=6, classes=4, dim=8, requires_grad=False):
    g = torch.Generator().manual_seed(seed)
    t = {"student_logits": torch.randn(b, classes, generator=g),
         "student_feature": torch.randn(b, dim, generator=g),
         "teacher_logits": torch.randn(b, classes, generator=g),
         "teacher_feature": torch.randn(b, dim, generator=g),
         "student_maps": [torch.randn(b, 3, 4, 4, generator=g), torch.randn(b, 5, 2, 2, generator=g)],
         "teacher_maps": [torch.rand(b, 3, 3, generator=g), torch.rand(b, 2, 2, generator=g)]}
    if requires_grad:
        for k, v in t.items():
            for x in (v if isinstance(v, list) else [v]):
                x.requires_grad_(True)
    t["target"] = torch.arange(b) % classes
    return t


@pytest.mark.parametrize("method, terms, weights", [
    ("dask", {"ce", "kd", "rkd_distance", "rkd_angle", "semantic"},
     {"ce": 1.0, "kd": 0.5, "rkd_distance": 2.0, "rkd_angle": 2.0, "semantic": 0.25}),
    ("st", {"ce", "kd"}, {"ce": 1.0, "kd": 0.5}),
    ("at", {"ce", "at"}, {"ce": 1.0, "at": 1000.0}),
    ("sp", {"ce", "sp"}, {"ce": 1.0, "sp": 3000.0}),
])
def test_distill_method_picks_the_formula(method, terms, weights):
    loss = distill_loss(params_for(method))
    assert set(loss.terms) == terms and loss.weights == weights
    b = batch()
    total, values = loss(distill_inputs(loss, **b))
    assert set(values) == terms
    assert float(total) == pytest.approx(sum(weights[k] * float(values[k]) for k in terms), rel=1e-6)
    assert all(float(values[k]) > 0 for k in terms)


def test_st_is_dask_without_relations_and_semantics():
    b = batch(1)
    st = distill_loss(params_for("st"))
    dask = distill_loss({**params_for("dask"), "beta": 0.0, "gamma": 0.0})
    assert float(st(distill_inputs(st, **b))[0]) == pytest.approx(float(dask(distill_inputs(dask, **b))[0]), rel=1e-7)


def test_unknown_method_is_an_error():
    with pytest.raises(ValueError, match="distill.method must be one of dask, st, at, sp, got 'fitnet'"):
        distill_loss(params_for("fitnet"))


@pytest.mark.parametrize("ablation, zero", [
    ({"distill": {"distance_weight": 0.0}}, {"rkd_distance"}),                           # without D
    ({"distill": {"angle_weight": 0.0}}, {"rkd_angle"}),                                 # without A
    ({"distill": {"distance_weight": 0.0, "angle_weight": 0.0}}, {"rkd_distance", "rkd_angle"}),
    ({"gamma": 0.0}, {"semantic"}),                                                      # without S
])
def test_dask_ablations_by_params_alone(ablation, zero, monkeypatch):
    params = params_for("dask")
    params.update({k: v for k, v in ablation.items() if k != "distill"})
    params["distill"].update(ablation.get("distill", {}))
    loss = distill_loss(params)
    # an ablated term is never computed: replace its module by one that fails if called
    for name in zero:
        monkeypatch.setattr(loss.terms[name], "forward", lambda *a: pytest.fail(f"{name} computed"))
    b = batch(2)
    total, values = loss(distill_inputs(loss, **b))
    full = distill_loss(params_for("dask"))
    _, full_values = full(distill_inputs(full, **b))
    for name in zero:
        assert loss.weights[name] == 0 and float(values[name]) == 0.0
    for name in set(values) - zero:
        assert float(values[name]) == pytest.approx(float(full_values[name]), rel=1e-6)
    expected = sum(full.weights[k] * float(full_values[k]) for k in set(values) - zero)
    assert float(total) == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("method", ["dask", "st", "at", "sp"])
def test_no_gradient_reaches_the_teacher_side_for_any_method(method):
    b = batch(3, requires_grad=True)
    loss = distill_loss(params_for(method))
    total, _ = loss(distill_inputs(loss, **b))
    total.backward()
    teacher = [b["teacher_logits"], b["teacher_feature"], *b["teacher_maps"]]
    assert all(t.grad is None for t in teacher)
    student = {"dask": ["student_feature"], "st": ["student_logits"], "at": ["student_maps"],
               "sp": ["student_feature"]}[method]
    for key in student:
        for x in (b[key] if isinstance(b[key], list) else [b[key]]):
            assert x.grad is not None and x.grad.abs().sum() > 0


@pytest.mark.parametrize("key, value, message", [
    ("distill.method", "fitnet", "'distill.method' must be one of dask, st, at, sp"),
    ("distill.at_weight", -1, "'distill.at_weight' must be >= 0"),
    ("distill.sp_weight", "x", "'distill.sp_weight' must be a number"),
    ("student.arch", "resnet50", "'student.arch' must be resnet18 or vgg16, got 'resnet50'"),
    ("student.arch vgg16 with gaf.image_size", 16, "'gaf.image_size' must be >= 32 for student.arch vgg16"),
])
def test_bad_method_or_arch_is_named(key, value, message):
    import copy

    import yaml

    from tests.conftest import REPO

    params = copy.deepcopy(yaml.safe_load((REPO / "params.yaml").read_text()))
    if key.startswith("student.arch vgg16"):
        params["student"]["arch"], key = "vgg16", "gaf.image_size"
    section, name = key.split(".")
    params[section][name] = value
    with pytest.raises(ParamsError, match=message):
        validate(params, "params.yaml")


def test_semantic_scale_teacher_divides_by_the_mean_squared_teacher_norm():
    from vskd.losses import SemanticLoss

    teacher = torch.tensor([[3.0, 4.0], [0.0, 0.0]])  # squared norms 25 and 0: reference 12.5
    student = torch.zeros(2, 2)
    raw = SemanticLoss()
    assert raw.fit_reference(teacher.numpy()) == 1.0  # the paper's loss: not normalised
    assert float(raw(student, teacher)) == pytest.approx(12.5)  # (25 + 0) / 2
    norm = SemanticLoss(normalise=True)
    assert norm.fit_reference(teacher.numpy()) == pytest.approx(12.5)
    assert float(norm(student, teacher)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="all zero"):
        SemanticLoss(normalise=True).fit_reference(np.zeros((3, 2)))


def test_distill_loss_reads_semantic_scale():
    from vskd.losses import distill_loss

    params = {"alpha": 0.01, "beta": 1.0, "gamma": 1.0, "temperature": 4.0,
              "distill": {"method": "dask", "distance_weight": 1.0, "angle_weight": 1.0,
                          "semantic_scale": "teacher"}}
    assert distill_loss(params).terms["semantic"].normalise is True
    params["distill"]["semantic_scale"] = "none"
    assert distill_loss(params).terms["semantic"].normalise is False
    params["distill"]["semantic_scale"] = "batch"
    with pytest.raises(ValueError, match="semantic_scale must be one of"):
        distill_loss(params)


def test_trust_factor_maps_chance_to_zero_and_perfect_to_one():
    from vskd.losses import trust_factor

    assert trust_factor(1 / 27, 27) == 0.0
    assert trust_factor(0.01, 27) == 0.0          # below chance: clipped
    assert trust_factor(1.0, 27) == 1.0
    assert trust_factor(0.55, 10) == pytest.approx(0.5)  # (0.55 - 0.1) / 0.9


def test_trust_scales_every_term_but_cross_entropy():
    params = {"alpha": 0.5, "beta": 2.0, "gamma": 1.0, "temperature": 4.0,
              "distill": {"method": "dask", "distance_weight": 1.0, "angle_weight": 0.5,
                          "semantic_scale": "none", "trust": "teacher_accuracy"}}
    loss = distill_loss(params)
    assert loss.trust == "teacher_accuracy"
    loss.scale_distillation(0.5)
    assert loss.weights == {"ce": 1.0, "kd": 0.25, "rkd_distance": 1.0, "rkd_angle": 0.5, "semantic": 0.5}
    loss.scale_distillation(0.5)  # each seed sets the factor again: it replaces, never compounds
    assert loss.weights == {"ce": 1.0, "kd": 0.25, "rkd_distance": 1.0, "rkd_angle": 0.5, "semantic": 0.5}
    loss.scale_distillation(0.0)  # a teacher at chance: CE alone, the other terms not computed
    s_logits, t_logits = torch.randn(4, 3), torch.randn(4, 3)
    s_feat, t_feat, y = torch.randn(4, 5), torch.randn(4, 5), torch.tensor([0, 1, 2, 0])
    total, terms = loss(dask_inputs(s_logits, s_feat, t_logits, t_feat, y))
    assert float(total) == pytest.approx(float(F.cross_entropy(s_logits, y)))
    assert all(float(terms[k]) == 0.0 for k in ("kd", "rkd_distance", "rkd_angle", "semantic"))
    params["distill"]["trust"] = "sometimes"
    with pytest.raises(ValueError, match="distill.trust must be one of"):
        distill_loss(params)
