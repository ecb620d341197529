"""DataLoaders whose order is a function of (seed, epoch) alone, and a model run over one.

The training order is a ``DistributedSampler`` seeded with ``seed`` and set to each epoch,
also for one process, so epochs k+1.. of a resumed run see exactly the batches of an
uninterrupted run, and N DDP processes see the same global batches as one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from vskd.progress import progress
from vskd.runtime import Runtime


def epoch_seed(seed: int, epoch: int) -> int:
    return (int(seed) * 1_000_003 + int(epoch)) % (2**63)


def make_loader(dataset, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0,
                drop_last: bool = False, runtime: Runtime | None = None) -> torch.utils.data.DataLoader:
    """A DataLoader whose order depends on (seed, epoch) only.

    ``shuffle``: a ``DistributedSampler`` (also for one process) seeded with ``seed``; call
    :func:`set_loader_epoch` every epoch. Under DDP ``batch_size`` must already be the
    per-process batch and each process gets its shard. ``shuffle=False``: the whole dataset
    in order, in every process. The loader's own generator (the workers' base seed) is
    reseeded per epoch too, so nothing here draws from the global torch RNG.
    """
    rt = runtime or Runtime()
    sampler = None
    if shuffle:
        sampler = torch.utils.data.DistributedSampler(
            dataset, num_replicas=rt.world_size, rank=rt.rank, shuffle=True, seed=int(seed),
            drop_last=rt.distributed)  # one process: every sample; N: no padding duplicates
    generator = torch.Generator().manual_seed(epoch_seed(seed, 0))
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, shuffle=False, generator=generator,
        num_workers=num_workers, drop_last=drop_last,
        persistent_workers=False, pin_memory=rt.device.type == "cuda",
    )


def set_loader_epoch(loader, seed: int, epoch: int) -> None:
    if isinstance(loader.sampler, torch.utils.data.DistributedSampler):
        loader.sampler.set_epoch(epoch)
    if loader.generator is not None:
        loader.generator.manual_seed(epoch_seed(seed, epoch))
    if hasattr(loader.dataset, "set_epoch"):
        loader.dataset.set_epoch(epoch)


def to_device(batch, device: torch.device | None):
    if device is None or device.type == "cpu":
        return batch
    return tuple(b.to(device, non_blocking=True) if isinstance(b, torch.Tensor) else b for b in batch)


@torch.no_grad()
def predict(forward: Callable[[tuple], tuple[torch.Tensor, ...]], loader, desc: str = "predict",
            device: torch.device | None = None):
    """Run ``forward(batch) -> (logits, *extras)`` over a loader; concatenated numpy arrays.

    The batch is moved to ``device`` for ``forward``; row numbers (the batch's last item)
    are read from the CPU batch."""
    outputs, rows = None, []
    for batch in progress(loader, desc=desc):
        result = forward(to_device(batch, device))
        if outputs is None:
            outputs = [[] for _ in result]
        for store, tensor in zip(outputs, result):
            store.append(tensor.detach().cpu().numpy())
        rows.append(np.asarray(batch[-1]))
    return [np.concatenate(o) for o in outputs], np.concatenate(rows)


def validation_metrics(model: nn.Module, loader, labels: np.ndarray, device: torch.device | None = None) -> dict:
    """Accuracy and cross-entropy of ``model`` on a loader of (x, label, ..., row) batches."""
    if len(loader.dataset) == 0:
        return {}
    (logits,), rows = predict(lambda b: (model(b[0]),), loader, desc="validate", device=device)
    y = torch.from_numpy(labels[rows])
    logits = torch.from_numpy(logits)
    return {"accuracy": float((logits.argmax(1) == y).float().mean()),
            "loss": float(nn.functional.cross_entropy(logits, y))}

