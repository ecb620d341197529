"""Does ``runtime.amp`` cost the student accuracy? bfloat16 against float32, seed by seed.

    python -m benchmarks.amp_accuracy                      # synthetic, seeds 0 1 2, student + distill
    python -m benchmarks.amp_accuracy --seeds 0 --stages student

Trains the baseline student and the distilled student of one dataset twice per seed, once in
float32 and once under ``runtime.amp: true`` (bfloat16 autocast on CPU, :mod:`vskd.amp`), on
the stores ``dvc repro`` built (``data/<ds>/gaf.h5``; the float32 teacher's
``models/<ds>/teacher_outputs.h5``), everything else the committed params. The models go to
``--work`` (``data/amp_check/<ds>/<precision>/``), never over the pipeline's own. Per stage it
prints and writes (``--out``): test accuracy per seed, mean and std over seeds, bfloat16 -
float32 as a paired bootstrap interval pooled over the seeds' test predictions, exact McNemar
per seed, and the training seconds of each precision.

Only the training precision differs: the split, the seeds, the data order and the evaluation
(float32) are the same, so a difference is what autocast does to training.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np

from vskd.stats import mcnemar, paired_bootstrap_ci, seed_summary

PRECISIONS = ("float32", "bfloat16")
STAGES = ("student", "distill")


def compare_precisions(y_true, predictions: dict[str, dict[int, np.ndarray]]) -> dict:
    """``predictions[precision][seed]``: test predictions of one stage's models. Accuracy per
    seed and over seeds for each precision; bfloat16 - float32 paired over the test samples."""
    y = np.asarray(y_true)
    seeds = sorted(predictions["float32"])
    if sorted(predictions["bfloat16"]) != seeds:
        raise ValueError(f"float32 seeds {seeds} and bfloat16 seeds {sorted(predictions['bfloat16'])} differ")
    correct = {p: np.stack([np.asarray(predictions[p][s]) == y for s in seeds]) for p in PRECISIONS}
    out = {p: {"per_seed": [float(c.mean()) for c in correct[p]], **seed_summary(correct[p].mean(axis=1))}
           for p in PRECISIONS}
    out["seeds"] = seeds
    out["bfloat16_minus_float32"] = paired_bootstrap_ci(correct["float32"], correct["bfloat16"])
    out["mcnemar_per_seed"] = [mcnemar(y, predictions["float32"][s], predictions["bfloat16"][s]) for s in seeds]
    return out


def train_stage(params: dict, name: str, stage: str, precision: str, model_path: Path, seeds) -> float:
    """Train ``stage``'s students (one per seed) at ``precision``; returns the seconds taken."""
    from vskd.losses import distill_loss
    from vskd.params import dataset_block, runtime_block
    from vskd.paths import stage_paths
    from vskd.train_student import train_seeds

    params = copy.deepcopy(params)
    params["runtime"]["amp"] = precision == "bfloat16"
    p = stage_paths(name)
    extra = {"loss": distill_loss(params), "teacher_path": p.teacher_outputs} if stage == "distill" else {}
    start = time.perf_counter()
    train_seeds(p.gaf, model_path, None, seeds=seeds, split_seed=params["seed"], cfg=params["student"],
                feature_dim=params["teacher"]["feature_dim"], split_cfg=dataset_block(params, name)["split"],
                runtime=runtime_block(params), **extra)
    return round(time.perf_counter() - start, 1)


def held_out_rows(params: dict, name: str) -> tuple[np.ndarray, np.ndarray]:
    """The test split's row indices in the dataset's GAF store (the evaluate stage's), and their labels."""
    from vskd.h5store import open_store, read_index
    from vskd.index import make_split
    from vskd.params import dataset_block
    from vskd.paths import stage_paths

    with open_store(stage_paths(name).gaf, "gaf") as h5:
        index = read_index(h5)
    split = make_split(index["subjects"], index["trials"], index["labels"],
                       dataset_block(params, name)["split"], params["seed"])
    return split["test"], index["labels"][split["test"]]


def run(name: str, seeds: list[int], stages, work: Path) -> dict:
    from vskd.checkpoints import seed_checkpoints
    from vskd.evaluate import student_predictions
    from vskd.params import load_params
    from vskd.paths import stage_paths

    params = load_params()
    rows, y_true = held_out_rows(params, name)
    result = {"dataset": name, "seeds": seeds, "test_samples": int(len(rows)), "stages": {}}
    for stage in stages:
        predictions, seconds = {}, {}
        for precision in PRECISIONS:
            model = work / name / precision / f"{stage}.pt"
            seconds[precision] = train_stage(params, name, stage, precision, model, seeds)
            predictions[precision] = {s: student_predictions(path, stage, stage_paths(name).gaf, rows)[0]
                                      for s, path in seed_checkpoints(model, seeds).items()}
        result["stages"][stage] = {**compare_precisions(y_true, predictions), "train_seconds": seconds}
    return result


def format_result(result: dict) -> str:
    lines = [f"runtime.amp on {result['dataset']}, seeds {result['seeds']}, "
             f"{result['test_samples']} test samples (accuracy %)"]
    for stage, r in result["stages"].items():
        d = r["bfloat16_minus_float32"]
        for p in PRECISIONS:
            seeds = " ".join(f"{100 * a:.2f}" for a in r[p]["per_seed"])
            std = "" if r[p]["std"] is None else f" +- {100 * r[p]['std']:.2f}"
            lines.append(f"  {stage:8s} {p:9s} {seeds}  mean {100 * r[p]['mean']:.2f}{std}  "
                         f"({r['train_seconds'][p]} s)")
        mc = ", ".join(f"{m['b']}/{m['c']}" for m in r["mcnemar_per_seed"])
        lines.append(f"  {stage:8s} bfloat16 - float32 {100 * d['accuracy_diff']:+.2f} points, 95 % CI "
                     f"[{100 * d['ci_low']:+.2f}, {100 * d['ci_high']:+.2f}], McNemar b/c {mc}")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    ap.add_argument("--stages", default=",".join(STAGES), help="student, distill or both")
    ap.add_argument("--work", type=Path, default=Path("data/amp_check"))
    ap.add_argument("--out", type=Path, default=Path("benchmarks/amp_accuracy.json"))
    args = ap.parse_args(argv)
    stages = [s for s in args.stages.split(",") if s]
    if not stages or set(stages) - set(STAGES):
        ap.error(f"--stages: choose from {', '.join(STAGES)}, got {args.stages!r}")
    result = run(args.dataset, [int(s) for s in args.seeds.split(",")], stages, args.work)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(format_result(result))
    return result


if __name__ == "__main__":
    main()
