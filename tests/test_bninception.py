"""Tests for the BN-Inception backbone, its checkpoint loader and partial BN."""

import http.server
import threading

import pytest
import torch
import torch.nn as nn

from vskd.models.bninception import (
    BNInception,
    WeightLoadError,
    load_bninception_weights,
    set_partial_bn,
)

torch.set_num_threads(1)

# Backbone without the ImageNet fc: 11,295,240 parameters of the Caffe port
# minus its 1024x1000 + 1000 classifier.
BNINCEPTION_BACKBONE_PARAMS = 10_270_240


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return BNInception().eval()


def test_output_shape_224_and_64(model):
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 1024)
        # the native size ends in a 7x7 map, like the port's 7x7 global pool
        assert model.feature_map(torch.randn(1, 3, 224, 224)).shape == (1, 1024, 7, 7)
        assert model(torch.randn(2, 3, 64, 64)).shape == (2, 1024)
        # 56 gives odd (7x7) maps before block 3c: the ceil-mode reduction
        # pool must still line up with the stride-2 convolutions.
        assert model.feature_map(torch.randn(1, 3, 56, 56)).shape == (1, 1024, 2, 2)


def test_parameter_count_and_names(model):
    assert sum(p.numel() for p in model.parameters()) == BNINCEPTION_BACKBONE_PARAMS
    sd = model.state_dict()
    for key in (
        "conv1_7x7_s2.weight",
        "conv1_7x7_s2.bias",
        "conv1_7x7_s2_bn.running_mean",
        "conv2_3x3_reduce.weight",
        "inception_3a_1x1.weight",
        "inception_3c_double_3x3_2_bn.running_var",
        "inception_4e_3x3.weight",
        "inception_5b_pool_proj_bn.weight",
    ):
        assert key in sd, key
    assert sd["conv1_7x7_s2.weight"].shape == (64, 3, 7, 7)
    assert sd["inception_5a_1x1.weight"].shape == (352, 1056, 1, 1)
    assert sd["inception_5b_pool_proj_bn.weight"].shape == (128,)
    assert not any(k.startswith(("fc.", "last_linear.")) for k in sd)
    bns = model.batchnorms()
    assert len(bns) == 69 and bns[0] is model.conv1_7x7_s2_bn
    assert all(bn.momentum == 0.1 for bn in bns)


def test_preprocess_hand_computed_pixel():
    rgb = torch.zeros(1, 3, 2, 2)
    rgb[0, :, 1, 0] = torch.tensor([10.0, 20.0, 30.0])
    out = BNInception.preprocess(rgb)
    assert torch.equal(out[0, :, 1, 0], torch.tensor([30.0 - 104, 20.0 - 117, 10.0 - 128]))
    assert torch.equal(out[0, :, 0, 0], torch.tensor([-104.0, -117.0, -128.0]))
    # leading dims are free: (B, S, 3, H, W)
    assert BNInception.preprocess(torch.zeros(2, 3, 3, 4, 4)).shape == (2, 3, 3, 4, 4)


# ----------------------------------------------------------------- loading
def _legacy_checkpoint(src: BNInception) -> dict:
    """The TSN-style export: BN tensors as [1, C], an ImageNet fc, no counters."""
    bn_names = {n for n, m in src.named_modules() if isinstance(m, nn.BatchNorm2d)}
    ckpt = {}
    for k, v in src.state_dict().items():
        owner, leaf = k.rsplit(".", 1)
        if leaf == "num_batches_tracked":
            continue
        ckpt[k] = v.clone().reshape(1, -1) if owner in bn_names else v.clone()
    ckpt["fc.weight"] = torch.randn(1000, 1024)
    ckpt["fc.bias"] = torch.randn(1000)
    return ckpt


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(1)
    src = BNInception()
    # make the BN statistics non-trivial so that equality means something
    for bn in src.batchnorms():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.normal_()
    path = tmp_path_factory.mktemp("ckpt") / "bn_inception-test.pth"
    torch.save(_legacy_checkpoint(src), path)
    return src, path


def _assert_same_weights(a: BNInception, b: BNInception):
    sa, sb = a.state_dict(), b.state_dict()
    for k, v in sa.items():
        if k.endswith("num_batches_tracked"):
            continue
        assert torch.equal(v, sb[k]), k


