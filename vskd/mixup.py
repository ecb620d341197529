"""Mixup for the GAF student (``student.mixup``; Zhang et al., ICLR 2018).

Each training batch is replaced by ``lam * x + (1 - lam) * x[perm]`` with ``lam ~ Beta(a, a)``
and its labels by the same mix of the two one-hot vectors. With 300-400 training trials the
student otherwise drives its training cross-entropy to about 0.01: it memorises the trials.
A mixed target cannot be memorised, and the classes' decision boundaries are pushed to lie
between trials instead of against them.

``lam`` and ``perm`` come from the batch's own store rows and the seed alone, so a batch
mixes the same way whatever the number of workers, and a resumed run the same as an
uninterrupted one, with no generator state to save.

Distillation mixes what the teacher says about the two trials with the same ``lam``: its
features (the semantic and relational targets; AT's and SP's maps) linearly, and its class
probabilities at the KD temperature, passed on as the logits ``T * log p_mix`` that give
exactly ``p_mix`` after the KD term's softmax at ``T``.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from vskd.losses import float32_loss


def target_entropy(alpha: float) -> float:
    """E[H(lam)] in nats, lam ~ Beta(alpha, alpha): the cross-entropy a perfect model still pays
    on the mix of two different labels (0.228 at alpha 0.2, 0.5 at alpha 1); 0 without mixup.
    E[lam ln lam] = (a / (a + b)) (psi(a + 1) - psi(a + b + 1)) for Beta(a, b), so with a = b
    and both terms of H alike: E[H] = psi(2 alpha + 1) - psi(alpha + 1)."""
    from scipy.special import digamma

    if alpha <= 0:
        return 0.0
    return float(digamma(2 * alpha + 1) - digamma(alpha + 1))


def mixing(rows, alpha: float, seed: int) -> tuple[float, torch.Tensor]:
    """(lam, perm) for a batch of store ``rows``: lam ~ Beta(alpha, alpha), perm a permutation."""
    rng = np.random.default_rng([int(seed), *(int(r) for r in rows)])
    return float(rng.beta(alpha, alpha)), torch.from_numpy(rng.permutation(len(rows)))


def mix(t: torch.Tensor, lam: float, perm: torch.Tensor) -> torch.Tensor:
    return lam * t + (1 - lam) * t[perm.to(t.device)]


def mixed_targets(y: torch.Tensor, num_classes: int, lam: float, perm: torch.Tensor) -> torch.Tensor:
    """The mix of the one-hot labels: probability targets for cross-entropy."""
    return mix(F.one_hot(y, num_classes).float(), lam, perm)


def mixed_teacher_logits(logits: torch.Tensor, temperature: float, lam: float, perm: torch.Tensor) -> torch.Tensor:
    """Logits whose softmax at ``temperature`` is the mix of the two trials' teacher probabilities."""
    p = mix(F.softmax(logits.float() / temperature, dim=1), lam, perm)
    return temperature * torch.log(p.clamp_min(1e-12))


def mixup_step(net, alpha: float, seed: int, num_classes: int):
    """The baseline student's ``step`` (batches ``(x, y, row)``) with mixup; the logged
    training accuracy is on the mixed inputs, read against the larger share's label."""
    def step(batch):
        x, y, rows = batch
        lam, perm = mixing(rows, alpha, seed)
        logits = net(mix(x, lam, perm))
        loss = float32_loss(F.cross_entropy, logits, mixed_targets(y, num_classes, lam, perm))
        return loss, {"ce": loss.detach()}, logits.detach(), y if lam >= 0.5 else y[perm.to(y.device)]
    return step


def mix_distill_batch(batch, alpha: float, seed: int, num_classes: int, temperature: float):
    """A distill batch ``(x, y, teacher logits, teacher feature, *maps, row)`` mixed: returns the
    mixed input, the probability targets, the teacher's mixed logits, feature and maps, and the
    label the logged training accuracy is read against (the larger share's)."""
    x, y, t_logits, t_feature, *t_maps, rows = batch
    lam, perm = mixing(rows, alpha, seed)
    return (mix(x, lam, perm), mixed_targets(y, num_classes, lam, perm),
            mixed_teacher_logits(t_logits, temperature, lam, perm), mix(t_feature, lam, perm),
            [mix(m, lam, perm) for m in t_maps], y if lam >= 0.5 else y[perm.to(y.device)])
