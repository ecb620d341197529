"""The cost of the DASK loss: a distill training step against a cross-entropy-only step."""

from __future__ import annotations

import numpy as np
import torch

from benchmarks.common import Row, interleave, judge, med, median_ratio, r3
from benchmarks.stage_runs import Context, train_step
from vskd.loaders import to_device


def bench_dask(ctx: Context, batch_size: int, steps: int) -> list[Row]:
    ce, dask = ctx.training("student"), ctx.training("distill")
    paired = dask.train_loader.dataset
    idx = np.arange(batch_size) % len(paired)  # a small dataset repeats samples to fill the batch
    items = [paired[int(i)] for i in idx]
    collate = torch.utils.data.default_collate
    dask_batch = collate(items)
    x, y, _tl, _tf, rows = dask_batch
    ce_batch = (x, y, rows)
    ce_batch, dask_batch = to_device(ce_batch, ce.device), to_device(dask_batch, dask.device)
    ce.model.train()
    dask.model.train()

    for _ in range(2):  # warm-up
        train_step(ce, ce_batch)
        train_step(dask, dask_batch)
    # Step by step, alternating which goes first: the finest interleaving there is.
    times = interleave({"ce": lambda: train_step(ce, ce_batch), "dask": lambda: train_step(dask, dask_batch)},
                       steps)
    ratio = median_ratio(times["dask"], times["ce"])
    ms = {k: 1000 * med(v) for k, v in times.items()}
    row = judge(Row("dask_vs_ce", f"DASK training step / cross-entropy-only step, GAF student, batch {batch_size}",
                    r3(ratio), details={"batch_size": batch_size, "steps": steps,
                                        "ce_ms_per_step": r3(ms["ce"]), "dask_ms_per_step": r3(ms["dask"]),
                                        "ce_s": [r3(t) for t in times["ce"]], "dask_s": [r3(t) for t in times["dask"]]}),
                "<=", 1.10)
    row.note = (f"the stages' own step functions (student: CE; distill: DASK with stored teacher outputs), "
                f"forward + backward + Adam step: {ms['dask']:.0f} ms vs {ms['ce']:.0f} ms per step")
    if row.met is False:
        row.note += (f". Missed: the five DASK terms (RKD angle: a B x B x B tensor) add "
                     f"{ms['dask'] - ms['ce']:.0f} ms per step")
    return [row]

