"""Storing the teacher's outputs: a distill epoch that recomputes the teacher against one that
reads the stored outputs, and the distill loop against its batches replayed from memory."""

from __future__ import annotations

import h5py
import numpy as np
import torch

from benchmarks.common import Row, clock, judge, med, median_ratio, r3
from benchmarks.stage_runs import Context, EpochRunner, train_step
from vskd.checkpoints import load_checkpoint
from vskd.frames import ClipDataset
from vskd.h5store import read_index
from vskd.loaders import make_loader, set_loader_epoch, to_device
from vskd.models.trn import TRNTeacher


class _WithClips(torch.utils.data.Dataset):
    """The distill training set with each sample's evaluation clip: (gaf, label, clip,
    stored teacher logits, stored teacher feature, row)."""

    def __init__(self, paired, clips):
        self.paired, self.clips = paired, clips

    def __len__(self):
        return len(self.paired)

    def __getitem__(self, i):
        image, label, t_logits, t_feature, row = self.paired[i]
        return image, label, self.clips[i][0], t_logits, t_feature, row


def bench_distill(ctx: Context, rounds: int) -> list[Row]:
    ws = ctx.ws
    training = ctx.training("distill")
    paired = training.train_loader.dataset
    with h5py.File(ws.paths.gaf, "r") as h5:
        gaf_ids = read_index(h5)["ids"]
    with h5py.File(ws.paths.frames, "r") as h5:
        frame_ids = read_index(h5)["ids"]
    frame_row = {sid: i for i, sid in enumerate(frame_ids)}
    ids = gaf_ids[paired.gaf.rows]
    ckpt = load_checkpoint(ws.paths.teacher, "teacher")
    teacher = TRNTeacher(**ckpt["config"])
    teacher.load_state_dict(ckpt["state_dict"])
    teacher.to(training.device).eval()
    clips = ClipDataset(ws.paths.frames, np.array([frame_row[i] for i in ids]), ckpt["config"]["num_segments"],
                        int(ckpt["input_size"]), train=False)
    loader = make_loader(_WithClips(paired, clips), training.train_loader.batch_size, shuffle=True,
                         seed=training.seed, num_workers=training.train_loader.num_workers, drop_last=True)
    diff = {"logits": 0.0, "feature": 0.0}

    def recompute_epoch():
        set_loader_epoch(loader, training.seed, 1)
        training.model.train()
        for batch in loader:
            x, y, clip, stored_logits, stored_feature, row = to_device(batch, training.device)
            with torch.no_grad():
                per_frame = teacher.features(clip)
                t_logits, t_feature = teacher.head(per_frame), teacher.semantic_feature(per_frame)
            diff["logits"] = max(diff["logits"], float((t_logits - stored_logits).abs().max()))
            diff["feature"] = max(diff["feature"], float((t_feature - stored_feature).abs().max()))
            train_step(training, (x, y, t_logits, t_feature, row))

    runner = EpochRunner(training)
    runner.real_epoch()  # warm-up
    recompute_epoch()
    stored, recomputed, pures = [], [], []
    for r in range(rounds):
        order = ("stored", "recompute", "pure") if r % 2 == 0 else ("pure", "recompute", "stored")
        for what in order:
            if what == "stored":
                stored.append(runner.real_epoch())
            elif what == "recompute":
                recomputed.append(clock(recompute_epoch)[0])
            else:
                pures.append(clock(runner.pure)[0])
    train = [e["train_pass_s"] for e in stored]
    ratio = median_ratio(recomputed, train)
    epochs = int(ws.params["student"]["epochs"])
    saved = (med(recomputed) - med(train)) * epochs
    rows = [Row("distill_stored_vs_recompute",
                "distill epoch recomputing the teacher (frames from frames.h5, TRN forward) / distill epoch "
                "with the stored teacher outputs", r3(ratio),
                note=(f"one training pass each ({len(runner.batches)} batches of {training.train_loader.batch_size}): "
                      f"{med(recomputed):.2f} s vs {med(train):.2f} s; over the stage's {epochs} epochs "
                      f"storing saves about {saved:.0f} s. Recomputed outputs equal the stored ones to "
                      f"{max(diff.values()):.1e}"),
                details={"recompute_s": [r3(t) for t in recomputed], "stored_train_pass_s": [r3(t) for t in train],
                         "epochs": epochs, "saved_s_per_stage": r3(saved),
                         "max_abs_diff_logits": diff["logits"], "max_abs_diff_feature": diff["feature"]})]
    loop_ratio = median_ratio(train, pures)
    row = judge(Row("distill_loop", "distill (ResNet18, DASK): training pass of one epoch of the real loop / "
                                    "forward+backward+step of the same batches in memory", r3(loop_ratio),
                    note=f"{med(train):.2f} s vs {med(pures):.2f} s (num_workers={training.train_loader.num_workers})",
                    details={"train_pass_s": [r3(t) for t in train], "pure_s": [r3(t) for t in pures]}),
                "<=", 1.15)
    rows.append(row)
    return rows

