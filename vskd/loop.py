"""The training loop shared by the teacher, student and distill stages.

One loop, three ``step`` functions. Per epoch it logs every loss term, training accuracy,
validation accuracy and the learning rate with dvclive; it keeps the last epoch's weights
or the best validation epoch's (``selection``), never anything chosen on the test split.
A stage's builder puts what the loop trains into a :class:`Training`; :meth:`Training.fit`
runs it. How the loop runs (device, DDP, resume, amp) is the ``runtime`` block of
params.yaml: :mod:`vskd.runtime`, :mod:`vskd.resume`, :mod:`vskd.amp`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from typing import Any, Callable

import torch
import torch.nn as nn
import torch.nn.functional as F

from vskd.amp import Amp
from vskd.choices import SCHEDULES, SELECTIONS
from vskd.live import NoLive
from vskd.loaders import set_loader_epoch, to_device
from vskd.losses import float32_loss
from vskd.progress import progress
from vskd.resume import ResumeFile, cpu_state, rng_state, set_rng_state
from vskd.runtime import Runtime

Step = Callable[[tuple], tuple[torch.Tensor, dict, torch.Tensor, torch.Tensor]]


def train_batch(model: nn.Module, step: Step, batch, optimizer, max_grad_norm, amp: Amp | None = None):
    """One training step on ``batch`` (already on the device): ``step``'s forward and loss,
    backward, gradient clipping, optimiser step; returns what ``step`` returned.
    ``amp`` None (runtime.amp false): the plain float32 step, nothing cast."""
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
    return loss, terms, logits, target


def train_epoch(model: nn.Module, step: Step, train_loader, optimizer, max_grad_norm, rt: Runtime,
                amp: Amp | None, desc: str) -> tuple[dict, int, int]:
    """One pass over ``train_loader``: (per-term sums weighted by batch size, samples, correct)."""
    sums: dict[str, float] = {}
    correct = seen = 0
    for batch in progress(train_loader, desc=desc, unit="batch"):
        batch = rt.inputs(to_device(batch, rt.device))
        loss, terms, logits, target = train_batch(model, step, batch, optimizer, max_grad_norm, amp)
        n = len(target)
        seen += n
        correct += int((logits.argmax(1) == target).sum())
        sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * n
        for name, value in terms.items():
            sums[name] = sums.get(name, 0.0) + float(value) * n
    return sums, seen, correct


@dataclass
class FitResult:
    state_dict: dict
    epoch: int                       # 1-based epoch whose weights were kept
    selection: str
    history: list[dict] = field(default_factory=list)
    resumed_from: int = 0            # epochs restored from a resume file (0: a fresh run)


def fit(
    model: nn.Module,
    step: Step,
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
    ``resume``: continue from its file if it matches; write it after an epoch once
    ``runtime.resume_every_s`` have passed since the last write, and after the last epoch.
    ``generators``: torch generators the model draws from (saved and restored with the RNGs).
    """
    if selection not in SELECTIONS:
        raise ValueError(f"selection must be 'last' or 'best_val', got {selection!r}")
    rt = runtime or Runtime()
    amp = Amp(rt.device) if rt.amp else None
    live = live if live is not None else NoLive()
    best, history, start = (-1.0, 0, None), [], 1  # best: (val accuracy, epoch, CPU state)
    state = resume.load() if resume is not None else None
    if state is not None:
        history, best, start = _restore(state, model, optimizer, scheduler, amp, generators)
        # DVC deletes a stage's declared logs before running it again, so the curves of the
        # finished epochs are written anew from the checkpoint: the same files as one run.
        for record in history:
            _log(live, record)
        if rt.is_main:
            print(f"{desc}: resumed from {resume.path} after epoch {state['epoch']} of {epochs}",
                  file=sys.stderr)
    epoch_bar = progress(range(start, epochs + 1), desc=desc, unit="epoch")
    for epoch in epoch_bar:
        record = _epoch(model, step, evaluate, train_loader, optimizer, scheduler, max_grad_norm, rt, amp,
                        seed, epoch)
        history.append(record)
        _log(live, record)
        epoch_bar.set_postfix(loss=f"{record['train/loss']:.3f}", acc=f"{record['train/accuracy']:.2f}")
        if selection == "best_val":
            best = _better(best, record, epoch, model)
        if resume is not None and (epoch == epochs or resume.due()):  # the last: outputs may still fail
            resume.save(_resume_state(epoch, model, optimizer, scheduler, history, best, generators, live, amp))
    resumed = start - 1
    if selection == "best_val":
        return FitResult(best[2], best[1], selection, history, resumed)
    return FitResult(cpu_state(model), epochs, selection, history, resumed)