def test_load_legacy_checkpoint(checkpoint):
    src, path = checkpoint
    dst = BNInception()
    report = load_bninception_weights(dst, str(path))
    _assert_same_weights(src, dst)
    assert report["squeezed"] == 69 * 4  # weight, bias, running_mean, running_var
    assert report["dropped"] == ["fc.bias", "fc.weight"]
    assert report["loaded"] == 69 * 4 + 69 * 2  # BN tensors + conv weight/bias


def test_load_wrapped_and_prefixed(checkpoint, tmp_path):
    src, path = checkpoint
    sd = torch.load(path, weights_only=True)
    wrapped = {"state_dict": {"module." + k: v for k, v in sd.items()}}
    p = tmp_path / "wrapped.pth"
    torch.save(wrapped, p)
    dst = BNInception()
    load_bninception_weights(dst, str(p))
    _assert_same_weights(src, dst)


def test_load_errors_name_key_and_file(checkpoint, tmp_path):
    _, path = checkpoint
    sd = torch.load(path, weights_only=True)

    bad_shape = dict(sd)
    bad_shape["inception_4a_1x1.weight"] = torch.zeros(224, 576, 3, 3)
    p1 = tmp_path / "bad_shape.pth"
    torch.save(bad_shape, p1)
    with pytest.raises(WeightLoadError) as err:
        load_bninception_weights(BNInception(), str(p1))
    assert "inception_4a_1x1.weight" in str(err.value) and "bad_shape.pth" in str(err.value)

    missing = dict(sd)
    del missing["inception_5b_pool_proj_bn.running_var"]
    p2 = tmp_path / "missing.pth"
    torch.save(missing, p2)
    with pytest.raises(WeightLoadError) as err:
        load_bninception_weights(BNInception(), str(p2))
    assert "inception_5b_pool_proj_bn.running_var" in str(err.value) and "missing.pth" in str(err.value)

    extra = dict(sd)
    extra["aux_classifier.weight"] = torch.zeros(3)
    p3 = tmp_path / "extra.pth"
    torch.save(extra, p3)
    with pytest.raises(WeightLoadError, match="aux_classifier.weight"):
        load_bninception_weights(BNInception(), str(p3))


def test_load_from_url_uses_cache(checkpoint, tmp_path):
    src, path = checkpoint
    requests = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(path.parent), **kw)

        def do_GET(self):
            requests.append(self.path)
            super().do_GET()

        def log_message(self, *a):  # keep pytest output clean
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/{path.name}"
        cache = tmp_path / "cache"
        dst = BNInception()
        r1 = load_bninception_weights(dst, url, cache_dir=cache)
        _assert_same_weights(src, dst)
        assert (cache / path.name).is_file() and r1["path"] == str(cache / path.name)
        assert not list(cache.glob("*.part"))  # temp file renamed away
        dst2 = BNInception()
        r2 = load_bninception_weights(dst2, url, cache_dir=cache)
        _assert_same_weights(src, dst2)
        assert r2["squeezed"] == r1["squeezed"]
        assert requests == [f"/{path.name}"]  # second call served from cache
    finally:
        server.shutdown()
        server.server_close()


# -------------------------------------------------------------- partial BN
def test_partial_bn_survives_train_and_freezes_stats():
    torch.manual_seed(0)
    m = BNInception()
    set_partial_bn(m, True)
    m.eval()
    m.train()  # must not undo partial BN
    bns = m.batchnorms()
    assert bns[0].training and bns[0].weight.requires_grad
    assert all(not bn.training for bn in bns[1:])
    assert all(not bn.weight.requires_grad and not bn.bias.requires_grad for bn in bns[1:])

    # a parent's train() recurses into the backbone and also keeps it
    parent = nn.Sequential(m)
    parent.train()
    assert bns[0].training and not any(bn.training for bn in bns[1:])

    frozen_before = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in bns[1:]]
    first_before = bns[0].running_mean.clone()
    m(BNInception.preprocess(torch.rand(2, 3, 64, 64) * 255)).sum().backward()
    for bn, (rm, rv) in zip(bns[1:], frozen_before):
        assert torch.equal(bn.running_mean, rm) and torch.equal(bn.running_var, rv)
        assert bn.weight.grad is None
    assert not torch.equal(bns[0].running_mean, first_before)  # the first BN adapts
    assert m.conv1_7x7_s2.weight.grad is not None

    set_partial_bn(m, False)
    m.train()
    assert all(bn.training and bn.weight.requires_grad for bn in bns)


def test_set_partial_bn_requires_backbone():
    with pytest.raises(TypeError):
        set_partial_bn(nn.Linear(2, 2), True)
