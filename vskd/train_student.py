"""Student and distill stages: the same GAF student (``student.arch``: ResNet18, or VGG16),
trained two ways.

* baseline (student stage): cross-entropy only;
* VSKD (distill stage): the loss of ``distill.method`` (DASK; or ST, AT, SP for Table 4)
  against the stored teacher outputs, paired by sample id.

Both use the same optimiser, epochs, batches and seed, so the gain is the loss's alone.
"""

from __future__ import annotations

import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from vskd.augment import AugmentedGAFDataset, is_identity
from vskd.checkpoints import save_checkpoint, seed_checkpoints, seeds_folder
from vskd.gaf import GAFDataset
from vskd.h5store import get_meta, open_store, read_index
from vskd.index import id_listing, make_split
from vskd.live import open_live
from vskd.loaders import make_loader, validation_metrics
from vskd.loop import FitResult, Training, cross_entropy_step, make_adam, make_scheduler, run_summary
from vskd.losses import SemanticLoss, WeightedSum, distill_inputs, trust_factor
from vskd.mixup import mix_distill_batch, mixup_step, target_entropy
from vskd.models.student import GAFStudent, load_pretrained
from vskd.resume import ResumeFile
from vskd.runtime import seed_everything, stage_runtime
from vskd.teacher_outputs import PairedDataset, TeacherOutputs


class _FeaturesAndLogits(nn.Module):
    """The student as one forward returning (H^S, logits), and with ``maps`` the activations
    attention transfer reads after them: distillation needs them all, and a
    DistributedDataParallel model must be called through its forward."""

    def __init__(self, student: GAFStudent, maps: bool = False):
        super().__init__()
        self.student, self.maps = student, maps

    def forward(self, x):
        if self.maps:
            h, maps = self.student.features_and_maps(x)
            return (h, self.student.head(h), *maps)
        h = self.student.features(x)
        return h, self.student.head(h)


def build_student(num_classes: int, feature_dim: int, cfg: dict, verbose: bool = True) -> GAFStudent:
    """The GAF student of a ``student`` block: ``arch``, ``input_norm`` (none: the GAF as it
    is; imagenet: ImageNet's normalisation inside the model), and with ``pretrained`` (a
    torchvision weights name or a local state_dict) an ImageNet backbone under a fresh head."""
    model = GAFStudent(num_classes, feature_dim, arch=cfg.get("arch", "resnet18"),
                       input_norm=cfg.get("input_norm", "none"), stem_pool=cfg.get("stem_pool", True))
    if cfg.get("pretrained"):
        report = load_pretrained(model, cfg["pretrained"])
        if verbose:
            print(f"student: ImageNet weights: {report} (input_norm: {model.input_norm})", file=sys.stderr)
    return model


def _loss_config(loss: WeightedSum) -> dict:
    return {name: {"weight": loss.weights[name],
                   **{k: v for k, v in vars(module).items() if isinstance(v, (int, float, str))
                      and not k.startswith("_") and k != "training"}}
            for name, module in loss.terms.items()}


def train_student(gaf_path, model_path, live_dir, *, cfg: dict, feature_dim: int, split_cfg: dict,
                  seed: int, loss: WeightedSum | None = None, teacher_path=None,
                  runtime: dict | None = None, split_seed: int | None = None,
                  resume_name: tuple | None = None, keep_resume: bool = False) -> dict:
    """Train the GAF student; with ``loss`` and ``teacher_path`` it is distilled.

    ``runtime``: params.yaml's ``runtime`` block (device, resume; DDP under torchrun).
    ``seed``: the training seed (initialisation, data order); ``split_seed`` (default: the
    same): the seed that carves the validation subset, params.yaml's ``seed``, the same for
    every training seed. ``live_dir`` None: no per-epoch curves. ``resume_name``: (model path
    beside which, stage name) of the resume file (default: beside ``model_path``, named after
    the stage); ``keep_resume``: leave it after success (:func:`train_seeds` deletes them)."""
    if loss is not None and teacher_path is None:
        raise ValueError("distillation needs the teacher outputs file")
    with stage_runtime(runtime) as rt:
        run = prepare_student(rt, gaf_path, model_path, cfg=cfg, feature_dim=feature_dim, split_cfg=split_cfg,
                              seed=seed, loss=loss, teacher_path=teacher_path,
                              split_seed=seed if split_seed is None else split_seed, resume_name=resume_name)
        return run_student(run, model_path, live_dir, keep_resume=keep_resume)


