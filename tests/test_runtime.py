"""How a training stage runs (vskd/runtime.py): the device, the global batch under DDP, and
channels-last memory order."""

import copy

import pytest
import torch

from vskd.params import ParamsError
from vskd.runtime import Runtime, resolve_device


def test_global_batch_must_divide_by_the_processes():
    with pytest.raises(ParamsError, match="'student.batch_size' = 5 is the global batch and must divide"):
        Runtime(world_size=2).local_batch(5, "student.batch_size")
    assert Runtime(world_size=2).local_batch(6, "student.batch_size") == 3


def test_cuda_requested_without_cuda_names_the_key(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ParamsError, match="'runtime.device' is cuda but torch sees no CUDA device"):
        resolve_device({"device": "cuda"})
    assert resolve_device({"device": "auto"}) == torch.device("cpu")


def test_channels_last_reorders_memory_not_values():
    from vskd.runtime import start_runtime

    rt = start_runtime({"device": "cpu", "channels_last": True})
    clips = torch.arange(2 * 3 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 3, 4, 5)  # (B, S, C, H, W)
    images = torch.rand(2, 3, 4, 5)
    labels = torch.tensor([1, 0])
    x, y = rt.inputs((clips, labels))
    assert torch.equal(x, clips) and y is labels
    assert x.stride() == (180, 60, 1, 15, 3)        # C innermost: one pixel's 3 values side by side
    assert rt.inputs((images,))[0].is_contiguous(memory_format=torch.channels_last)
    assert Runtime().inputs((clips, labels))[0] is clips  # off: untouched
    conv = rt.wrap(torch.nn.Conv2d(3, 4, 3))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_a_channels_last_step_equals_the_plain_one_within_rounding():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8), torch.nn.ReLU(),
                                torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(8, 2))
    twin = copy.deepcopy(model)
    x, y = torch.rand(4, 3, 12, 12), torch.tensor([0, 1, 1, 0])
    losses = []
    for net, rt in ((model, Runtime()), (twin, Runtime(channels_last=True))):
        net = rt.wrap(net)
        opt = torch.optim.SGD(net.parameters(), lr=0.1)
        batch = rt.inputs((x, y))
        loss = torch.nn.functional.cross_entropy(net(batch[0]), batch[1])
        loss.backward()
        opt.step()
        losses.append((loss.item(), net[0].weight.detach().contiguous()))
    assert losses[0][0] == pytest.approx(losses[1][0], rel=1e-5)
    torch.testing.assert_close(losses[0][1], losses[1][1], rtol=1e-4, atol=1e-5)


def test_runtime_channels_last_is_validated():
    from tests.conftest import REPO
    from vskd.params import load_params, validate

    params = load_params(REPO / "params.yaml")
    assert params["runtime"]["channels_last"] is False
    bad = copy.deepcopy(params)
    bad["runtime"]["channels_last"] = "on"
    with pytest.raises(ParamsError, match="'runtime.channels_last' must be true .* or false, got 'on'"):
        validate(bad)
