"""Training-loop efficiency: one epoch of the real loop against its batches replayed from
memory, for the teacher and the student, and candidate speedups of the teacher's loader."""

from __future__ import annotations

import copy
import os

import numpy as np
import torch

from benchmarks.common import Row, clock, judge, med, median_ratio, r3
from benchmarks.stage_runs import Context, EpochRunner
from vskd.loop import Training


# Candidate for the teacher's loader: ClipDataset reads a clip's S frames with h5py fancy
# indexing, ``h5["frames"][id][idx]``, which h5py serves slowly (a point selection); reading
# the S frames one by one (one contiguous chunk each) gives the same array. The stand-ins
# below put that behind ClipDataset's own file handle, so its code runs unchanged.

class _FrameReader:
    def __init__(self, dataset):
        self.dataset = dataset

    def __getitem__(self, idx):
        if isinstance(idx, np.ndarray) and idx.ndim == 1:
            return np.stack([self.dataset[int(i)] for i in idx])
        return self.dataset[idx]

    def __getattr__(self, name):
        return getattr(self.dataset, name)


class _FramesGroup:
    def __init__(self, group):
        self.group = group

    def __getitem__(self, sample_id):
        return _FrameReader(self.group[sample_id])


class _PerFrameFile:
    def __init__(self, path):
        import h5py

        self.h5 = h5py.File(path, "r")

    def __getitem__(self, key):
        obj = self.h5[key]
        return _FramesGroup(obj) if key == "frames" else obj


def _per_frame_worker_init(worker_id):
    info = torch.utils.data.get_worker_info()
    info.dataset._h5 = _PerFrameFile(info.dataset.path)


def per_frame_loader(training: Training, num_workers: int | None = None):
    """The teacher's training loader again (same sampler seed, batch; its workers unless
    ``num_workers``), over a copy of its ClipDataset that reads frames one by one; None if
    ClipDataset has changed shape."""
    from vskd.loaders import make_loader

    original = training.train_loader
    if not hasattr(original.dataset, "_h5") or not hasattr(original.dataset, "path"):
        return None
    ds = copy.copy(original.dataset)
    ds._h5 = None
    ref, check = copy.copy(ds), copy.copy(ds)  # copies: the stage's dataset must not open the file here
    check._h5 = _PerFrameFile(ds.path)
    if not torch.equal(ref[0][0], check[0][0]):
        raise AssertionError("per-frame reads give other clips than ClipDataset's")
    workers = original.num_workers if num_workers is None else num_workers
    loader = make_loader(ds, original.batch_size, shuffle=True, seed=training.seed,
                         num_workers=workers, drop_last=original.drop_last)
    if workers:
        loader.worker_init_fn = _per_frame_worker_init
    else:
        ds._h5 = _PerFrameFile(ds.path)
    return loader


def channels_last(batch):
    """A clip batch (B, S, 3, H, W) with each frame in channels-last memory order."""
    x, *rest = batch
    return (x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3), *rest)


