"""Distillation losses, one module per term, and the DASK weighted sum (paper eq. 9).

    L = CE + alpha * KD + beta * (w_D * L_D + w_A * L_A) + gamma * L_S

* KD   Hinton et al. 2015 (eq. 2-3): KL(softmax(t/T) || softmax(s/T)) * T^2, batch mean.
* L_D  RKD distance, Park et al. CVPR 2019 (eq. 4-5): pairwise distances, each side divided by
       its mean positive distance, Huber loss between student and teacher.
* L_A  RKD angle (eq. 6-7): cosines of the angles every triple forms, Huber loss.
* L_S  semantic loss (eq. 8): mean over the batch of the squared L2 distance between the
       student's fc0 output and the teacher's segment-averaged feature.

w_D and w_A are 1 in the paper; params ``distill.distance_weight`` / ``angle_weight`` set
them to 0 for the ablations of Table 4. Every teacher input is detached: no gradient can
reach the teacher side, even when a caller passes live tensors.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class KDLoss(nn.Module):
    """Hinton KD with temperature T; scaled by T^2 so gradients keep their size as T changes."""

    def __init__(self, temperature: float = 4.0):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        self.temperature = temperature

    def forward(self, student_logits, teacher_logits):
        T = self.temperature
        log_p_s = F.log_softmax(student_logits / T, dim=1)
        p_t = F.softmax(teacher_logits.detach() / T, dim=1)
        return F.kl_div(log_p_s, p_t, reduction="batchmean") * T * T


def pairwise_distances(e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Euclidean distance matrix with an exact zero diagonal (no sqrt(0) gradient)."""
    sq = e.pow(2).sum(1)
    d2 = (sq[:, None] + sq[None, :] - 2.0 * e @ e.t()).clamp(min=eps)
    d = d2.sqrt()
    return d * (1.0 - torch.eye(len(e), device=e.device, dtype=e.dtype))


def _normalised_distances(e: torch.Tensor) -> torch.Tensor:
    d = pairwise_distances(e)
    return d / d[d > 0].mean()  # mu of eq. 4: the mean positive distance in the batch


def _angles(e: torch.Tensor) -> torch.Tensor:
    """cos of angle(e_i - e_j, e_k - e_j) for every anchor j: (B, B, B), memory O(B^2 D + B^3)."""
    diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)  # diff[j, i] = e_i - e_j
    return torch.bmm(diff, diff.transpose(1, 2)).reshape(-1)


class RKDDistanceLoss(nn.Module):
    def forward(self, student, teacher):
        with torch.no_grad():
            t = _normalised_distances(teacher.detach())
        return F.smooth_l1_loss(_normalised_distances(student), t)


class RKDAngleLoss(nn.Module):
    def forward(self, student, teacher):
        with torch.no_grad():
            t = _angles(teacher.detach())
        return F.smooth_l1_loss(_angles(student), t)


class SemanticLoss(nn.Module):
    """1/m sum_k ||H^S_k - H^T_k||_2^2 over the m samples of the batch."""

    def forward(self, student, teacher):
        return (student - teacher.detach()).pow(2).sum(1).mean()


class CrossEntropyLoss(nn.Module):
    def forward(self, logits, target):
        return F.cross_entropy(logits, target)


class WeightedSum(nn.Module):
    """A named weighted sum of loss modules; returns the total and every term's value.

    ``inputs[name]`` holds the arguments of term ``name``. Terms of weight 0 are still
    computed (without gradient) so their values are logged for every run alike.
    """

    def __init__(self, terms: dict[str, tuple[float, nn.Module]]):
        super().__init__()
        for name, (weight, _) in terms.items():
            if weight < 0:
                raise ValueError(f"loss weight of '{name}' must be >= 0, got {weight}")
        self.weights = {name: float(w) for name, (w, _) in terms.items()}
        self.terms = nn.ModuleDict({name: module for name, (_, module) in terms.items()})

    def forward(self, inputs: dict[str, tuple]):
        total, values = 0.0, {}
        for name, module in self.terms.items():
            weight = self.weights[name]
            if weight == 0:
                with torch.no_grad():
                    value = module(*inputs[name])
            else:
                value = module(*inputs[name])
                total = total + weight * value
            values[name] = value.detach()
        return total, values


def dask_loss(alpha: float, beta: float, gamma: float, temperature: float,
              distance_weight: float = 1.0, angle_weight: float = 1.0) -> WeightedSum:
    """Paper eq. 9 as a WeightedSum; the term names are the ones logged per epoch."""
    return WeightedSum({
        "ce": (1.0, CrossEntropyLoss()),
        "kd": (alpha, KDLoss(temperature)),
        "rkd_distance": (beta * distance_weight, RKDDistanceLoss()),
        "rkd_angle": (beta * angle_weight, RKDAngleLoss()),
        "semantic": (gamma, SemanticLoss()),
    })


def dask_inputs(student_logits, student_feature, teacher_logits, teacher_feature, target):
    """Which tensors each DASK term compares. The relational terms (RKD) act on the same
    embeddings as the semantic term: the student's fc0 output and the teacher's feature."""
    return {
        "ce": (student_logits, target),
        "kd": (student_logits, teacher_logits),
        "rkd_distance": (student_feature, teacher_feature),
        "rkd_angle": (student_feature, teacher_feature),
        "semantic": (student_feature, teacher_feature),
    }
