"""The teacher's epoch with its clips loaded by one DataLoader worker or in the main process.

    python -m benchmarks.teacher_workers --frames data/dev-onefold-today/utd_mhad/frames.h5 \\
      --rounds 6 -S runtime.amp=true -S runtime.channels_last=true

One epoch of the teacher's real training loop (:meth:`vskd.loop.Training.fit`, no resume
file, no curves) on development fold s1 (train on subjects 3, 5, 7) of the real-motion preset,
``teacher.num_workers`` 1 and 0 in turn, in alternating order, one fresh model per run. The
batches do not depend on the worker count (each clip's randomness is a function of seed,
epoch and row, and clips are contiguous as a worker's batch is: ``tests/test_frames.py``), so
the setting is speed alone. On two cores a worker
process competes with the two torch threads, which wait for each other at every operation.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common import interleave, med, median_ratio


def teacher_epoch(frames: Path, overrides: list[str], workers: int):
    """A function that trains one epoch of a fresh fold-s1 teacher with ``workers`` loader workers."""
    from vskd.preset import preset_overrides
    from vskd.devprotocol import dataset_block, fold_split, load_with_overrides
    from vskd.params import runtime_block
    from vskd.runtime import start_runtime
    from vskd.train_teacher import prepare_teacher

    params = load_with_overrides("params.yaml", preset_overrides("real_motion") + overrides
                                 + [f"teacher.num_workers={workers}"])
    block = dataset_block(params, "utd_mhad", "params.yaml")
    split = fold_split(block["split"], [1, 3, 5, 7], 1)

    def run():
        rt = start_runtime({**runtime_block(params), "resume": False})
        training = prepare_teacher(rt, frames, Path("unused.pt"), cfg=params["teacher"], segments=block["segments"],
                                   split_cfg=split, seed=params["seed"], on_bad_sample="error").training
        training.fit(None, epochs=1, resume=None)
    return run


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=Path, required=True, help="a dev work folder's utd_mhad/frames.h5")
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("-S", "--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a further params override (e.g. runtime.amp=true), repeatable")
    args = ap.parse_args(argv)
    times = interleave({f"num_workers={w}": teacher_epoch(args.frames, args.set, w) for w in (1, 0)}, args.rounds)
    for name, seconds in times.items():
        print(f"{name}: " + ", ".join(f"{s:.2f}" for s in seconds) + f" s per epoch (median {med(seconds):.2f})")
    print(f"num_workers=0 / num_workers=1, median of the rounds' ratios: "
          f"{median_ratio(times['num_workers=0'], times['num_workers=1']):.3f}")


if __name__ == "__main__":
    main()
