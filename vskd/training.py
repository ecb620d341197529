"""The training loop shared by the teacher, student and distill stages, and how it runs.

One loop, three ``step`` functions. Per epoch it logs every loss term, training accuracy,
validation accuracy and the learning rate with dvclive; it keeps the last epoch's weights
or the best validation epoch's (``selection``), never anything chosen on the test split.

How it runs is the ``runtime`` block of params.yaml (:func:`start_runtime`):

* **device**: ``auto`` (CUDA when available), ``cpu`` or ``cuda``; the model and every batch
  move there, checkpoints are always written with CPU tensors.
* **DDP**: a process started by ``torchrun`` (``WORLD_SIZE`` > 1 in its environment) joins a
  process group (gloo on CPU, nccl on CUDA), trains a ``DistributedDataParallel`` model on its
  shard of every global batch (``batch_size`` is the global batch), with BatchNorm statistics
  synchronised across processes (:class:`SyncBatchNorm2d`, CPU and CUDA), so N processes
  compute what one process computes, to float rounding. Rank 0 alone logs and writes files.
* **resume**: after every epoch the whole training state (model, optimiser, scheduler, the
  RNG states of torch, numpy, Python and of extra generators such as TRN's relation sampler,
  the per-epoch history that dvclive logs) goes to ``models/<ds>/.<stage>.resume.pt``; a
  stage started again after an interruption continues from it when it was written by the
  same configuration, and deletes it once the stage's outputs are written.
* **amp**: false (the default) trains in float32; true runs every training step's forward
  and loss under autocast (:class:`Amp`: bfloat16 on CPU and on GPUs that have it, else
  float16 with a GradScaler), the loss terms in float32; evaluation stays float32.

The data order is a function of (seed, epoch) alone (``DistributedSampler`` seeded with
``seed + epoch``, also for one process), so epochs k+1.. of a resumed run see exactly the
batches of an uninterrupted run, and N processes see the same global batches as one.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from vskd.h5store import atomic_path
from vskd.losses import float32_loss
from vskd.params import ParamsError
from vskd.progress import progress

DEVICES = ("auto", "cpu", "cuda")
BACKENDS = ("auto", "gloo", "nccl")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # CPU kernels are deterministic for a fixed thread count. On GPU: no cuDNN autotuning,
    # deterministic cuDNN convolutions; what still varies is listed in the README
    # ("Determinism"): atomics in some backward kernels, TF32 matmuls.
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


# --- runtime: device, process group ------------------------------------------------------

@dataclass
class Runtime:
    """Where and how a training stage runs (one per process)."""

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    resume: bool = True
    backend: str | None = None      # set when this process joined a process group
    amp: bool = False               # runtime.amp: autocast in training steps (:class:`Amp`)

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
        if not self.distributed:
            return module
        convert_sync_batchnorm(module)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

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
                 resume=bool(cfg.get("resume", True)), amp=bool(cfg.get("amp", False)))
    if device.type == "cuda":
        torch.cuda.set_device(device)
        # cuBLAS needs this for deterministic results; set before its first use.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    if world > 1 and not dist.is_initialized():
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
        rt.backend = backend
    elif dist.is_initialized():
        rt.backend = dist.get_backend()
    return rt


def stop_runtime(rt: Runtime) -> None:
    """Leave the process group (no barrier: after an error the others may never arrive)."""
    if rt.backend is not None and dist.is_initialized():
        dist.destroy_process_group()


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


# --- data ---------------------------------------------------------------------------------

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


# --- resume -------------------------------------------------------------------------------

def cpu_state(module: nn.Module) -> dict:
    """A copy of ``module.state_dict()`` on the CPU (what checkpoints and selection keep)."""
    return {k: v.detach().to("cpu", copy=True) for k, v in module.state_dict().items()}


def _rng_state(generators) -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"key": np_state[0], "pos": int(np_state[2]), "has_gauss": int(np_state[3]),
                  "cached_gaussian": float(np_state[4]),
                  "state": torch.from_numpy(np_state[1].astype(np.int64))},
        "python": random.getstate(),
        "generators": [g.get_state() for g in generators],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, generators) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n["key"], n["state"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    for g, s in zip(generators, state["generators"]):
        g.set_state(s)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class ResumeFile:
    """``models/<ds>/.<stage>.resume.pt``: the training state after the last finished epoch.

    ``config`` is everything that determines the run (the stage's params, the seed, the
    identity of its input files, the number of processes, the device type); a file written
    by another configuration is ignored and replaced, never continued.
    """

    def __init__(self, model_path: str | Path, stage: str, config: dict, runtime: Runtime | None = None):
        model_path = Path(model_path)
        self.path = model_path.with_name(f".{stage}.resume.pt")
        self.stage = stage
        self.runtime = runtime or Runtime()
        extra = {"amp": str(Amp(self.runtime.device).dtype)} if self.runtime.amp else {}
        blob = json.dumps({**config, "stage": stage, "world_size": self.runtime.world_size,
                           "device": self.runtime.device.type, **extra}, sort_keys=True, default=str)
        self.fingerprint = hashlib.sha256(blob.encode()).hexdigest()

    @staticmethod
    def file_identity(*paths) -> list:
        """What identifies an input file cheaply: name, size, modification time."""
        out = []
        for p in paths:
            st = Path(p).stat()
            out.append([str(p), st.st_size, st.st_mtime_ns])
        return out

    def load(self) -> dict | None:
        if not self.path.is_file():
            return None
        try:
            state = torch.load(self.path, map_location="cpu", weights_only=True)
        except Exception as exc:  # a file cut short cannot be: it is renamed into place whole
            print(f"{self.stage}: ignoring unreadable {self.path} ({exc}); starting over", file=sys.stderr)
            return None
        if state.get("fingerprint") != self.fingerprint:
            if self.runtime.is_main:
                print(f"{self.stage}: {self.path} was written by another configuration "
                      "(params, inputs or processes changed); starting over", file=sys.stderr)
            return None
        return state

    def save(self, state: dict) -> None:
        if self.runtime.is_main:
            with atomic_path(self.path) as tmp:
                torch.save({**state, "fingerprint": self.fingerprint}, tmp)

    def finish(self) -> None:
        """The stage's outputs are written: the resume file has served."""
        if self.runtime.is_main and self.path.exists():
            self.path.unlink()


