"""How a training stage runs: the ``runtime`` block of params.yaml (:func:`start_runtime`).

* **device**: ``auto`` (CUDA when available), ``cpu`` or ``cuda``; the model and every batch
  move there, checkpoints are always written with CPU tensors.
* **DDP**: a process started by ``torchrun`` (``WORLD_SIZE`` > 1 in its environment) joins a
  process group (gloo on CPU, nccl on CUDA), trains a ``DistributedDataParallel`` model on its
  shard of every global batch (``batch_size`` is the global batch), with BatchNorm statistics
  synchronised across processes (:class:`SyncBatchNorm2d`, CPU and CUDA), so N processes
  compute what one process computes, to float rounding. Rank 0 alone logs and writes files.

``resume`` (:mod:`vskd.resume`) and ``amp`` (:mod:`vskd.amp`) are read here too, and acted on
by the training loop (:mod:`vskd.loop`).
"""

from __future__ import annotations

import datetime
import os
import random
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn

from vskd.choices import BACKENDS, DEVICES
from vskd.params import ParamsError


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # CPU kernels are deterministic for a fixed thread count. On GPU: no cuDNN autotuning,
    # deterministic cuDNN convolutions; what still varies is listed in the README
    # ("Determinism"): atomics in some backward kernels, TF32 matmuls.
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


@dataclass
class Runtime:
    """Where and how a training stage runs (one per process)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    resume: bool = True
    resume_every_s: float = 60.0    # runtime.resume_every_s: the resume file's least interval
    backend: str | None = None      # set when this process joined a process group
    amp: bool = False               # runtime.amp: autocast in training steps (:class:`vskd.amp.Amp`)
    channels_last: bool = False     # runtime.channels_last: NHWC weights and inputs (:meth:`inputs`)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        if self.distributed:
            if self.backend == "nccl":
                dist.barrier(device_ids=[self.device.index or 0])
            else:
                dist.barrier()

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` on the device; under DDP its BatchNorms synchronised and the whole
        wrapped in ``DistributedDataParallel``. Call the returned module in training steps."""
        module.to(self.device)
        if self.channels_last:   # before DDP, whose gradient buckets view the parameters
            module.to(memory_format=torch.channels_last)
        if not self.distributed:
            return module
        convert_sync_batchnorm(module)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def inputs(self, batch: tuple) -> tuple:
        """A training batch with its input (the first item: GAF images (B, C, H, W) or clips
        (B, S, C, H, W)) in channels-last memory order under ``runtime.channels_last``: the
        values are the same, each image's C values sit side by side, as NHWC kernels
        (oneDNN on CPU, cuDNN's tensor cores) read them without a transpose."""
        if not self.channels_last or not isinstance(batch[0], torch.Tensor) or batch[0].ndim < 4:
            return batch
        x = batch[0].movedim(-3, -1).contiguous().movedim(-1, -3)
        return (x, *batch[1:])

    def all_sum(self, values: list[float]) -> list[float]:
        """Elementwise sum over the processes (identity for one process)."""
        if not self.distributed:
            return list(values)
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        dist.all_reduce(t)
        return t.tolist()

    def local_batch(self, batch_size: int, key: str) -> int:
        if batch_size % self.world_size:
            raise ParamsError(f"params.yaml: '{key}' = {batch_size} is the global batch and must divide by "
                                f"the {self.world_size} processes of torchrun; change one of them")
        return batch_size // self.world_size


