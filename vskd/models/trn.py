"""Multi-scale Temporal Relation Network (TRN) video teacher.

Papers:
* B. Zhou, A. Andonian, A. Oliva, A. Torralba, "Temporal Relational Reasoning
  in Videos", ECCV 2018 -- the multi-scale temporal relation module (Sec. 3.1,
  Eq. 3: T_N(V) = T_2(V) + T_3(V) + ... + T_N(V)).
* L. Wang et al., "Temporal Segment Networks", ECCV 2016 -- segment sampling,
  the "dropout + new fc" head on the ImageNet backbone and partial BN.
* J. Ni, R. Sarbajna, Y. Liu, A. H. H. Ngu, Y. Yan, "Cross-modal Knowledge
  Distillation for Vision-to-Sensor Action Recognition" (VSKD), ICASSP 2022 --
  uses this network on a BN-Inception backbone as the visual teacher; its
  semantic loss compares the student's feature with the segment-averaged
  per-frame teacher feature (:meth:`TRNTeacher.semantic_feature`).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn as nn

from vskd.attention import TEACHER_BLOCKS, attention_map

from .bninception import BNInception, set_partial_bn

__all__ = ["RelationModuleMultiScale", "TRNTeacher"]


class RelationModuleMultiScale(nn.Module):
    """Multi-scale temporal relations over S per-frame features.

    Input (B, S, D) -> class scores (B, num_classes).  For every scale
    k = S, S-1, ..., 2 the candidate k-frame relations are the ordered index
    tuples ``itertools.combinations(range(S), k)`` (C(S, k) of them; one for
    k = S).  Scale k has its own MLP g_k:
    ReLU -> Linear(k*D, bottleneck) -> ReLU -> Linear(bottleneck, num_classes),
    applied to the concatenated features of the relation's frames, and the
    scores of all used relations of all scales are summed (TRN Eq. 3).

    Training: for each scale except the full one, ``max_relations`` relations
    are sampled without replacement (all of them if there are fewer).  The
    sampling uses a ``torch.Generator`` owned by the module and seeded from
    ``seed``, not numpy's global RNG as TRN-pytorch does, so runs are
    reproducible and independent of other code drawing random numbers.
    The relations used by the last forward are kept in ``last_relations``.

    Evaluation: deterministic.  TRN-pytorch samples relations at test time
    too, so its test accuracy changes from run to run.  Here every relation
    of a scale is evaluated and the scale contributes
    ``mean(scores of all its relations) * n_k`` with n_k = min(max_relations,
    C(S, k)) the number training samples.  That is exactly the expectation of
    the training-time sum over uniformly sampled subsets, so the logits keep
    the scale they were trained at (a plain sum over all C(S, k) relations
    would inflate the short scales, e.g. 28 instead of 3 pair relations for
    S = 8).
    """

    def __init__(
        self,
        img_feature_dim: int,
        num_segments: int,
        num_classes: int,
        bottleneck: int = 256,
        max_relations: int = 3,
        seed: int = 0,
    ):
        super().__init__()
        if num_segments < 2:
            raise ValueError("multi-scale relations need num_segments >= 2")
        if max_relations < 1:
            raise ValueError("max_relations must be >= 1")
        self.img_feature_dim = img_feature_dim
        self.num_segments = num_segments
        self.num_classes = num_classes
        self.max_relations = max_relations
        self.scales = list(range(num_segments, 1, -1))  # S, S-1, ..., 2
        self.relations = [list(itertools.combinations(range(num_segments), k)) for k in self.scales]
        # How many relations a training forward uses per scale (the full
        # scale has a single relation, always used).
        self.num_sampled = [min(max_relations, len(r)) for r in self.relations]
        # Index tensors (R_k, k) per scale; buffers so they follow .to(device)
        # but are not saved (they are a pure function of num_segments).
        for i, rel in enumerate(self.relations):
            self.register_buffer(f"_rel_idx_{i}", torch.tensor(rel, dtype=torch.long), persistent=False)
        self.fc_fusion_scales = nn.ModuleList(
            nn.Sequential(
                nn.ReLU(),
                nn.Linear(k * img_feature_dim, bottleneck),
                nn.ReLU(),
                nn.Linear(bottleneck, num_classes),
            )
            for k in self.scales
        )
        self.seed = seed
        self.generator = torch.Generator()
        self.reset_rng(seed)
        self.last_relations: list[list[tuple[int, ...]]] = []

    def reset_rng(self, seed: int | None = None) -> None:
        """Re-seed the relation-sampling generator (default: the constructor seed)."""
        self.seed = self.seed if seed is None else seed
        self.generator.manual_seed(int(self.seed))

    def _scale_scores(self, x: torch.Tensor, scale_id: int, idx: torch.Tensor) -> torch.Tensor:
        """Scores of the relations ``idx`` (R, k) of one scale -> (B, R, C)."""
        b = x.shape[0]
        k = idx.shape[1]
        # x[:, idx] has shape (B, R, k, D); frames stay in temporal order.
        rel = x[:, idx].reshape(b, idx.shape[0], k * self.img_feature_dim)
        return self.fc_fusion_scales[scale_id](rel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 3 or x.shape[1] != self.num_segments or x.shape[2] != self.img_feature_dim:
            raise ValueError(
                f"expected (B, {self.num_segments}, {self.img_feature_dim}) features, got {tuple(x.shape)}"
            )
        out = None
        used = []
        for i in range(len(self.scales)):
            idx = getattr(self, f"_rel_idx_{i}")
            n_all, n_used = idx.shape[0], self.num_sampled[i]
            if self.training:
                if n_used < n_all:
                    pick = torch.randperm(n_all, generator=self.generator)[:n_used]
                    idx = idx[pick.to(idx.device)]
                scores = self._scale_scores(x, i, idx).sum(dim=1)
                used.append([tuple(r) for r in idx.tolist()])
            else:
                # Expectation of the training sum: mean over all relations
                # times the number training draws.
                scores = self._scale_scores(x, i, idx).mean(dim=1) * n_used
                used.append(list(self.relations[i]))
            out = scores if out is None else out + scores
        self.last_relations = used
        return out


class TRNTeacher(nn.Module):
    """TSN-style BN-Inception + multi-scale TRN head (the VSKD teacher).

    Per frame: BN-Inception (1024-d) -> Dropout(dropout) -> ``new_fc``
    Linear(1024, img_feature_dim); as in TSN/TRN, ``new_fc`` takes the place
    of the ImageNet classifier.  The S per-frame features feed
    :class:`RelationModuleMultiScale`.

    Input of :meth:`forward` / :meth:`features`: float RGB 0..255 frames of
    shape (B, S, 3, H, W), S = ``num_segments``; the Caffe-style BGR/mean
    normalisation of the pretrained backbone is applied internally.

    ``partial_bn``: TSN's partial BN (all backbone BNs but the first frozen),
    meant for fine-tuning from ImageNet weights; it is honoured by every
    ``train()`` call.  Toggle later with :meth:`set_partial_bn`.

    ``fc_init_std``: ``new_fc`` is initialised N(0, 0.001), bias 0, as in TSN
    (its choice for fine-tuning a pretrained backbone).  Pass ``None`` for
    PyTorch's default Linear initialisation.  The relation MLPs use PyTorch's
    defaults, as TRN does.  All initialisation draws from the global torch
    RNG, so seed it (``torch.manual_seed``) before construction.
    """

    def __init__(
        self,
        num_classes: int,
        num_segments: int,
        img_feature_dim: int = 256,
        dropout: float = 0.5,
        bottleneck: int = 256,
        max_relations: int = 3,
        partial_bn: bool = False,
        seed: int = 0,
        fc_init_std: float | None = 0.001,
    ):
        super().__init__()
        self.num_classes = num_classes
        self.num_segments = num_segments
        self.img_feature_dim = img_feature_dim
        self.backbone = BNInception(partial_bn=partial_bn)
        self.dropout = nn.Dropout(p=dropout)
        self.new_fc = nn.Linear(BNInception.out_features, img_feature_dim)
        if fc_init_std is not None:
            nn.init.normal_(self.new_fc.weight, 0.0, fc_init_std)
            nn.init.zeros_(self.new_fc.bias)
        self.consensus = RelationModuleMultiScale(
            img_feature_dim, num_segments, num_classes,
            bottleneck=bottleneck, max_relations=max_relations, seed=seed,
        )

    @property
    def partial_bn(self) -> bool:
        return self.backbone.partial_bn

    def set_partial_bn(self, enabled: bool) -> None:
        set_partial_bn(self.backbone, enabled)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """RGB frames (B, S, 3, H, W), 0..255 -> per-frame features (B, S, img_feature_dim)."""
        if x.dim() != 5 or x.shape[1] != self.num_segments or x.shape[2] != 3:
            raise ValueError(f"expected (B, {self.num_segments}, 3, H, W) frames, got {tuple(x.shape)}")
        b, s = x.shape[:2]
        frames = BNInception.preprocess(x.reshape(b * s, *x.shape[2:]))
        f = self.new_fc(self.dropout(self.backbone(frames)))
        return f.view(b, s, self.img_feature_dim)

    def features_and_attention(self, x: torch.Tensor, blocks=TEACHER_BLOCKS) -> tuple[torch.Tensor, dict]:
        """:meth:`features` (the same numbers), plus for each named backbone block its attention
        map (:func:`vskd.attention.attention_map`) computed per frame and averaged over the S
        segments: ``{block: (B, h, w)}`` at the block's native size. The teacher stage stores
        them for attention transfer (``vskd.attention`` explains the pairing with the student)."""
        if x.dim() != 5 or x.shape[1] != self.num_segments or x.shape[2] != 3:
            raise ValueError(f"expected (B, {self.num_segments}, 3, H, W) frames, got {tuple(x.shape)}")
        b, s = x.shape[:2]
        frames = BNInception.preprocess(x.reshape(b * s, *x.shape[2:]))
        fmap, kept = self.backbone.feature_maps(frames, blocks)
        pooled = torch.flatten(self.backbone.global_pool(fmap), 1)  # = self.backbone(frames)
        f = self.new_fc(self.dropout(pooled)).view(b, s, self.img_feature_dim)
        maps = {name: attention_map(kept[name]).view(b, s, *kept[name].shape[-2:]).mean(dim=1)
                for name in blocks}
        return f, maps

    def head(self, per_frame: torch.Tensor) -> torch.Tensor:
        """Per-frame features (B, S, D) -> class logits (B, num_classes)."""
        return self.consensus(per_frame)

    @staticmethod
    def semantic_feature(per_frame: torch.Tensor) -> torch.Tensor:
        """Segment-averaged feature (B, D): the teacher side H^T of VSKD's semantic loss.

        The relation module applies ReLU to the per-frame features before anything reads
        them, so ReLU(new_fc) is the representation the teacher's head uses; it is also the
        space of the student's fc0 + ReLU. Matching the raw new_fc output instead asks a
        non-negative student feature to reach negative targets, and the semantic loss then
        drives fc0 to zero (seen on the synthetic default: 99.8 % of raw features negative).
        """
        return torch.relu(per_frame).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))
