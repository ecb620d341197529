"""The training loop shared by the teacher, student and distill stages.

One loop, three ``step`` functions. Per epoch it logs every loss term, training accuracy,
validation accuracy and the learning rate with dvclive; it keeps the last epoch's weights
or the best validation epoch's (``selection``), never anything chosen on the test split.
"""

from __future__ import annotations

import copy
import os
import random
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
from tqdm import tqdm

from vskd.h5store import atomic_path


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    # CPU kernels are deterministic for a fixed thread count; on GPU cuDNN autotuning and
    # atomics in some backward kernels are not, so results there can differ slightly.
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True


def progress(iterable, **kwargs):
    """tqdm that stays quiet when stderr is not a terminal and VSKD_PROGRESS is unset
    (logs of CI and `dvc repro` piped to a file), and shows bars otherwise."""
    disable = not (sys.stderr.isatty() or os.environ.get("VSKD_PROGRESS") == "1")
    return tqdm(iterable, disable=disable, dynamic_ncols=True, leave=False, **kwargs)


def make_loader(dataset, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0,
                drop_last: bool = False) -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(seed)
    return torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=generator,
        num_workers=num_workers, drop_last=drop_last,
        persistent_workers=False, pin_memory=torch.cuda.is_available(),
    )


@torch.no_grad()
def predict(forward: Callable[[tuple], tuple[torch.Tensor, ...]], loader, desc: str = "predict"):
    """Run ``forward(batch) -> (logits, *extras)`` over a loader; concatenated numpy arrays."""
    outputs, rows = None, []
    for batch in progress(loader, desc=desc):
        result = forward(batch)
        if outputs is None:
            outputs = [[] for _ in result]
        for store, tensor in zip(outputs, result):
            store.append(tensor.detach().cpu().numpy())
        rows.append(np.asarray(batch[-1]))
    return [np.concatenate(o) for o in outputs], np.concatenate(rows)


def validation_metrics(model: nn.Module, loader, labels: np.ndarray) -> dict:
    """Accuracy and cross-entropy of ``model`` on a loader of (x, label, ..., row) batches."""
    if len(loader.dataset) == 0:
        return {}
    (logits,), rows = predict(lambda b: (model(b[0]),), loader, desc="validate")
    y = torch.from_numpy(labels[rows])
    logits = torch.from_numpy(logits)
    return {"accuracy": float((logits.argmax(1) == y).float().mean()),
            "loss": float(nn.functional.cross_entropy(logits, y))}


@dataclass
class FitResult:
    state_dict: dict
    epoch: int                       # 1-based epoch whose weights were kept
    selection: str
    history: list[dict] = field(default_factory=list)


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
) -> FitResult:
    """Train for ``epochs``; ``step(batch)`` returns (loss, term values, logits, targets).

    ``evaluate()`` returns validation metrics (may be empty when there is no validation set).
    """
    if selection not in ("last", "best_val"):
        raise ValueError(f"selection must be 'last' or 'best_val', got {selection!r}")
    best = (-1.0, 0, None)
    history = []
    epoch_bar = progress(range(1, epochs + 1), desc=desc, unit="epoch")
    for epoch in epoch_bar:
        if hasattr(train_loader.dataset, "set_epoch"):
            train_loader.dataset.set_epoch(epoch)
        model.train()
        sums: dict[str, float] = {}
        correct = seen = 0
        for batch in progress(train_loader, desc=f"epoch {epoch}", unit="batch"):
            loss, terms, logits, target = step(batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm:
                nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            n = len(target)
            seen += n
            correct += int((logits.argmax(1) == target).sum())
            sums["loss"] = sums.get("loss", 0.0) + float(loss.detach()) * n
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + float(value) * n
        if scheduler is not None:
            scheduler.step()
        record = {f"train/{k}": v / seen for k, v in sums.items()}
        record["train/accuracy"] = correct / seen
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
                best = (record["val/accuracy"], epoch, copy.deepcopy(model.state_dict()))
    if selection == "best_val":
        return FitResult(best[2], best[1], selection, history)
    return FitResult(copy.deepcopy(model.state_dict()), epochs, selection, history)


def save_checkpoint(path: str | Path, **payload) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path, stage: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found. Run `dvc repro {stage}` to build it.")
    return torch.load(path, map_location="cpu", weights_only=True)


def open_live(directory: str | Path):
    """dvclive without its dvc.yaml edits and experiment saving: the stage declares its
    files in dvc.yaml itself (see REFERENCE: dvclive's defaults rewrite dvc.yaml)."""
    from dvclive import Live

    return Live(dir=str(directory), dvcyaml=None, save_dvc_exp=False, report=None)
