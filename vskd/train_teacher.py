"""Teacher stage: train the multi-scale TRN on frames, then store its outputs for every sample.

Settings follow the authors (REFERENCE section 1) where they apply: step decay, dropout 0.5,
partial BN and gradient clipping as in TRN/TSN, SGD with momentum for ImageNet-initialised
runs. Without ImageNet weights (the CPU default) the teacher trains from scratch with Adam
and partial BN off: freezing the statistics of randomly initialised BatchNorm layers would
leave them as fixed affine maps.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F

from vskd import teacher_outputs
from vskd.frames import ClipDataset
from vskd.h5store import get_meta, open_store, read_index
from vskd.index import make_split
from vskd.models.trn import TRNTeacher
from vskd.training import (fit, make_loader, open_live, predict, save_checkpoint, seed_everything,
                           validation_metrics)


def _check_lengths(frames_path: Path, h5: h5py.File, ids, segments: int) -> None:
    lengths = h5["lengths"][()]
    short = [f"{ids[i]} ({lengths[i]} frames)" for i in np.flatnonzero(lengths < segments)]
    if short:
        raise ValueError(
            f"{frames_path}: {len(short)} video(s) have fewer frames than the {segments} segments: "
            + ", ".join(short[:10]) + ". Lower '<dataset>.segments' or remove these recordings."
        )


def build_teacher(num_classes: int, segments: int, cfg: dict, seed: int) -> TRNTeacher:
    return TRNTeacher(num_classes=num_classes, num_segments=segments,
                      img_feature_dim=cfg["feature_dim"], dropout=cfg["dropout"],
                      partial_bn=bool(cfg["partial_bn"]), seed=seed)


def train_teacher(frames_path, model_path, outputs_path, live_dir, *, cfg: dict, segments: int,
                  split_cfg: dict, seed: int) -> dict:
    frames_path = Path(frames_path)
    seed_everything(seed)
    with open_store(frames_path, "frames") as h5:
        index = read_index(h5)
        class_names = get_meta(h5, "class_names")
        _check_lengths(frames_path, h5, index["ids"], segments)
    split = make_split(index["subjects"], index["trials"], index["labels"], split_cfg, seed)

    model = build_teacher(len(class_names), segments, cfg, seed)
    if cfg.get("pretrained"):
        from vskd.models.bninception import load_bninception_weights

        report = load_bninception_weights(model, cfg["pretrained"])
        print(f"teacher: ImageNet weights from {cfg['pretrained']}: {report}")

    def clips(rows, train):
        return ClipDataset(frames_path, rows, segments, cfg["input_size"], train=train,
                           scales=cfg["scales"], flip=cfg["flip"], seed=seed)

    workers = int(cfg.get("num_workers", 0))
    train_loader = make_loader(clips(split["train"], True), cfg["batch_size"], shuffle=True,
                               seed=seed, num_workers=workers, drop_last=True)
    val_loader = make_loader(clips(split["val"], False), cfg["batch_size"], shuffle=False,
                             seed=seed, num_workers=workers)

    def step(batch):
        x, y, _ = batch
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        return loss, {"ce": loss.detach()}, logits.detach(), y

    def evaluate():
        return validation_metrics(model, val_loader, index["labels"])

    params = [p for p in model.parameters() if p.requires_grad]
    if cfg["optimizer"] == "sgd":  # the authors' choice, with ImageNet weights
        optimizer = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"],
                                    weight_decay=cfg["weight_decay"])
    else:
        # From scratch, SGD barely moves BN-Inception in a CPU-sized budget; Adam does. The
        # decay must be decoupled (AdamW): Adam's L2 term, divided by the tiny gradient scale
        # of the 0.001-initialised new_fc, drives it to zero and the teacher to a constant.
        optimizer = torch.optim.AdamW(params, lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=cfg["lr_steps"], gamma=0.1)
    with open_live(live_dir) as live:
        result = fit(model, step, evaluate, train_loader, optimizer, cfg["epochs"], live,
                     selection=cfg["selection"], scheduler=scheduler,
                     max_grad_norm=cfg.get("clip_grad_norm"), desc="teacher")

    # Outputs for every sample (train, val and test), deterministic: centre segments,
    # centre crop, the relation module's fixed evaluation.
    model.load_state_dict(result.state_dict)
    model.eval()
    all_rows = np.arange(len(index["ids"]))
    loader = make_loader(clips(all_rows, False), cfg["batch_size"], shuffle=False, seed=seed,
                         num_workers=workers)

    def forward(batch):
        per_frame = model.features(batch[0])
        return model.head(per_frame), model.semantic_feature(per_frame)

    (logits, features), rows = predict(forward, loader, desc="teacher outputs")
    assert np.array_equal(rows, all_rows)
    config = {"num_classes": len(class_names), "num_segments": segments,
              "img_feature_dim": cfg["feature_dim"], "dropout": cfg["dropout"]}
    save_checkpoint(model_path, kind="trn_teacher", config=config, state_dict=result.state_dict,
                    class_names=class_names, epoch=result.epoch, selection=result.selection,
                    input_size=cfg["input_size"])
    teacher_outputs.write(outputs_path, {k: index[k] for k in ("ids", "labels", "subjects", "trials")},
                          logits, features, class_names=class_names, selection=result.selection,
                          epoch=result.epoch)
    return {"epoch": result.epoch, "selection": result.selection,
            "train": len(split["train"]), "val": len(split["val"]), "test": len(split["test"])}