def loop_row(key: str, title: str, training: Training, rounds: int, variants: dict | None = None,
             transforms: dict | None = None) -> tuple[Row, dict]:
    """The training-loop figure of one stage, and candidates timed in the same rounds:
    ``variants`` (name -> loader): a real epoch on that loader, and the pure pass over its own
    batches; ``transforms`` (name -> batch function): the pure pass over the stage's batches
    transformed. Returns the row and the candidates' figures."""
    runner = EpochRunner(training)
    first = runner.real_epoch()  # warm-up: allocator, first-touch, caches; reported, not in the figure
    variants, transforms = variants or {}, transforms or {}
    reals, pures = [], []
    var_times = {name: ([], []) for name in variants}
    tr_times = {name: [] for name in transforms}
    for r in range(rounds):
        order = ["pure", "real", *variants, *transforms]
        for what in (order if r % 2 == 0 else order[::-1]):
            if what == "pure":
                pures.append(clock(runner.pure)[0])
            elif what == "real":
                reals.append(runner.real_epoch())
            elif what in variants:
                var_times[what][0].append(runner.real_epoch(variants[what])["train_pass_s"])
                var_times[what][1].append(clock(lambda: runner.pure(runner.last_batches))[0])
            else:
                moved = [transforms[what](b) for b in runner.batches]
                tr_times[what].append(clock(lambda: runner.pure(moved))[0])
    loader_s = runner.loader_only()
    train = [e["train_pass_s"] for e in reals]
    epoch = [e["epoch_s"] for e in reals]
    ratio = median_ratio(train, pures)
    workers = training.train_loader.num_workers
    extra = {name: {"train_pass_s": [r3(t) for t in ts], "pure_s": [r3(t) for t in ps],
                    "ratio": r3(median_ratio(ts, ps)), "vs_stage_pure": r3(median_ratio(ts, pures)),
                    "loader_only_s": r3(runner.loader_only(variants[name]))}
             for name, (ts, ps) in var_times.items()}
    extra.update({name: {"pure_s": [r3(t) for t in ts], "ratio": r3(median_ratio(pures, ts))}
                  for name, ts in tr_times.items()})
    details = {
        "batches": first["batches"], "batch_size": training.train_loader.batch_size, "num_workers": workers,
        "rounds": rounds, "train_pass_s": [r3(x) for x in train], "pure_s": [r3(x) for x in pures],
        "epoch_s": [r3(x) for x in epoch], "validation_s": [r3(e["validation_s"]) for e in reals],
        "first_batch_s": [r3(e["first_batch_s"]) for e in reals], "loader_only_s": r3(loader_s),
        "first_epoch": {k: r3(v) for k, v in first.items()},
        "whole_epoch_ratio": r3(median_ratio(epoch, pures)),
        "candidates": extra,
    }
    row = judge(Row(key, f"{title}: training pass of one epoch of the real loop / forward+backward+step "
                         "of the same batches in memory", r3(ratio), details=details), "<=", 1.15)
    per_batch = med(pures) / max(1, first["batches"])
    note = (f"{first['batches']} batches of {training.train_loader.batch_size}, num_workers={workers}; "
            f"{med(train):.2f} s vs {med(pures):.2f} s; whole epoch with validation and logging "
            f"{med(epoch):.2f} s ({details['whole_epoch_ratio']:.2f}x)")
    if row.met is False:
        over = med(train) - med(pures)
        first_wait = med([e["first_batch_s"] for e in reals])
        why = [f"the loader alone takes {loader_s:.2f} s per epoch"]
        if workers == 0:
            why.append("and with num_workers=0 it runs in the main process between steps, so "
                       "all of it adds to the epoch")
        else:
            why.append(f"and on {os.cpu_count()} cores its {workers} worker(s) take CPU time from the "
                       f"{torch.get_num_threads()} compute threads instead of running beside them (the "
                       f"first batch arrives {first_wait:.2f} s after the epoch starts, a new worker every "
                       f"epoch; one batch of compute takes {per_batch:.2f} s)")
        note += f". Missed by {over:.2f} s per epoch: " + "; ".join(why)
    row.note = note
    return row, extra


def bench_loops(ctx: Context, rounds: int, cheap_rounds: int) -> tuple[list[Row], list[Row]]:
    teacher = ctx.training("teacher")
    workers = teacher.train_loader.num_workers
    variants = {}
    loader = per_frame_loader(teacher)
    if loader is not None:
        variants["per_frame_reads"] = loader
        if workers:
            variants["per_frame_reads_no_workers"] = per_frame_loader(teacher, 0)
    row_t, var = loop_row("teacher_loop", "teacher (TRN, BN-Inception)", teacher, rounds, variants,
                          {"channels_last": channels_last})
    row_s, _ = loop_row("student_loop", "student (ResNet18 on GAF, CE)", ctx.training("student"), cheap_rounds)
    if row_t.met is False and "per_frame_reads" in var:
        v = var["per_frame_reads"]
        row_t.note += (f". Most of the loader's time is h5py's fancy-indexed read of a clip's frames "
                       f"(`h5[\"frames\"][id][idx]`): reading them one by one, the loader alone takes "
                       f"{v['loader_only_s']:.2f} s and the figure is {v['ratio']:.2f}x")
        if "per_frame_reads_no_workers" in var:
            row_t.note += f", {var['per_frame_reads_no_workers']['ratio']:.2f}x with num_workers=0 as well"
    candidates = []
    for name, v in var.items():
        if name == "channels_last":
            candidates.append(Row(
                "teacher_channels_last",
                "candidate teacher step on channels-last frames: forward+backward+step of the stage's batches "
                "/ the same batches in channels-last memory order (x faster)", v["ratio"],
                note=(f"{med(v['pure_s']):.2f} s vs {med(row_t.details['pure_s']):.2f} s "
                      "per epoch of batches; a batch collated in the main process (num_workers=0) keeps the "
                      "crops' channels-last strides when no resize is needed, a worker's batch does not"),
                details=v))
            continue
        w = 0 if name.endswith("no_workers") else workers
        candidates.append(Row(
            f"teacher_loop_{name}",
            f"candidate teacher loop, ClipDataset reading a clip's frames one by one instead of h5py fancy "
            f"indexing, num_workers={w}: training pass / forward+backward+step of its batches", v["ratio"],
            note=(f"loader alone {v['loader_only_s']:.2f} s per epoch instead of "
                  f"{row_t.details['loader_only_s']:.2f} s; the same clips; training pass "
                  f"{med(v['train_pass_s']):.2f} s, {v['vs_stage_pure']:.2f}x the stage's pure pass"),
            details=v))
    return [row_t, row_s], candidates