def _restore(state: dict, model, optimizer, scheduler, amp: Amp | None, generators) -> tuple[list, tuple, int]:
    """Load a resume file's training state into the objects; (history, best, first epoch to run)."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    history = list(state["history"])
    best = (state["best_accuracy"], state["best_epoch"], state["best_state"])
    set_rng_state(state["rng"], generators)
    if amp is not None and amp.scaler is not None and state.get("scaler"):
        amp.scaler.load_state_dict(state["scaler"])
    return history, best, state["epoch"] + 1


def _epoch(model, step, evaluate, train_loader, optimizer, scheduler, max_grad_norm, rt: Runtime,
           amp: Amp | None, seed: int, epoch: int) -> dict:
    """Train one epoch, step the schedule, validate: the epoch's record (every process's sums)."""
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
    return record


def _log(live, record: dict) -> None:
    for name, value in record.items():
        live.log_metric(name, value)
    live.next_step()


def _better(best: tuple, record: dict, epoch: int, model: nn.Module) -> tuple:
    """``selection: best_val``: this epoch's (accuracy, epoch, weights) if it beats ``best``."""
    if "val/accuracy" not in record:
        raise ValueError("selection 'best_val' needs a validation split (val_fraction > 0)")
    if record["val/accuracy"] > best[0]:
        return (record["val/accuracy"], epoch, cpu_state(model))
    return best


def _resume_state(epoch, model, optimizer, scheduler, history, best, generators, live, amp) -> dict:
    """What :class:`ResumeFile` keeps after ``epoch``: everything a resumed run restores."""
    return {"epoch": epoch, "model": cpu_state(model), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "history": history, "best_accuracy": best[0], "best_epoch": best[1],
            "best_state": best[2], "rng": rng_state(generators),
            "live_step": getattr(live, "step", epoch),
            **({"scaler": amp.scaler.state_dict()} if amp and amp.scaler else {})}


@dataclass
class Training:
    """Everything :func:`fit` trains, as a stage's builder made it; :meth:`fit` runs it."""

    model: nn.Module
    step: Step
    evaluate: Callable[[], dict]
    train_loader: Any
    optimizer: torch.optim.Optimizer
    epochs: int
    selection: str = "last"
    scheduler: Any = None
    max_grad_norm: float | None = None
    desc: str = "train"
    seed: int = 0
    runtime: Runtime | None = None
    resume: ResumeFile | None = None
    generators: tuple = ()

    @property
    def device(self) -> torch.device:
        return (self.runtime or Runtime()).device

    def fit(self, live, **changes) -> FitResult:
        """:func:`fit` on these objects, logging to ``live`` (None: nowhere); ``changes``
        replace fields for this call (a benchmark's single epoch: ``epochs=1, resume=None``)."""
        args = {f.name: getattr(self, f.name) for f in fields(self)}
        return fit(live=live, **{**args, **changes})


def make_adam(params, lr: float, weight_decay: float, decoupled: bool) -> torch.optim.Optimizer:
    """Adam (L2 decay) or AdamW (``decoupled``), with PyTorch's fused kernel where it has one.

    Why fused: on CPU PyTorch defaults to the single-tensor loop, a few small ops per parameter
    tensor. On the ResNet18 student a step alone takes 19 ms that way and 6.4 ms fused
    (``python -m benchmarks.optimiser_step``); inside a 2-core epoch, about 30 and 10 ms of a
    100 ms step (docs/benchmarks.md). The update is the same equation, summed in another
    order, so results differ from the loop's only in rounding."""
    params = list(params)
    tensors = [p for group in params for p in (group["params"] if isinstance(group, dict) else [group])]
    fused = all(p.device.type in ("cpu", "cuda") and p.is_floating_point() for p in tensors)
    opt = torch.optim.AdamW if decoupled else torch.optim.Adam
    return opt(params, lr=lr, weight_decay=weight_decay, fused=fused or None)


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


def cross_entropy_step(net: nn.Module) -> Step:
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
