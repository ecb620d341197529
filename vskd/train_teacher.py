"""Teacher stage: train the multi-scale TRN on frames, then store its outputs for every sample.

Settings follow the authors (REFERENCE section 1) where they apply: step decay, dropout 0.5,
partial BN and gradient clipping as in TRN/TSN, SGD with momentum for ImageNet-initialised
runs. Without ImageNet weights (the CPU default) the teacher trains from scratch with Adam
and partial BN off: freezing the statistics of randomly initialised BatchNorm layers would
leave them as fixed affine maps.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import h5py
import numpy as np
import torch

from vskd import teacher_outputs
from vskd.attention import TEACHER_BLOCKS
from vskd.badsamples import SKIP_HINT, BadSamples
from vskd.checkpoints import save_checkpoint
from vskd.frames import ClipDataset
from vskd.h5store import get_meta, open_store, read_index
from vskd.index import id_listing, make_split
from vskd.live import open_live
from vskd.loaders import make_loader, predict, validation_metrics
from vskd.loop import FitResult, Training, cross_entropy_step, make_adam, make_scheduler, run_summary
from vskd.mixup import mixup_step
from vskd.models.trn import TRNTeacher
from vskd.resume import ResumeFile
from vskd.runtime import seed_everything, stage_runtime


def _check_lengths(frames_path: Path, h5: h5py.File, ids, segments: int,
                   on_bad_sample: str = "error") -> dict[str, str]:
    """Videos with fewer frames than segments: an error naming them all, or with
    ``on_bad_sample: skip`` the id -> reason of each, to leave out (TSN would repeat frames)."""
    lengths = h5["lengths"][()]
    rows = np.flatnonzero(lengths < segments)
    if len(rows) and on_bad_sample != "skip":
        short = [f"{ids[i]} ({lengths[i]} frames)" for i in rows]
        raise ValueError(
            f"{frames_path}: {len(short)} video(s) have fewer frames than the {segments} segments: "
            + ", ".join(short[:10]) + ". Lower '<dataset>.segments' or remove these recordings, "
            + SKIP_HINT + "."
        )
    bad = BadSamples("skip")
    for i in rows:
        bad.handle(ids[i], frames_path, f"{lengths[i]} frames, fewer than the {segments} segments")
    return bad.skipped


def build_teacher(num_classes: int, segments: int, cfg: dict, seed: int) -> TRNTeacher:
    return TRNTeacher(num_classes=num_classes, num_segments=segments,
                      img_feature_dim=cfg["feature_dim"], dropout=cfg["dropout"],
                      partial_bn=bool(cfg["partial_bn"]), seed=seed)


def param_groups(model: TRNTeacher, lr: float, head_lr_mult: float) -> list[dict]:
    """Backbone at ``lr``; ``new_fc`` and the relation module at ``lr * head_lr_mult``.

    Why the head gets its own rate: TSN initialises ``new_fc`` N(0, 0.001), a scale meant
    for SGD, whose steps are proportional to the gradient. Adam's steps are about ``lr``
    per weight whatever the gradient, so at lr 1e-3 the first updates overwrite those
    0.001 weights with the gradient's sign, and almost every feature unit ends up negative
    for every input. The relation module starts with a ReLU, so those units never get a
    gradient again. Measured on the synthetic default: 1 of 256 units alive after one
    epoch at 1e-3 for all, about 100 alive with the head at 1e-4.
    """
    head = list(model.new_fc.parameters()) + list(model.consensus.parameters())
    head_ids = {id(p) for p in head}
    backbone = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    return [{"params": backbone, "lr": lr},
            {"params": [p for p in head if p.requires_grad], "lr": lr * head_lr_mult}]


def train_teacher(frames_path, model_path, outputs_path, live_dir, *, cfg: dict, segments: int,
                  split_cfg: dict, seed: int, runtime: dict | None = None) -> dict:
    """``runtime``: params.yaml's ``runtime`` block (device, resume, on_bad_sample; DDP under
    torchrun)."""
    with stage_runtime(runtime) as rt:
        run = prepare_teacher(rt, frames_path, model_path, cfg=cfg, segments=segments, split_cfg=split_cfg,
                              seed=seed, on_bad_sample=(runtime or {}).get("on_bad_sample", "error"))
        return run_teacher(run, live_dir, model_path, outputs_path)


@dataclass
class TeacherData:
    """What the teacher trains and stores outputs for, from the frames store."""

    index: dict
    class_names: list
    skipped: dict         # id -> reason of every sample without teacher output
    short: dict           # id -> reason of the videos too short for the segments (this stage's skips)
    split: dict           # part -> rows, without the short videos
    usable: np.ndarray    # per index row: not too short


def _teacher_split(frames_path: Path, segments: int, split_cfg: dict, seed: int, on_bad_sample: str) -> TeacherData:
    """The frames store's index and classes, the split without unusable videos, and the
    samples left without teacher output (skipped by the frames stage, or too short)."""
    with open_store(frames_path, "frames") as h5:
        index = read_index(h5)
        class_names = get_meta(h5, "class_names")
        # Samples the frames stage left out, and videos too short for the segments: no
        # teacher output; the distill and evaluate stages leave them out, counted.
        skipped = get_meta(h5, "skipped") if "skipped" in h5.attrs else {}
        short = _check_lengths(frames_path, h5, index["ids"], segments, on_bad_sample)
    split = make_split(index["subjects"], index["trials"], index["labels"], split_cfg, seed)
    usable = ~np.isin(index["ids"], list(short))
    split = {part: rows[usable[rows]] for part, rows in split.items()}
    return TeacherData(index, class_names, {**skipped, **short}, short, split, usable)


def _optimizer(model: TRNTeacher, cfg: dict) -> torch.optim.Optimizer:
    groups = param_groups(model, cfg["lr"], cfg.get("head_lr_mult", 1.0))
    if cfg["optimizer"] == "sgd":  # the authors' choice, with ImageNet weights
        return torch.optim.SGD(groups, lr=cfg["lr"], momentum=cfg["momentum"], weight_decay=cfg["weight_decay"])
    # From scratch, SGD barely moves BN-Inception in a CPU-sized budget; Adam does. The
    # decay must be decoupled (AdamW): Adam's L2 term, divided by the tiny gradient scale
    # of the 0.001-initialised new_fc, drives it to zero and the teacher to a constant.
    return make_adam(groups, cfg["lr"], cfg["weight_decay"], decoupled=True)


@dataclass
class TeacherRun:
    """The teacher stage's objects, built by :func:`prepare_teacher`, run by :func:`run_teacher`."""

    training: Training    # what fit trains: model, step, loaders, optimiser, schedule, seed
    data: TeacherData
    clips: Callable       # (rows, train) -> ClipDataset of those rows
    cfg: dict
    segments: int
    on_bad_sample: str