def resolve_device(cfg: dict | None) -> torch.device:
    """``runtime.device``: auto (CUDA when available), cpu, cuda."""
    choice = (cfg or {}).get("device", "auto")
    if choice not in DEVICES:
        raise ParamsError(f"params.yaml: 'runtime.device' must be one of {', '.join(DEVICES)}, got {choice!r}")
    if choice == "cuda" and not torch.cuda.is_available():
        raise ParamsError("params.yaml: 'runtime.device' is cuda but torch sees no CUDA device "
                            f"(torch {torch.__version__}); set it to auto or cpu")
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def start_runtime(cfg: dict | None = None) -> Runtime:
    """The runtime of this process; joins the process group when started by torchrun."""
    cfg = cfg or {}
    device = resolve_device(cfg)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank, local_rank = int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))
    rt = Runtime(device=device, rank=rank, world_size=world, local_rank=local_rank,
                 resume=bool(cfg.get("resume", True)), resume_every_s=float(cfg.get("resume_every_s", 60.0)),
                 amp=bool(cfg.get("amp", False)), channels_last=bool(cfg.get("channels_last", False)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        # cuBLAS needs this for deterministic results; set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if world > 1 and not dist.is_initialized():
        rt.backend = _join_process_group(cfg, device)
    elif dist.is_initialized():
        rt.backend = dist.get_backend()
    return rt


def _join_process_group(cfg: dict, device: torch.device) -> str:
    """``runtime.distributed.backend`` (auto: nccl on CUDA, gloo on CPU), joined; its name."""
    backend = ((cfg.get("distributed") or {}).get("backend", "auto"))
    if backend not in BACKENDS:
        raise ParamsError(f"params.yaml: 'runtime.distributed.backend' must be one of {', '.join(BACKENDS)}, "
                            f"got {backend!r}")
    if backend == "auto":
        backend = "nccl" if device.type == "cuda" else "gloo"
    if backend == "nccl" and device.type != "cuda":
        raise ParamsError("params.yaml: 'runtime.distributed.backend' is nccl, which needs CUDA devices; "
                            "use gloo (or auto) on CPU")
    dist.init_process_group(backend, timeout=datetime.timedelta(hours=2))
    return backend


def stop_runtime(rt: Runtime) -> None:
    """Leave the process group (no barrier: after an error the others may never arrive)."""
    if rt.backend is not None and dist.is_initialized():
        dist.destroy_process_group()


@contextmanager
def stage_runtime(cfg: dict | None):
    """A training stage's runtime (:func:`start_runtime`) for the ``with`` block. When the
    block ends normally every process waits at a barrier until rank 0 has written the
    stage's outputs; the process group is left whatever happens."""
    rt = start_runtime(cfg)
    try:
        yield rt
        rt.barrier()
    finally:
        stop_runtime(rt)


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose backward is also the sum over processes (as SyncBatchNorm)."""

    @staticmethod
    def forward(ctx, x):
        y = x.clone()
        dist.all_reduce(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        grad = grad.clone()
        dist.all_reduce(grad)
        return grad


class SyncBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose training statistics are those of the global batch over all DDP
    processes, on CPU (gloo) as on CUDA; otherwise plain BatchNorm2d.

    ``torch.nn.SyncBatchNorm`` refuses CPU tensors, hence this: two all-reduces per layer
    (sum, then centred sum of squares; the two-pass variance), with gradients flowing
    through them. A subclass of BatchNorm2d with the same parameters and buffers, so
    ``state_dict`` keys and partial BN (``isinstance`` checks) are unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and dist.is_available() and dist.is_initialized()
                and dist.get_world_size() > 1):
            return super().forward(x)
        self._check_input_dim(x)
        dims = (0, 2, 3)
        count = torch.full((1,), x.numel() // x.shape[1], dtype=x.dtype, device=x.device)
        total = _AllReduceSum.apply(torch.cat([x.sum(dims), count]))
        n = total[-1]
        mean = total[:-1] / n
        centred = x - mean.view(1, -1, 1, 1)
        var = _AllReduceSum.apply((centred * centred).sum(dims)) / n
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                            else self.momentum)
                unbiased = var.detach() * (n / (n - 1)).detach()
                self.running_mean.mul_(1 - momentum).add_(mean.detach(), alpha=momentum)
                self.running_var.mul_(1 - momentum).add_(unbiased, alpha=momentum)
        y = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Turn every BatchNorm2d of ``module`` into :class:`SyncBatchNorm2d`, in place (same
    parameter objects, so an optimiser built before still holds them)."""
    for m in module.modules():
        if type(m) is nn.BatchNorm2d:
            m.__class__ = SyncBatchNorm2d
    return module

