"""Distillation losses, one module per term, and the DASK weighted sum (paper eq. 9).

    L = CE + alpha * KD + beta * (w_D * L_D + w_A * L_A) + gamma * L_S

and the other methods of the paper's Table 4 (params ``distill.method``, :func:`distill_loss`):

    st    L = CE + alpha * KD                             (Hinton et al. 2015)
    at    L = CE + distill.at_weight * L_AT               (Zagoruyko & Komodakis, ICLR 2017)
    sp    L = CE + distill.sp_weight * L_SP               (Tung & Mori, ICCV 2019)

* KD   Hinton et al. 2015 (eq. 2-3): KL(softmax(t/T) || softmax(s/T)) * T^2, batch mean.
* L_D  RKD distance, Park et al. CVPR 2019 (eq. 4-5): pairwise distances, each side divided by
       its mean positive distance, Huber loss between student and teacher.
* L_A  RKD angle (eq. 6-7): cosines of the angles every triple forms, Huber loss.
* L_S  semantic loss (eq. 8): mean over the batch of the squared L2 distance between the
       student's fc0 output and the teacher's segment-averaged feature.

* L_AT attention transfer, p = 2: per matched layer pair, the attention maps
       Q = mean_c A_c^2 (``vskd.attention``) pooled to a common size, flattened and
       L2-normalised per sample; mean over batch and positions of the squared difference;
       summed over the pairs. This is the form of the AT authors' code and of RepDistiller
       (``(at(s) - at(t)).pow(2).mean()``), for which the usual weight 1000 is calibrated.
* L_SP similarity preserving: G = F F^T (B x B) of each side's flattened batch features,
       rows L2-normalised; ||G_s - G_t||_F^2 / B^2. Usual weight 3000.

w_D and w_A are 1 in the paper; params ``distill.distance_weight`` / ``angle_weight`` set
them to 0 for the ablations of Table 4. Every teacher input is detached: no gradient can
reach the teacher side, even when a caller passes live tensors. With ``runtime.amp`` every
term is computed in float32 on float32 inputs (:func:`float32_loss`).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from vskd.attention import attention_map
from vskd.choices import DISTILL_METHODS, SEMANTIC_SCALES, TRUST


def _first_tensor(args):
    for a in args:
        if isinstance(a, torch.Tensor):
            return a
        if isinstance(a, (list, tuple)):
            found = _first_tensor(a)
            if found is not None:
                return found
    return None


def _as_float32(args):
    return tuple(a.float() if isinstance(a, torch.Tensor) and a.is_floating_point()
                 else type(a)(_as_float32(a)) if isinstance(a, (list, tuple)) else a for a in args)


def float32_loss(fn, *args):
    """``fn(*args)`` computed in float32 (params ``runtime.amp``).

    Under autocast the floating inputs are cast to float32 and autocast is off inside: the
    softmax at T = 4, the mean-normalised distances and the B^3 angle cosines lose their small
    differences in bfloat16 or float16, and KD's KL would be taken between rounded
    distributions. Gradients flow back through the casts into the half-precision forward.
    Without autocast (the default) it is exactly ``fn(*args)``: nothing is cast."""
    first = _first_tensor(args)
    if first is None or not torch.is_autocast_enabled(first.device.type):
        return fn(*args)
    with torch.autocast(first.device.type, enabled=False):
        return fn(*_as_float32(args))


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
    """1/m sum_k ||H^S_k - H^T_k||_2^2 over the m samples of the batch, divided by
    ``reference``: 1 (the paper's loss), or with ``normalise`` the teacher features' mean
    squared norm over the training samples (:meth:`fit_reference`), so the term starts near
    1 whatever the scale of the teacher's features (``distill.semantic_scale: teacher``)."""

    def __init__(self, normalise: bool = False):
        super().__init__()
        self.normalise = normalise
        self.reference = 1.0

    def fit_reference(self, teacher_features) -> float:
        """Set the divisor from the training samples' teacher features (N, D); returns it."""
        if self.normalise:
            f = torch.as_tensor(teacher_features, dtype=torch.float64)
            ref = float(f.pow(2).sum(1).mean())
            if not ref > 0:
                raise ValueError("the teacher's features are all zero: semantic_scale: teacher "
                                 "cannot normalise by them; rerun the teacher stage")
            self.reference = ref
        return self.reference

    def forward(self, student, teacher):
        return (student - teacher.detach()).pow(2).sum(1).mean() / self.reference


class CrossEntropyLoss(nn.Module):
    def forward(self, logits, target):
        return F.cross_entropy(logits, target)


def _flat_attention(q: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """(B, H, W) attention map -> (B, h*w): adaptive average pool to ``size``, L2-normalised."""
    if tuple(q.shape[-2:]) != tuple(size):
        q = F.adaptive_avg_pool2d(q.unsqueeze(1), size).squeeze(1)
    return F.normalize(q.flatten(1), p=2, dim=1)


class ATLoss(nn.Module):
    """Attention transfer between matched layer pairs (module docstring).

    ``student``: activations (B, C, H, W) of the student's layers, shallow to deep;
    ``teacher``: the teacher's attention maps (B, h, w), already reduced over channels (and
    segments), one per student layer. Each pair is pooled to (min(H, h), min(W, w))."""

    def forward(self, student, teacher):
        if len(student) != len(teacher) or not student:
            raise ValueError(f"AT needs one teacher map per student layer, got {len(student)} student "
                             f"and {len(teacher)} teacher maps")
        total = 0.0
        for a_s, q_t in zip(student, teacher):
            size = (min(a_s.shape[-2], q_t.shape[-2]), min(a_s.shape[-1], q_t.shape[-1]))
            with torch.no_grad():
                t = _flat_attention(q_t.detach(), size)
            total = total + (_flat_attention(attention_map(a_s), size) - t).pow(2).mean()
        return total


def _similarity(f: torch.Tensor) -> torch.Tensor:
    f = f.flatten(1)
    return F.normalize(f @ f.t(), p=2, dim=1)


class SPLoss(nn.Module):
    """Similarity-preserving KD: ||normalize_rows(F_s F_s^T) - normalize_rows(F_t F_t^T)||_F^2 / B^2."""

    def forward(self, student, teacher):
        with torch.no_grad():
            g_t = _similarity(teacher.detach())
        b = student.shape[0]
        return (_similarity(student) - g_t).pow(2).sum() / (b * b)


class WeightedSum(nn.Module):
    """A named weighted sum of loss modules; returns the total and every term's value.

    ``inputs[name]`` holds the arguments of term ``name``. A term of weight 0 (an ablation,
    e.g. ``distill.angle_weight: 0``) is not computed at all: it costs nothing, and its logged
    value is exactly 0 (``train/rkd_angle`` flat at 0 marks the ablated term in the curves).
    """

    def __init__(self, terms: dict[str, tuple[float, nn.Module]], trust: str = "none"):
        super().__init__()
        for name, (weight, _) in terms.items():
            if weight < 0:
                raise ValueError(f"loss weight of '{name}' must be >= 0, got {weight}")
        if trust not in TRUST:
            raise ValueError(f"trust must be one of {TRUST}, got {trust!r}")
        self.weights = {name: float(w) for name, (w, _) in terms.items()}
        self.configured = dict(self.weights)  # as params.yaml set them, before any trust factor
        self.terms = nn.ModuleDict({name: module for name, (_, module) in terms.items()})
        self.trust = trust

    def scale_distillation(self, factor: float) -> None:
        """Every term but the cross-entropy at its configured weight times ``factor``
        (``distill.trust``). It replaces, not compounds, an earlier factor: one loss object
        serves every training seed, and each seed sets its own teacher's factor."""
        self.weights = {name: w if name == "ce" else w * factor for name, w in self.configured.items()}

    def forward(self, inputs: dict[str, tuple]):
        total, values = 0.0, {}
        for name, module in self.terms.items():
            weight = self.weights[name]
            if weight == 0:
                values[name] = torch.zeros(())
                continue
            value = float32_loss(module, *inputs[name])
            total = total + weight * value
            values[name] = value.detach()
        return total, values


def dask_loss(alpha: float, beta: float, gamma: float, temperature: float,
              distance_weight: float = 1.0, angle_weight: float = 1.0,
              semantic_scale: str = "none") -> WeightedSum:
    """Paper eq. 9 as a WeightedSum; the term names are the ones logged per epoch.
    ``semantic_scale``: none (the paper's L_S) or teacher (L_S / mean ||H^T||^2)."""
    if semantic_scale not in SEMANTIC_SCALES:
        raise ValueError(f"semantic_scale must be one of {SEMANTIC_SCALES}, got {semantic_scale!r}")
    return WeightedSum({
        "ce": (1.0, CrossEntropyLoss()),
        "kd": (alpha, KDLoss(temperature)),
        "rkd_distance": (beta * distance_weight, RKDDistanceLoss()),
        "rkd_angle": (beta * angle_weight, RKDAngleLoss()),
        "semantic": (gamma, SemanticLoss(normalise=semantic_scale == "teacher")),
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


def st_loss(alpha: float, temperature: float) -> WeightedSum:
    """Table 4's ST: Hinton KD, CE + alpha * KD, with the same alpha and T as DASK's KD term."""
    return WeightedSum({"ce": (1.0, CrossEntropyLoss()), "kd": (alpha, KDLoss(temperature))})


def at_loss(weight: float) -> WeightedSum:
    """Table 4's AT: CE + weight * L_AT (no KD term, as the AT and RepDistiller defaults)."""
    return WeightedSum({"ce": (1.0, CrossEntropyLoss()), "at": (weight, ATLoss())})


def sp_loss(weight: float) -> WeightedSum:
    """Table 4's SP: CE + weight * L_SP on the student's fc0 feature and the teacher's feature."""
    return WeightedSum({"ce": (1.0, CrossEntropyLoss()), "sp": (weight, SPLoss())})


def distill_loss(params: dict) -> WeightedSum:
    """The distill stage's loss from params.yaml: ``distill.method`` picks the formula,
    ``distill.trust`` whether its distillation terms are scaled by the teacher's accuracy."""
    d = params["distill"]
    method = d["method"]
    if method == "dask":
        loss = dask_loss(params["alpha"], params["beta"], params["gamma"], params["temperature"],
                         d["distance_weight"], d["angle_weight"], d.get("semantic_scale", "none"))
    elif method == "st":
        loss = st_loss(params["alpha"], params["temperature"])
    elif method == "at":
        loss = at_loss(d["at_weight"])
    elif method == "sp":
        loss = sp_loss(d["sp_weight"])
    else:
        raise ValueError(f"distill.method must be one of {', '.join(DISTILL_METHODS)}, got {method!r}")
    loss.trust = d.get("trust", "none")
    if loss.trust not in TRUST:
        raise ValueError(f"distill.trust must be one of {TRUST}, got {loss.trust!r}")
    return loss


def trust_factor(teacher_accuracy: float, num_classes: int) -> float:
    """kappa = (a - 1/K) / (1 - 1/K), clipped to [0, 1]: the teacher's accuracy on the student's
    training samples, rescaled so chance gives 0 (distillation off: the baseline's CE alone)
    and a perfect teacher 1 (the loss as written)."""
    chance = 1.0 / num_classes
    return float(min(1.0, max(0.0, (teacher_accuracy - chance) / (1.0 - chance))))


def distill_inputs(loss: WeightedSum, *, student_logits, student_feature, teacher_logits,
                   teacher_feature, target, student_maps=(), teacher_maps=()) -> dict:
    """The arguments of every term of ``loss``, by term name. RKD, semantic and SP compare the
    student's fc0 output with the teacher's segment-averaged feature; AT the student's layer
    activations with the teacher's attention maps."""
    available = {
        **dask_inputs(student_logits, student_feature, teacher_logits, teacher_feature, target),
        "at": (list(student_maps), list(teacher_maps)),
        "sp": (student_feature, teacher_feature),
    }
    return {name: available[name] for name in loss.terms}