@dataclass
class StudentRun:
    """The student or distill stage's objects, built by :func:`prepare_student`, run by
    :func:`run_student`."""

    training: Training        # what fit trains: model, step, loaders, optimiser, schedule, seed
    loss: WeightedSum | None  # the distillation loss (None: the baseline, cross-entropy only)
    class_names: list
    split: dict               # part -> rows of the GAF store
    train_rows: np.ndarray    # the training rows trained on (without samples lacking teacher output)
    extra: dict               # what the stage's summary line adds (trust, semantic reference, ...)
    ce_floor: float = 0.0     # the training CE a perfect fit still pays (mixup's mixed labels)


def prepare_student(rt, gaf_path, model_path, *, cfg, feature_dim, split_cfg, seed, loss=None, teacher_path=None,
                    split_seed=None, resume_name=None) -> StudentRun:
    """Seed, read the split, build the student, its loaders, step, optimiser, schedule and
    resume file: everything before the first epoch. With ``loss``, against the teacher outputs
    of ``teacher_path``: the distill stage's (``loss`` is scaled by ``distill.trust`` here)."""
    distill = loss is not None
    split_seed = seed if split_seed is None else split_seed
    seed_everything(seed)
    with open_store(gaf_path, "gaf") as h5:
        index = read_index(h5)
        class_names = get_meta(h5, "class_names")
    split = make_split(index["subjects"], index["trials"], index["labels"], split_cfg, split_seed)
    model = build_student(len(class_names), feature_dim, cfg, verbose=rt.is_main)
    maps = distill and "at" in loss.terms  # attention transfer reads layer activations
    train_rows, extra, teacher = split["train"], {}, None
    if distill:
        teacher, train_rows, extra = _against_teacher(loss, teacher_path, feature_dim, index, train_rows,
                                                      len(class_names))
    train_loader, val_loader = _loaders(rt, gaf_path, cfg, seed, train_rows, split["val"], index, teacher, maps)
    net = rt.wrap(_FeaturesAndLogits(model, maps) if distill else model)
    step = _student_step(net, loss, float(cfg.get("mixup", 0)), seed, len(class_names))

    def evaluate():
        return validation_metrics(model, val_loader, index["labels"], device=rt.device)

    optimizer = make_adam(model.parameters(), cfg["lr"], cfg["weight_decay"], decoupled=False)
    resume = None
    if rt.resume:
        inputs = [gaf_path] + ([teacher_path] if distill else [])
        resume = ResumeFile(*(resume_name or (model_path, "distill" if distill else "student")), {
            "cfg": cfg, "feature_dim": feature_dim, "split": split_cfg, "seed": seed,
            "split_seed": split_seed,
            "loss": _loss_config(loss) if distill else None, "inputs": ResumeFile.file_identity(*inputs),
        }, rt)
    training = Training(model, step, evaluate, train_loader, optimizer, cfg["epochs"], selection=cfg["selection"],
                        scheduler=make_scheduler(optimizer, cfg), desc="distill" if distill else "student",
                        seed=seed, runtime=rt, resume=resume)
    return StudentRun(training, loss, class_names, split, train_rows, extra, target_entropy(float(cfg.get("mixup", 0))))


def _against_teacher(loss: WeightedSum, teacher_path, feature_dim: int, index: dict, train_rows, num_classes: int):
    """The stored teacher outputs, the training rows that have one, and the summary's notes;
    ``loss`` scaled by ``distill.trust`` and its semantic term given its reference scale."""
    extra = {}
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
    extra.update(_apply_trust(loss, teacher, index, train_rows, num_classes))
    # distill.semantic_scale: teacher divides L_S by the training features' mean squared norm
    semantic = loss.terms["semantic"] if "semantic" in loss.terms else None
    if isinstance(semantic, SemanticLoss) and semantic.normalise:
        rows = [teacher.row_of[i] for i in index["ids"][train_rows]]
        extra["semantic_reference"] = round(semantic.fit_reference(teacher.features[rows]), 6)
    return teacher, train_rows, extra


