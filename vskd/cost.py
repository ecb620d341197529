"""What a model costs to run: parameters, multiply-accumulates, CPU latency, file size.

MACs are counted by forward hooks while the model runs on a real input, so they count the
work the forward actually does (the TRN teacher's evaluation forward scores every relation
of every scale, for example). Counted layers:

    Conv1d/Conv2d  output elements x (in_channels / groups) x kernel area
    Linear         output elements x in_features
    any module with a ``macs(inputs, output) -> int`` method (the GAF layer's matrix products)

Bias additions, BatchNorm, activations and pooling are not counted (the usual convention
of thop/fvcore-style counters; they are a small fraction of a CNN's work).
"""

from __future__ import annotations

import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import torch
import torch.nn as nn


def _layer_macs(module: nn.Module, inputs, output) -> int:
    if isinstance(module, (nn.Conv1d, nn.Conv2d)):
        kernel = 1
        for k in module.kernel_size:
            kernel *= k
        return output.numel() * (module.in_channels // module.groups) * kernel
    if isinstance(module, nn.Linear):
        return output.numel() * module.in_features
    return 0


def count_macs(model: nn.Module, *inputs: torch.Tensor) -> int:
    """Multiply-accumulates of one ``model(*inputs)`` in eval mode (all of the batch)."""
    total = 0

    def hook(module, args, output):
        nonlocal total
        if callable(getattr(module, "macs", None)):
            total += int(module.macs(args, output))
        else:
            total += _layer_macs(module, args, output)

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)) or callable(getattr(m, "macs", None))]
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@contextmanager
def torch_threads(n: int):
    """Run torch on ``n`` intra-op threads inside the block, then restore the count."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def median_latency(fn: Callable[[], object], runs: int, warmup: int = 2) -> float:
    """Median wall time of ``fn()`` in seconds over ``runs`` calls, after ``warmup`` calls."""
    if runs < 1:
        raise ValueError(f"runs must be >= 1, got {runs}")
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def torch_latency(model: nn.Module, inputs: tuple[torch.Tensor, ...], runs: int, threads: int = 1) -> float:
    """Median seconds of one eval-mode forward on ``threads`` CPU threads."""
    model.eval()
    with torch_threads(threads), torch.inference_mode():
        return median_latency(lambda: model(*inputs), runs)


def onnx_session(path: str | Path, threads: int = 1):
    """An onnxruntime CPU session limited to ``threads`` threads (intra- and inter-op)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def onnx_latency(path: str | Path, feed: dict, runs: int, threads: int = 1) -> float:
    """Median seconds of one onnxruntime run of ``feed`` on ``threads`` CPU threads."""
    session = onnx_session(path, threads)
    return median_latency(lambda: session.run(None, feed), runs)


def file_size(path: str | Path) -> int:
    return os.path.getsize(path)
