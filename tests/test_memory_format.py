"""benchmarks/memory_format.py: the step it times is a real optimiser step in each variant."""

import torch

from benchmarks.memory_format import VARIANTS, make_step


def test_every_variant_steps_the_model_and_leaves_the_original_alone():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                                torch.nn.Linear(4, 2))
    before = [p.detach().clone() for p in model.parameters()]
    x, y = torch.rand(2, 3, 8, 8), torch.tensor([0, 1])
    assert len(set(VARIANTS)) == 4
    for amp, channels_last in VARIANTS:
        step = make_step(model, x, y, amp, channels_last)
        step()
        moved = [not torch.equal(a, b) for a, b in zip(before, step.net.parameters())]
        assert all(moved), (amp, channels_last)   # AdamW moves every weight on its first step
        assert step.net[0].weight.is_contiguous(memory_format=torch.channels_last) == channels_last
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