def _teacher_step(net, cfg: dict, seed: int, num_classes: int):
    """Cross-entropy on each clip, or on clips mixed in pairs (``teacher.mixup`` > 0: mixup's
    Beta parameter; two stick figures overlaid, the brighter one the larger share)."""
    alpha = float(cfg.get("mixup", 0))
    return mixup_step(net, alpha, seed, num_classes) if alpha > 0 else cross_entropy_step(net)


def prepare_teacher(rt, frames_path, model_path, *, cfg, segments, split_cfg, seed, on_bad_sample) -> TeacherRun:
    """Seed, read the split, build the TRN, its loaders, optimiser, schedule and resume file:
    everything before the first epoch (``model_path``: where the resume file goes)."""
    frames_path = Path(frames_path)
    seed_everything(seed)
    data = _teacher_split(frames_path, segments, split_cfg, seed, on_bad_sample)
    model = build_teacher(len(data.class_names), segments, cfg, seed)
    if cfg.get("pretrained"):
        from vskd.models.bninception import load_bninception_weights

        report = load_bninception_weights(model, cfg["pretrained"])
        if rt.is_main:
            print(f"teacher: ImageNet weights from {cfg['pretrained']}: {report}")

    def clips(rows, train):
        return ClipDataset(frames_path, rows, segments, cfg["input_size"], train=train,
                           scales=cfg["scales"], flip=cfg["flip"], seed=seed, affine=cfg.get("affine"),
                           view_jitter=cfg.get("view_jitter"))

    workers = int(cfg.get("num_workers", 0))
    train_loader = make_loader(clips(data.split["train"], True),
                               rt.local_batch(cfg["batch_size"], "teacher.batch_size"), shuffle=True,
                               seed=seed, num_workers=workers, drop_last=True, runtime=rt)
    val_loader = make_loader(clips(data.split["val"], False), cfg["batch_size"], shuffle=False,
                             seed=seed, num_workers=workers, runtime=rt)
    net = rt.wrap(model)
    optimizer = _optimizer(model, cfg)
    resume = None
    if rt.resume:
        resume = ResumeFile(model_path, "teacher", {
            "cfg": cfg, "segments": segments, "split": split_cfg, "seed": seed,
            "on_bad_sample": on_bad_sample, "inputs": ResumeFile.file_identity(frames_path)}, rt)
    training = Training(model, _teacher_step(net, cfg, seed, len(data.class_names)),
                        lambda: validation_metrics(model, val_loader, data.index["labels"], device=rt.device),
                        train_loader, optimizer, cfg["epochs"], selection=cfg["selection"],
                        scheduler=make_scheduler(optimizer, cfg), max_grad_norm=cfg.get("clip_grad_norm"),
                        desc="teacher", seed=seed, runtime=rt, resume=resume,
                        generators=(model.consensus.generator,))
    return TeacherRun(training, data, clips, cfg, segments, on_bad_sample)