# --- mixed precision (runtime.amp) -------------------------------------------------------

class Amp:
    """``runtime.amp``: the forward and loss of every training step under autocast.

    CPU: bfloat16, CPU autocast's own default (fast only where the CPU has bfloat16
    instructions, e.g. AVX-512 BF16 or AMX; elsewhere it can be slower than float32, and it
    still halves the activations kept for backward). CUDA: bfloat16 where the GPU has it
    (Ampere and later): it keeps float32's exponent range, so gradients need no loss scaling
    (no GradScaler, no skipped steps) and the small distillation terms (alpha = 0.01 KD,
    RKD) cannot underflow, at the speed of float16 on those GPUs; older GPUs get float16
    with a GradScaler. Parameters, optimiser state and evaluation stay float32, and the loss
    terms are computed in float32 (:func:`vskd.losses.float32_loss`).
    """

    def __init__(self, device: torch.device):
        self.device_type = device.type
        bf16 = device.type != "cuda" or torch.cuda.is_bf16_supported()
        self.dtype = torch.bfloat16 if bf16 else torch.float16
        self.scaler = None if bf16 else torch.amp.GradScaler("cuda")

    def autocast(self):
        return torch.autocast(self.device_type, dtype=self.dtype)

    def backward_and_step(self, loss, model: nn.Module, optimizer, max_grad_norm) -> None:
        """Backward, gradient clipping on the true (unscaled) gradients, optimiser step."""
        if self.scaler is None:
            loss.backward()
            if max_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            return
        self.scaler.scale(loss).backward()
        if max_grad_norm:
            self.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        self.scaler.step(optimizer)  # skipped when the scaled gradients overflowed
        self.scaler.update()


