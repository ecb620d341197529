"""vskd.loop.make_adam: the stages' Adam / AdamW, fused where PyTorch has the kernel."""

import torch

from vskd.loop import make_adam


def _one_step(decoupled: bool, value: float = 4.0) -> float:
    """One step from ``value`` with a zero loss gradient, lr 0.1, weight decay 0.5."""
    p = torch.nn.Parameter(torch.tensor([value]))
    opt = make_adam([p], 0.1, 0.5, decoupled=decoupled)
    p.grad = torch.zeros_like(p)
    opt.step()
    return p.item()


def test_decay_by_hand():
    # AdamW shrinks the weight itself: 4 * (1 - 0.1 * 0.5) = 3.8.
    assert abs(_one_step(True) - 3.8) < 1e-6
    # Adam adds 0.5 * 4 = 2 to the gradient; Adam's first step is lr * g / |g| = 0.1: 3.9.
    assert abs(_one_step(False) - 3.9) < 1e-6


def test_fused_on_cpu_and_groups_kept():
    a, b = torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(2))
    opt = make_adam([{"params": [a], "lr": 1e-3}, {"params": [b], "lr": 1e-4}], 1e-3, 0.0, decoupled=True)
    assert isinstance(opt, torch.optim.AdamW)
    assert [g["lr"] for g in opt.param_groups] == [1e-3, 1e-4]
    assert all(g["fused"] for g in opt.param_groups)


def test_same_trajectory_as_the_single_tensor_loop():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    twin = torch.nn.Sequential(torch.nn.Linear(5, 7), torch.nn.ReLU(), torch.nn.Linear(7, 3))
    twin.load_state_dict(net.state_dict())
    start = [p.detach().clone() for p in net.parameters()]
    fused = make_adam(net.parameters(), 1e-2, 1e-3, decoupled=False)
    loop = torch.optim.Adam(twin.parameters(), lr=1e-2, weight_decay=1e-3, foreach=False)
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    for _ in range(20):
        for model, opt in ((net, fused), (twin, loop)):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    for p, q, p0 in zip(net.parameters(), twin.parameters(), start):
        assert (p - p0).abs().max() > 0.05  # 20 steps of 0.01 moved every tensor
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