def run_teacher(run: TeacherRun, live_dir, model_path, outputs_path) -> dict:
    """Train (curves in ``live_dir``), then on rank 0 write the model and the outputs of every
    sample; the stage's summary, with the teacher's health."""
    rt, data = run.training.runtime, run.data
    with open_live(live_dir, rt) as live:
        result = run.training.fit(live)
    skip_note = {"skipped": id_listing(list(data.short))} if run.on_bad_sample == "skip" else {}
    summary = run_summary(result, rt, train=len(data.split["train"]), val=len(data.split["val"]),
                          test=len(data.split["test"]), **skip_note)
    if not rt.is_main:
        return summary
    run.training.model.load_state_dict(result.state_dict)
    health = _store_outputs(run, result, model_path=model_path, outputs_path=outputs_path)
    if run.training.resume is not None:
        run.training.resume.finish()
    return {**summary, **health}


def _store_outputs(run: TeacherRun, result: FitResult, *, model_path, outputs_path) -> dict:
    """Outputs for every sample (train, val and test), deterministic: centre segments, centre
    crop, the relation module's fixed evaluation. Rank 0 alone. Returns the teacher's health."""
    model, data, cfg, rt = run.training.model, run.data, run.cfg, run.training.runtime
    all_rows, index, class_names = np.flatnonzero(data.usable), data.index, data.class_names
    model.eval()
    loader = make_loader(run.clips(all_rows, False), cfg["batch_size"], shuffle=False, seed=run.training.seed,
                         num_workers=int(cfg.get("num_workers", 0)), runtime=rt)

    def forward(batch):
        # the per-frame features of model.features, plus the attention maps of TEACHER_BLOCKS
        per_frame, maps = model.features_and_attention(batch[0], TEACHER_BLOCKS)
        return (model.head(per_frame), model.semantic_feature(per_frame), *maps.values())

    (logits, features, *maps), rows = predict(forward, loader, desc="teacher outputs", device=rt.device)
    assert np.array_equal(rows, all_rows)
    config = {"num_classes": len(class_names), "num_segments": run.segments,
              "img_feature_dim": cfg["feature_dim"], "dropout": cfg["dropout"]}
    save_checkpoint(model_path, kind="trn_teacher", config=config, state_dict=result.state_dict,
                    class_names=class_names, epoch=result.epoch, selection=result.selection,
                    input_size=cfg["input_size"])
    teacher_outputs.write(outputs_path, {k: index[k][all_rows] for k in ("ids", "labels", "subjects", "trials")},
                          logits, features, attention=dict(zip(TEACHER_BLOCKS, maps)),
                          class_names=class_names, selection=result.selection,
                          epoch=result.epoch, skipped=data.skipped)
    health = teacher_health(logits, features, index["labels"][all_rows], np.isin(all_rows, data.split["train"]))
    warn_if_weak(health, len(class_names))
    return health


def teacher_health(logits: np.ndarray, features: np.ndarray, labels: np.ndarray, train: np.ndarray) -> dict:
    """What a distiller must know of a teacher, from its stored outputs: its accuracy on its
    own training samples, and the spread of its semantic features over all samples (mean
    per-dimension std over mean feature norm; 0: one constant feature for every input)."""
    norm = float(np.linalg.norm(features, axis=1).mean())
    spread = float(features.std(axis=0).mean() / norm) if norm > 0 else 0.0
    return {"train_accuracy": round(float((logits[train].argmax(1) == labels[train]).mean()), 4),
            "feature_spread": round(spread, 6)}


def warn_if_weak(health: dict, num_classes: int) -> None:
    """Say loudly, on stderr, when the teacher has nothing to teach (blank or broken video)."""
    chance = 1.0 / num_classes
    problems = []
    if health["train_accuracy"] < 2 * chance:
        problems.append(f"its accuracy on its own training clips is {health['train_accuracy']:.3f}, "
                        f"under twice chance ({2 * chance:.3f})")
    if health["feature_spread"] < 1e-3:
        problems.append(f"its features barely vary between clips (spread {health['feature_spread']:.2g})")
    if problems:
        print("teacher: WARNING: this teacher has learnt nothing: " + "; ".join(problems) + ". Check the "
              "video (frames.h5) before distilling; distill.trust: teacher_accuracy keeps the student "
              "from following it.", file=sys.stderr)