def train_epoch(model: nn.Module, step, train_loader, optimizer, max_grad_norm, rt: Runtime,
                amp: Amp | None, desc: str) -> tuple[dict, int, int]:
    """One pass over ``train_loader``: (per-term sums weighted by batch size, samples, correct).
    ``amp`` None (runtime.amp false): the plain float32 step, nothing cast."""
    sums: dict[str, float] = {}
    correct = seen = 0
    for batch in progress(train_loader, desc=desc, unit="batch"):
        batch = to_device(batch, rt.device)
        if amp is None:
            loss, terms, logits, target = step(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
        else:
            with amp.autocast():
                loss, terms, logits, target = step(batch)
            optimizer.zero_grad(set_to_none=True)
            amp.backward_and_step(loss, model, optimizer, max_grad_norm)
        n = len(target)
        seen += n
        correct += int((logits.argmax(1) == target).sum())
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * n
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value) * n
    return sums, seen, correct


# --- the loop -----------------------------------------------------------------------------

@dataclass
class FitResult:
    state_dict: dict
    epoch: int                       # 1-based epoch whose weights were kept
    selection: str
    history: list[dict] = field(default_factory=list)
    resumed_from: int = 0            # epochs restored from a resume file (0: a fresh run)


class _NoLive:
    """dvclive stand-in for ranks other than 0."""

    step = 0

    def log_metric(self, *args, **kwargs):
        pass

    def next_step(self):
        pass


def fit(
    model: nn.Module,
    step: Callable[[tuple], tuple[torch.Tensor, dict, torch.Tensor, torch.Tensor]],
    evaluate: Callable[[], dict],
    train_loader,
    optimizer: torch.optim.Optimizer,
    epochs: int,
    live,
    selection: str = "last",
    scheduler=None,
    max_grad_norm: float | None = None,
    desc: str = "train",
    *,
    seed: int = 0,
    runtime: Runtime | None = None,
    resume: ResumeFile | None = None,
    generators: tuple = (),
) -> FitResult:
    """Train for ``epochs``; ``step(batch)`` returns (loss, term values, logits, targets).

    ``model`` is the bare module (its state is what is kept); ``step`` calls the module the
    runtime wrapped (DDP under torchrun). Batches reach ``step`` on the runtime's device.
    ``evaluate()`` returns validation metrics (may be empty when there is no validation set).
    ``resume``: continue from its file if it matches, and write it after every epoch.
    ``generators``: torch generators the model draws from (saved and restored with the RNGs).
    """
    if selection not in ("last", "best_val"):
        raise ValueError(f"selection must be 'last' or 'best_val', got {selection!r}")
    rt = runtime or Runtime()
    amp = Amp(rt.device) if rt.amp else None
    live = live if live is not None else _NoLive()
    best = (-1.0, 0, None)
    history: list[dict] = []
    start = 1
    state = resume.load() if resume is not None else None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        history = list(state["history"])
        best = (state["best_accuracy"], state["best_epoch"], state["best_state"])
        _set_rng_state(state["rng"], generators)
        if amp is not None and amp.scaler is not None and state.get("scaler"):
            amp.scaler.load_state_dict(state["scaler"])
        start = state["epoch"] + 1
        # DVC deletes a stage's declared logs before running it again, so the curves of the
        # finished epochs are written anew from the checkpoint: the same files as one run.
        for record in history:
            for name, value in record.items():
                live.log_metric(name, value)
            live.next_step()
        if rt.is_main:
            print(f"{desc}: resumed from {resume.path} after epoch {state['epoch']} of {epochs}",
                  file=sys.stderr)
    epoch_bar = progress(range(start, epochs + 1), desc=desc, unit="epoch")
    for epoch in epoch_bar:
        set_loader_epoch(train_loader, seed, epoch)
        model.train()
        sums, seen, correct = train_epoch(model, step, train_loader, optimizer, max_grad_norm, rt, amp,
                                          desc=f"epoch {epoch}")
        if scheduler is not None:
            scheduler.step()
        names = list(sums)  # "loss" first, then the step's terms: the same in every process
        totals = rt.all_sum([float(seen), float(correct)] + [sums[k] for k in names])
        seen_all, correct_all = totals[0], totals[1]
        record = {f"train/{k}": v / seen_all for k, v in zip(names, totals[2:])}
        record["train/accuracy"] = correct_all / seen_all
        record["lr"] = optimizer.param_groups[0]["lr"]
        model.eval()
        record.update({f"val/{k}": v for k, v in evaluate().items()})
        history.append(record)
        for name, value in record.items():
            live.log_metric(name, value)
        live.next_step()
        epoch_bar.set_postfix(loss=f"{record['train/loss']:.3f}", acc=f"{record['train/accuracy']:.2f}")
        if selection == "best_val":
            if "val/accuracy" not in record:
                raise ValueError("selection 'best_val' needs a validation split (val_fraction > 0)")
            if record["val/accuracy"] > best[0]:
                best = (record["val/accuracy"], epoch, cpu_state(model))
        if resume is not None:
            resume.save({"epoch": epoch, "model": cpu_state(model), "optimizer": optimizer.state_dict(),
                         "scheduler": scheduler.state_dict() if scheduler is not None else None,
                         "history": history, "best_accuracy": best[0], "best_epoch": best[1],
                         "best_state": best[2], "rng": _rng_state(generators),
                         "live_step": getattr(live, "step", epoch),
                         **({"scaler": amp.scaler.state_dict()} if amp and amp.scaler else {})})
    resumed = start - 1
    if selection == "best_val":
        return FitResult(best[2], best[1], selection, history, resumed)
    return FitResult(cpu_state(model), epochs, selection, history, resumed)


