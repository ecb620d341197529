"""Student and distill stages: the same ResNet18 GAF student, trained two ways.

* baseline (student stage): cross-entropy only;
* VSKD (distill stage): DASK against the stored teacher outputs, paired by sample id.

Both use the same optimiser, epochs, batches and seed, so the gain is the loss's alone.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from vskd.gaf import GAFDataset
from vskd.h5store import get_meta, open_store, read_index
from vskd.index import id_listing, make_split
from vskd.losses import WeightedSum, dask_inputs
from vskd.models.student import GAFStudent
from vskd.teacher_outputs import PairedDataset, TeacherOutputs
from vskd.training import (FitResult, ResumeFile, cross_entropy_step, fit, make_loader, open_live,
                           run_summary, save_checkpoint,
                           seed_everything, start_runtime, stop_runtime, validation_metrics)


class _FeaturesAndLogits(nn.Module):
    """The student as one forward returning (H^S, logits): distillation needs both, and a
    DistributedDataParallel model must be called through its forward."""

    def __init__(self, student: GAFStudent):
        super().__init__()
        self.student = student

    def forward(self, x):
        h = self.student.features(x)
        return h, self.student.head(h)


def _loss_config(loss: WeightedSum) -> dict:
    return {name: {"weight": loss.weights[name],
                   **{k: v for k, v in vars(module).items() if isinstance(v, (int, float, str))
                      and not k.startswith("_") and k != "training"}}
            for name, module in loss.terms.items()}


def train_student(gaf_path, model_path, live_dir, *, cfg: dict, feature_dim: int, split_cfg: dict,
                  seed: int, loss: WeightedSum | None = None, teacher_path=None,
                  runtime: dict | None = None) -> dict:
    """Train the GAF student; with ``loss`` and ``teacher_path`` it is distilled.

    ``runtime``: params.yaml's ``runtime`` block (device, resume; DDP under torchrun)."""
    distill = loss is not None
    if distill and teacher_path is None:
        raise ValueError("distillation needs the teacher outputs file")
    rt = start_runtime(runtime)
    try:
        summary = _train(rt, gaf_path, model_path, live_dir, cfg=cfg, feature_dim=feature_dim,
                         split_cfg=split_cfg, seed=seed, loss=loss, teacher_path=teacher_path)
        rt.barrier()  # the other processes wait until rank 0 has written the model
    finally:
        stop_runtime(rt)
    return summary


def _train(rt, gaf_path, model_path, live_dir, *, cfg, feature_dim, split_cfg, seed, loss,
           teacher_path) -> dict:
    distill = loss is not None
    stage = "distill" if distill else "student"
    seed_everything(seed)
    with open_store(gaf_path, "gaf") as h5:
        index = read_index(h5)
        class_names = get_meta(h5, "class_names")
    split = make_split(index["subjects"], index["trials"], index["labels"], split_cfg, seed)
    model = GAFStudent(len(class_names), feature_dim)

    train_rows, extra = split["train"], {}
    if distill:
        teacher = TeacherOutputs(teacher_path)
        if teacher.features.shape[1] != feature_dim:
            raise ValueError(f"{teacher_path}: teacher features have {teacher.features.shape[1]} "
                             f"dimensions but teacher.feature_dim is {feature_dim}; rerun the teacher stage")
        # Samples the teacher stage skipped (runtime.on_bad_sample: skip) have no teacher
        # output: they are left out here and counted. Any other missing id is an error.
        no_output = np.array([index["ids"][r] not in teacher.row_of and index["ids"][r] in teacher.skipped
                              for r in train_rows], dtype=bool)
        if no_output.any():
            extra["no_teacher_output"] = id_listing(index["ids"][train_rows[no_output]])
            train_rows = train_rows[~no_output]
    train_set = GAFDataset(gaf_path, train_rows)
    if distill:
        train_set = PairedDataset(train_set, index["ids"], teacher)
    workers = int(cfg.get("num_workers", 0))
    # drop_last: a batch of one has no pairs for the relational losses, nor BatchNorm statistics.
    train_loader = make_loader(train_set, rt.local_batch(cfg["batch_size"], "student.batch_size"),
                               shuffle=True, seed=seed, num_workers=workers, drop_last=True, runtime=rt)
    val_loader = make_loader(GAFDataset(gaf_path, split["val"]), cfg["batch_size"], shuffle=False,
                             seed=seed, num_workers=workers, runtime=rt)
    net = rt.wrap(_FeaturesAndLogits(model) if distill else model)

    ce_step = cross_entropy_step(net)

    def step(batch):
        if distill:
            x, y, t_logits, t_feature, _ = batch
            h, logits = net(x)
            total, terms = loss(dask_inputs(logits, h, t_logits, t_feature, y))
            return total, terms, logits.detach(), y
        return ce_step(batch)

    def evaluate():
        return validation_metrics(model, val_loader, index["labels"], device=rt.device)

    optimizer = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    resume = None
    if rt.resume:
        inputs = [gaf_path] + ([teacher_path] if distill else [])
        resume = ResumeFile(model_path, stage, {
            "cfg": cfg, "feature_dim": feature_dim, "split": split_cfg, "seed": seed,
            "loss": _loss_config(loss) if distill else None, "inputs": ResumeFile.file_identity(*inputs),
        }, rt)
    with open_live(live_dir, rt) as live:
        result: FitResult = fit(model, step, evaluate, train_loader, optimizer, cfg["epochs"], live,
                                selection=cfg["selection"], desc=stage, seed=seed, runtime=rt,
                                resume=resume)
    if rt.is_main:
        save_checkpoint(model_path, kind="gaf_student",
                        config={"num_classes": len(class_names), "feature_dim": feature_dim},
                        state_dict=result.state_dict, class_names=class_names, epoch=result.epoch,
                        selection=result.selection, loss_weights=loss.weights if distill else {"ce": 1.0})
        if resume is not None:
            resume.finish()
    return run_summary(result, rt, train=len(train_rows), val=len(split["val"]),
                       test=len(split["test"]), **extra)
