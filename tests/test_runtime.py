"""How a training stage runs (vskd/runtime.py): the device and the global batch under DDP."""

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
