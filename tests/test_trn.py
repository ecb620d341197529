"""Tests for the multi-scale TRN relation module and the TRN teacher."""

import itertools

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from vskd.models.bninception import BNInception
from vskd.models.trn import RelationModuleMultiScale, TRNTeacher

torch.set_num_threads(1)


def _mlp(module: RelationModuleMultiScale, scale_id: int, feats: torch.Tensor, rel) -> torch.Tensor:
    """Hand-written g_k for one relation: ReLU -> W1 -> ReLU -> W2."""
    seq = module.fc_fusion_scales[scale_id]
    v = torch.cat([feats[:, t] for t in rel], dim=1)  # concat frames in order
    h = F.relu(F.linear(F.relu(v), seq[1].weight, seq[1].bias))
    return F.linear(h, seq[3].weight, seq[3].bias)


def test_relation_structure():
    s, d, c = 5, 7, 4
    m = RelationModuleMultiScale(d, s, c)
    assert m.scales == [5, 4, 3, 2]
    assert len(m.fc_fusion_scales) == s - 1
    for k, seq in zip(m.scales, m.fc_fusion_scales):
        assert seq[1].in_features == k * d and seq[1].out_features == 256
        assert seq[3].in_features == 256 and seq[3].out_features == c
        assert isinstance(seq[0], nn.ReLU) and isinstance(seq[2], nn.ReLU)
    for k, rel in zip(m.scales, m.relations):
        assert rel == list(itertools.combinations(range(s), k))
    assert len(m.relations[0]) == 1
    assert m.num_sampled == [1, 3, 3, 3]  # C(5,4)=5, C(5,3)=10, C(5,2)=10 -> capped at 3


@pytest.mark.parametrize("s", [3, 4])
def test_eval_is_expectation_of_training_sum(s):
    torch.manual_seed(0)
    d, c, b = 6, 5, 2
    m = RelationModuleMultiScale(d, s, c, bottleneck=16).eval()
    x = torch.randn(b, s, d)
    with torch.no_grad():
        out1, out2 = m(x), m(x)
        expected = torch.zeros(b, c)
        for i, k in enumerate(m.scales):
            rels = list(itertools.combinations(range(s), k))
            mean = sum(_mlp(m, i, x, r) for r in rels) / len(rels)
            expected += mean * min(3, len(rels))
    assert torch.equal(out1, out2)
    torch.testing.assert_close(out1, expected, rtol=1e-5, atol=1e-6)

    # Training: the sum over the sampled relations, which are recorded.
    m.train()
    with torch.no_grad():
        out = m(x)
        by_hand = torch.zeros(b, c)
        for i, rels in enumerate(m.last_relations):
            assert len(rels) == m.num_sampled[i] and len(set(rels)) == len(rels)
            assert set(rels) <= set(m.relations[i])
            by_hand += sum(_mlp(m, i, x, r) for r in rels)
    torch.testing.assert_close(out, by_hand, rtol=1e-5, atol=1e-6)
    if s == 3:  # every scale has <= 3 relations: training == evaluation
        torch.testing.assert_close(out, out1, rtol=1e-5, atol=1e-6)


def test_training_sampling_seeded():
    torch.manual_seed(0)
    a = RelationModuleMultiScale(8, 6, 3, seed=11).train()
    b = RelationModuleMultiScale(8, 6, 3, seed=11).train()
    b.load_state_dict(a.state_dict())
    c = RelationModuleMultiScale(8, 6, 3, seed=12).train()
    c.load_state_dict(a.state_dict())
    x = torch.randn(2, 6, 8)
    with torch.no_grad():
        ra = [a(x) for _ in range(3)]
        rb = [b(x) for _ in range(3)]
        rc = [c(x) for _ in range(3)]
    assert all(torch.equal(u, v) for u, v in zip(ra, rb))
    assert any(not torch.equal(u, v) for u, v in zip(ra, rc))
    # the global RNG plays no part in the relation sampling
    a.reset_rng()
    torch.manual_seed(123)
    with torch.no_grad():
        assert torch.equal(a(x), ra[0])


# ------------------------------------------------------------ TRN teacher
B, S, H = 2, 3, 64


@pytest.fixture(scope="module")
def frames():
    torch.manual_seed(5)
    return torch.rand(B, S, 3, H, H) * 255


def _teacher(seed=0, **kw):
    torch.manual_seed(0)
    return TRNTeacher(num_classes=7, num_segments=S, seed=seed, **kw)


def test_teacher_shapes_eval_and_semantic_feature(frames):
    t = _teacher().eval()
    assert isinstance(t.backbone, BNInception)
    assert t.new_fc.in_features == 1024 and t.new_fc.out_features == 256
    assert abs(t.new_fc.weight.std().item() - 0.001) < 1e-4  # TSN init
    with torch.no_grad():
        feats = t.features(frames)
        logits = t(frames)
        assert feats.shape == (B, S, 256)
        assert logits.shape == (B, 7)
        assert torch.equal(logits, t.head(feats))
        assert torch.equal(t(frames), logits)  # deterministic evaluation
        # features apply the BGR/mean preprocessing themselves
        ref = t.new_fc(t.backbone(BNInception.preprocess(frames.flatten(0, 1)))).view(B, S, 256)
        torch.testing.assert_close(feats, ref)
        sem = t.semantic_feature(feats)
        assert sem.shape == (B, 256)
        torch.testing.assert_close(sem, feats.clamp(min=0).mean(1))
        assert (sem >= 0).all()  # the space of the student's fc0 + ReLU


def test_teacher_training_reproducible_and_grads(frames):
    # S=3 uses every relation, so use 4 segments to exercise sampling.
    x = torch.cat([frames, frames[:, :1]], dim=1)
    outs = []
    for seed in (0, 0, 1):
        torch.manual_seed(0)
        t = TRNTeacher(num_classes=7, num_segments=4, seed=seed, dropout=0.0).train()
        outs.append(t(x))
    assert torch.equal(outs[0], outs[1])
    assert not torch.equal(outs[0], outs[2])


def test_teacher_gradients_flow_to_backbone(frames):
    t = _teacher(dropout=0.0).train()
    t(frames).sum().backward()
    g = t.backbone.conv1_7x7_s2.weight.grad
    assert g is not None and g.abs().sum() > 0
    assert t.backbone.inception_5b_pool_proj.weight.grad.abs().sum() > 0
    assert t.new_fc.weight.grad.abs().sum() > 0
    for seq in t.consensus.fc_fusion_scales:
        assert seq[3].weight.grad.abs().sum() > 0


def test_teacher_partial_bn(frames):
    t = _teacher(partial_bn=True)
    t.eval()
    t.train()
    bns = t.backbone.batchnorms()
    assert bns[0].training and all(not bn.training for bn in bns[1:])
    assert all(not bn.weight.requires_grad for bn in bns[1:])
    stats = [bn.running_mean.clone() for bn in bns[1:]]
    t(frames).sum().backward()
    assert all(torch.equal(bn.running_mean, r) for bn, r in zip(bns[1:], stats))
    t.set_partial_bn(False)
    assert not t.partial_bn and all(bn.training for bn in bns)


def test_teacher_loads_backbone_checkpoint(tmp_path):
    from vskd.models.bninception import load_bninception_weights

    torch.manual_seed(3)
    src = BNInception()
    path = tmp_path / "bn.pth"
    torch.save({"model": src.state_dict()}, path)
    t = _teacher()
    report = load_bninception_weights(t, str(path))
    assert report["squeezed"] == 0 and report["dropped"] == []
    assert torch.equal(t.backbone.inception_4d_3x3.weight, src.inception_4d_3x3.weight)
