"""Student and distill stages: the same ResNet18 GAF student, trained two ways.

* baseline (student stage): cross-entropy only;
* VSKD (distill stage): DASK against the stored teacher outputs, paired by sample id.

Both use the same optimiser, epochs, batches and seed, so the gain is the loss's alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from vskd.gaf import GAFDataset
from vskd.h5store import get_meta, open_store, read_index
from vskd.index import make_split
from vskd.losses import WeightedSum, dask_inputs
from vskd.models.student import GAFStudent
from vskd.teacher_outputs import PairedDataset, TeacherOutputs
from vskd.training import (fit, make_loader, open_live, save_checkpoint, seed_everything,
                           validation_metrics)


def train_student(gaf_path, model_path, live_dir, *, cfg: dict, feature_dim: int, split_cfg: dict,
                  seed: int, loss: WeightedSum | None = None, teacher_path=None) -> dict:
    """Train the GAF student; with ``loss`` and ``teacher_path`` it is distilled."""
    distill = loss is not None
    if distill and teacher_path is None:
        raise ValueError("distillation needs the teacher outputs file")
    seed_everything(seed)
    with open_store(gaf_path, "gaf") as h5:
        index = read_index(h5)
        class_names = get_meta(h5, "class_names")
    split = make_split(index["subjects"], index["trials"], index["labels"], split_cfg, seed)
    model = GAFStudent(len(class_names), feature_dim)

    train_set = GAFDataset(gaf_path, split["train"])
    if distill:
        teacher = TeacherOutputs(teacher_path)
        if teacher.features.shape[1] != feature_dim:
            raise ValueError(f"{teacher_path}: teacher features have {teacher.features.shape[1]} "
                             f"dimensions but teacher.feature_dim is {feature_dim}; rerun the teacher stage")
        train_set = PairedDataset(train_set, index["ids"], teacher)
    workers = int(cfg.get("num_workers", 0))
    # drop_last: a batch of one has no pairs for the relational losses, nor BatchNorm statistics.
    train_loader = make_loader(train_set, cfg["batch_size"], shuffle=True, seed=seed,
                               num_workers=workers, drop_last=True)
    val_loader = make_loader(GAFDataset(gaf_path, split["val"]), cfg["batch_size"], shuffle=False,
                             seed=seed, num_workers=workers)

    def step(batch):
        if distill:
            x, y, t_logits, t_feature, _ = batch
            h = model.features(x)
            logits = model.head(h)
            total, terms = loss(dask_inputs(logits, h, t_logits, t_feature, y))
            return total, terms, logits.detach(), y
        x, y, _ = batch
        logits = model(x)
        ce = F.cross_entropy(logits, y)
        return ce, {"ce": ce.detach()}, logits.detach(), y

    def evaluate():
        return validation_metrics(model, val_loader, index["labels"])

    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    with open_live(live_dir) as live:
        result = fit(model, step, evaluate, train_loader, optimizer, cfg["epochs"], live,
                     selection=cfg["selection"], desc="distill" if distill else "student")
    save_checkpoint(model_path, kind="gaf_student",
                    config={"num_classes": len(class_names), "feature_dim": feature_dim},
                    state_dict=result.state_dict, class_names=class_names, epoch=result.epoch,
                    selection=result.selection, loss_weights=loss.weights if distill else {"ce": 1.0})
    return {"epoch": result.epoch, "selection": result.selection,
            "train": len(split["train"]), "val": len(split["val"]), "test": len(split["test"])}
