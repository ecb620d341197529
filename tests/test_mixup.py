"""Mixup for the GAF student (vskd/mixup.py): hand-computed mixes and the losses they give."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vskd.losses import dask_loss, distill_inputs
from vskd.mixup import mix, mix_distill_batch, mixed_targets, mixed_teacher_logits, mixing, mixup_step, target_entropy


def test_mixing_depends_on_the_rows_and_seed_alone():
    lam, perm = mixing([4, 9, 2], alpha=0.2, seed=0)
    again = mixing(np.array([4, 9, 2]), alpha=0.2, seed=0)
    assert lam == again[0] and torch.equal(perm, again[1])
    assert 0 < lam < 1 and sorted(perm.tolist()) == [0, 1, 2]
    assert mixing([4, 9, 3], 0.2, 0)[0] != lam and mixing([4, 9, 2], 0.2, 1)[0] != lam


def test_mix_and_targets_by_hand():
    perm = torch.tensor([1, 0])
    x = torch.tensor([[1.0], [3.0]])
    assert mix(x, 0.25, perm).tolist() == [[2.5], [1.5]]      # 0.25 * 1 + 0.75 * 3, 0.25 * 3 + 0.75 * 1
    targets = mixed_targets(torch.tensor([0, 1]), 3, 0.25, perm)
    assert targets.tolist() == [[0.25, 0.75, 0.0], [0.75, 0.25, 0.0]]


def test_mixed_teacher_logits_give_the_mixed_probabilities_at_temperature():
    t = torch.tensor([[2.0, 0.0, -1.0], [0.0, 3.0, 1.0]])
    perm, T, lam = torch.tensor([1, 0]), 4.0, 0.3
    p = F.softmax(t / T, dim=1)
    expected = lam * p + (1 - lam) * p[perm]
    assert torch.allclose(F.softmax(mixed_teacher_logits(t, T, lam, perm) / T, dim=1), expected, atol=1e-6)


def test_mixup_step_is_the_mix_of_two_cross_entropies():
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    x, y, rows = torch.randn(5, 4), torch.tensor([0, 1, 2, 0, 1]), torch.tensor([7, 3, 11, 0, 5])
    loss, terms, _, shown = mixup_step(net, 0.4, 0, 3)((x, y, rows))
    lam, perm = mixing(rows.tolist(), 0.4, 0)
    logits = net(lam * x + (1 - lam) * x[perm])
    expected = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    assert torch.equal(shown, y if lam >= 0.5 else y[perm])


def test_distill_batch_mixes_every_teacher_output_with_one_lam():
    x, y = torch.arange(6.0).reshape(3, 2), torch.tensor([0, 1, 1])
    t_logits, t_feature = torch.zeros(3, 2), torch.tensor([[1.0], [2.0], [4.0]])
    rows = torch.tensor([10, 20, 30])
    mx, target, t_mixed, f_mixed, maps, shown = mix_distill_batch(
        (x, y, t_logits, t_feature, t_feature.clone(), rows), 0.2, 0, 2, 4.0)
    lam, perm = mixing([10, 20, 30], 0.2, 0)
    assert torch.allclose(mx, lam * x + (1 - lam) * x[perm])
    assert torch.allclose(f_mixed, lam * t_feature + (1 - lam) * t_feature[perm]) and torch.allclose(maps[0], f_mixed)
    assert torch.allclose(target.sum(1), torch.ones(3))
    # equal teacher logits stay equal probabilities: log(1/2) * T on both classes
    assert torch.allclose(t_mixed, torch.full((3, 2), 4.0 * math.log(0.5)))
    # the DASK loss takes probability targets for its cross-entropy
    loss = dask_loss(alpha=0.5, beta=1.0, gamma=1.0, temperature=4.0)
    total, _ = loss(distill_inputs(loss, student_logits=torch.zeros(3, 2), student_feature=torch.randn(3, 1),
                                   teacher_logits=t_mixed, teacher_feature=f_mixed, target=target))
    assert torch.isfinite(total)


def test_teacher_step_mixes_whole_clips_only_when_on():
    from vskd.train_teacher import _teacher_step

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 3 * 4 * 4, 3))
    clips, y, rows = torch.randn(4, 2, 3, 4, 4), torch.tensor([0, 1, 2, 1]), torch.tensor([5, 1, 8, 2])
    plain, *_ = _teacher_step(net, {"mixup": 0.0}, 0, 3)((clips, y, rows))
    assert plain.item() == pytest.approx(F.cross_entropy(net(clips), y).item(), rel=1e-6)
    mixed, *_ = _teacher_step(net, {"mixup": 0.3}, 0, 3)((clips, y, rows))
    lam, perm = mixing(rows.tolist(), 0.3, 0)
    logits = net(lam * clips + (1 - lam) * clips[perm])   # every frame of a clip with one lam
    expected = lam * F.cross_entropy(logits, y) + (1 - lam) * F.cross_entropy(logits, y[perm])
    assert mixed.item() == pytest.approx(expected.item(), rel=1e-6)


def test_target_entropy_against_closed_forms():
    assert target_entropy(0.0) == 0.0
    assert target_entropy(1.0) == pytest.approx(0.5, abs=1e-6)        # uniform lam: E[H] = 1/2 nat
    # Beta(2, 2): E[-lam ln lam] * 2 = 2 * 6 * int lam^2 (1 - lam) (-ln lam) = 12 * (1/9 - 1/16) = 7/12
    assert target_entropy(2.0) == pytest.approx(7 / 12, abs=1e-6)
    assert target_entropy(0.2) == pytest.approx(0.22766, abs=1e-4)    # scipy.integrate.quad