def _loaders(rt, gaf_path, cfg: dict, seed: int, train_rows, val_rows, index: dict, teacher, maps: bool):
    """The training loader (augmented with ``student.augment``; with ``teacher``, each sample
    paired with its stored outputs) and the validation loader."""
    augment = cfg.get("augment")  # student.augment: re-encoded from the raw series each epoch
    train_set = (GAFDataset(gaf_path, train_rows) if is_identity(augment)
                 else AugmentedGAFDataset(gaf_path, train_rows, augment, seed))
    if teacher is not None:
        train_set = PairedDataset(train_set, index["ids"], teacher, attention=maps)
    workers = int(cfg.get("num_workers", 0))
    # drop_last: a batch of one has no pairs for the relational losses, nor BatchNorm statistics.
    train_loader = make_loader(train_set, rt.local_batch(cfg["batch_size"], "student.batch_size"),
                               shuffle=True, seed=seed, num_workers=workers, drop_last=True, runtime=rt)
    val_loader = make_loader(GAFDataset(gaf_path, val_rows), cfg["batch_size"], shuffle=False,
                             seed=seed, num_workers=workers, runtime=rt)
    return train_loader, val_loader


def _student_step(net: nn.Module, loss: WeightedSum | None, mixup: float, seed: int, num_classes: int):
    """Cross-entropy alone (``loss`` None: the baseline) or the distillation loss, with
    ``student.mixup`` (> 0: mixup's Beta parameter) or without."""
    mix = (mixup, seed, num_classes) if mixup > 0 else None
    if loss is not None:
        return _distill_step(net, loss, mix)
    return mixup_step(net, *mix) if mix else cross_entropy_step(net)


def _distill_step(net: nn.Module, loss: WeightedSum, mixup: tuple | None = None):
    """The distill stage's ``step``: batches (x, y, teacher logits, teacher feature, *maps, row).
    ``mixup``: (alpha, seed, classes), each batch mixed (:func:`vskd.mixup.mix_distill_batch`)."""
    temperature = loss.terms["kd"].temperature if "kd" in loss.terms else 1.0

    def step(batch):
        if mixup:
            x, target, t_logits, t_feature, t_maps, y = mix_distill_batch(batch, *mixup, temperature)
        else:
            x, y, t_logits, t_feature, *t_maps, _ = batch
            target = y
        h, logits, *s_maps = net(x)
        total, terms = loss(distill_inputs(loss, student_logits=logits, student_feature=h,
                                           teacher_logits=t_logits, teacher_feature=t_feature,
                                           target=target, student_maps=s_maps, teacher_maps=t_maps))
        return total, terms, logits.detach(), y
    return step


def run_student(run: StudentRun, model_path, live_dir, keep_resume: bool = False) -> dict:
    """Train (curves in ``live_dir``; None: none), then on rank 0 write the model to
    ``model_path``; the stage's summary. ``keep_resume``: leave the resume file."""
    rt, training, distill = run.training.runtime, run.training, run.loss is not None
    with (open_live(live_dir, rt) if live_dir is not None else nullcontext(None)) as live:
        result: FitResult = training.fit(live)
    if rt.is_main:
        save_checkpoint(model_path, kind="gaf_student",
                        config=training.model.config(),
                        state_dict=result.state_dict, class_names=run.class_names, epoch=result.epoch,
                        selection=result.selection, loss_weights=run.loss.weights if distill else {"ce": 1.0})
        if training.resume is not None and not keep_resume:
            training.resume.finish()
    if distill:
        run.extra.update(_warn_if_ce_stuck(result.history, len(run.class_names), run.ce_floor))
    return run_summary(result, rt, train=len(run.train_rows), val=len(run.split["val"]),
                       test=len(run.split["test"]), **run.extra)


def _apply_trust(loss: WeightedSum, teacher: TeacherOutputs, index: dict, rows, num_classes: int) -> dict:
    """The teacher's accuracy on the student's training samples, and with ``distill.trust:
    teacher_accuracy`` the distillation weights scaled by :func:`vskd.losses.trust_factor`."""
    ids = index["ids"][rows]
    accuracy = float((teacher.logits[teacher.rows_for(ids)].argmax(1) == index["labels"][rows]).mean())
    out = {"teacher_train_accuracy": round(accuracy, 4)}
    if loss.trust == "teacher_accuracy":
        out["trust"] = round(trust_factor(accuracy, num_classes), 4)
        loss.scale_distillation(out["trust"])
    return out