SCHEDULES = ("constant", "step", "cosine")


def make_scheduler(optimizer: torch.optim.Optimizer, cfg: dict):
    """The learning-rate schedule of a ``teacher`` or ``student`` block, stepped per epoch:
    ``schedule: step`` multiplies by 0.1 at each of ``lr_steps``; ``cosine`` anneals to 0
    over ``epochs`` (no restarts); ``constant`` keeps ``lr``. Default: step if ``lr_steps``
    is given, else constant."""
    name = cfg.get("schedule", "step" if cfg.get("lr_steps") else "constant")
    if name not in SCHEDULES:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {name!r}")
    if name == "step":
        return torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg.get("lr_steps") or [], gamma=0.1)
    if name == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=int(cfg["epochs"]))
    return None


def cross_entropy_step(net: nn.Module) -> Callable[[tuple], tuple]:
    """The ``step`` of :func:`fit` for a plain classifier: batches ``(x, y, row)``, CE only."""
    def step(batch):
        x, y, _ = batch
        logits = net(x)
        loss = float32_loss(F.cross_entropy, logits, y)
        return loss, {"ce": loss.detach()}, logits.detach(), y
    return step


def run_summary(result: FitResult, rt: Runtime, **counts) -> dict:
    """A training stage's summary line: epoch and selection, the stage's counts, then how it
    ran (resumed, processes, device) where that differs from a plain CPU run."""
    summary = {"epoch": result.epoch, "selection": result.selection, **counts}
    if result.resumed_from:
        summary["resumed_after_epoch"] = result.resumed_from
    if rt.distributed:
        summary["processes"] = rt.world_size
    if rt.device.type != "cpu":
        summary["device"] = str(rt.device)
    return summary


def save_checkpoint(path: str | Path, **payload) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def seed_checkpoints(model_path: str | Path, seeds: list[int]) -> dict[int, Path]:
    """Where the model of each training seed (params.yaml ``seeds``) lives.

    The first seed's is ``model_path`` itself (``models/<ds>/student.pt``, read by export and
    predict); every other seed's is ``models/<ds>/<stem>_seeds/<stem>_s<seed>.pt``, a folder
    that is one DVC output of the stage (empty with one seed)."""
    model_path = Path(model_path)
    folder = seeds_folder(model_path)
    return {seed: model_path if i == 0 else folder / f"{model_path.stem}_s{seed}.pt"
            for i, seed in enumerate(seeds)}


def seeds_folder(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}_seeds")


def load_checkpoint(path: str | Path, stage: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found. Run `dvc repro {stage}` to build it.")
    return torch.load(path, map_location="cpu", weights_only=True)


def open_live(directory: str | Path, runtime: Runtime | None = None):
    """dvclive without its dvc.yaml edits and experiment saving: the stage declares its
    files in dvc.yaml itself (see REFERENCE: dvclive's defaults rewrite dvc.yaml).
    Under DDP only rank 0 logs; the others get a stand-in that drops everything."""
    from contextlib import nullcontext

    from dvclive import Live

    if runtime is not None and not runtime.is_main:
        return nullcontext(_NoLive())
    return Live(dir=str(directory), dvcyaml=None, save_dvc_exp=False, report=None)