def ce_warning(final_ce: float, num_classes: int, floor: float = 0.0) -> str | None:
    """What a distilled student's last training cross-entropy says, or None where it fitted its
    labels. Near ln(K) it learnt no labels: the distillation terms pinned it (a useless
    teacher). Above ln 2 the true class gets less than half the probability on the student's
    own training trials (as a geometric mean): it has not fitted its labels, and where the
    baseline does, the terms outweigh them (on the dev folds Table 4's SP at its paper's weight
    ends at 0.8-1.2, DASK at 0.1; on the synthetic default the baseline 0.32, DASK 0.65).
    ``floor``: what a perfect fit still pays (with mixup, :func:`vskd.mixup.target_entropy`),
    taken off first."""
    excess = final_ce - floor
    ended = f"the training cross-entropy ended at {final_ce:.3f}" + (
        f", {excess:.3f} above the {floor:.3f} mixup's mixed labels cost a perfect fit" if floor else "")
    if excess > 0.9 * np.log(num_classes):
        return (f"{ended}, near ln({num_classes}) = {np.log(num_classes):.3f}: the student learnt no labels. "
                "The teacher is probably useless (see the teacher stage's train_accuracy and "
                "feature_spread); set distill.trust: teacher_accuracy or fix the teacher.")
    if excess > np.log(2):
        return (f"{ended}, above ln 2 = 0.693: the true class gets less than half the probability on the "
                "student's own training trials. If the baseline student fits them (its final train/ce), "
                "the distillation terms outweigh the labels: lower their weight or check the teacher.")
    return None


def _warn_if_ce_stuck(history: list[dict], num_classes: int, floor: float = 0.0) -> dict:
    """:func:`ce_warning` on stderr, loudly; the final training cross-entropy for the summary."""
    final = history[-1]["train/ce"] if history and "train/ce" in history[-1] else None
    if final is None:
        return {}
    warning = ce_warning(float(final), num_classes, floor)
    if warning:
        print(f"distill: WARNING: {warning}", file=sys.stderr)
    return {"final_train_ce": round(float(final), 4)}


def train_seeds(gaf_path, model_path, live_dir, *, seeds: list[int], split_seed: int, **kwargs) -> dict:
    """One student per training seed in ``seeds`` (params.yaml ``seeds``), the same split.

    The first seed's model is ``model_path`` (with the per-epoch curves in ``live_dir``), the
    others go to ``<stem>_seeds/<stem>_s<seed>.pt`` (:func:`vskd.checkpoints.seed_checkpoints`);
    nothing else differs between them (``split_seed``, params.yaml ``seed``, carves the same
    validation subset for all). Resume files stay beside ``model_path`` until every seed is
    written, so a stage interrupted at its third seed continues there; a checkpoint left in the
    seeds folder by an earlier seeds list is deleted. ``kwargs``: :func:`train_student`'s.
    """
    if not seeds:
        raise ValueError("seeds: need at least one training seed")
    model_path = Path(model_path)
    stage = "distill" if kwargs.get("loss") is not None else "student"
    paths = seed_checkpoints(model_path, seeds)
    main = int(os.environ.get("RANK", "0")) == 0
    folder = seeds_folder(model_path)
    if main:
        folder.mkdir(parents=True, exist_ok=True)  # a DVC output, also with one seed (empty)
        for stale in set(folder.glob("*.pt")) - set(paths.values()):
            stale.unlink()
    summaries, resume_names = {}, []
    for i, seed in enumerate(seeds):
        name = stage if i == 0 else f"{stage}_s{seed}"
        resume_names.append(name)
        summaries[seed] = train_student(gaf_path, paths[seed], live_dir if i == 0 else None, seed=seed,
                                        split_seed=split_seed, resume_name=(model_path, name),
                                        keep_resume=True, **kwargs)
    if main:
        for name in resume_names:
            model_path.with_name(f".{name}.resume.pt").unlink(missing_ok=True)
    summary = dict(summaries[seeds[0]])
    if len(seeds) > 1:
        summary["seeds"] = "/".join(map(str, seeds))
    return summary
