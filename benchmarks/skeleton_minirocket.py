"""How much of each action the skeleton itself carries: MiniRocket on the joints, dev folds.

    python -m benchmarks.skeleton_minirocket \\
      --source ../shared/data/utd_mhad_odd_subjects --seeds 0,1,2 \\
      --against metrics/dev/utd_mhad_student60.json --out metrics/dev/utd_mhad_skeleton_minirocket.json

The teacher sees the Kinect skeleton drawn as video. Whether a weak teacher is the drawing's
and the CNN's fault or the skeleton's is a question a classifier on the joints answers: here
MiniRocket (the same one the ``minirocket@`` stage fits to the wrist) reads the 3-D paths of
the hands, elbows, feet and head, relative to the trial's median hip and divided by its
median body height (the same normalisation the drawing uses), resampled to 64 time points:
21 channels. Leave-one-subject-out over the development subjects, as ``python -m vskd dev``.

A diagnostic, not a teacher: the pipeline's teacher is the TRN on video (the paper's method).
``--against`` pairs it trial by trial with a protocol file's teacher (one run per fold,
compared with each seed) and wrist MiniRocket.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import numpy as np

from vskd.datasets.resample import resample_to_length
from vskd.datasets.skeleton_video import (HEAD, HIP_C, L_ELBOW, L_FOOT, L_HAND, R_ELBOW, R_FOOT, R_HAND,
                                          body_height, read_skeleton)
from vskd.minirocket import fit_predict
from vskd.stats import paired_bootstrap_ci, seed_summary

JOINTS = (R_HAND, L_HAND, R_ELBOW, L_ELBOW, R_FOOT, L_FOOT, HEAD)
LENGTH = 64
TRIAL = re.compile(r"^(a(\d+)_s(\d+)_t(\d+))_skeleton\.mat$")


def joint_paths(joints: np.ndarray) -> np.ndarray:
    """(T, 20, 3) metres -> (21, LENGTH): the chosen joints' paths in body heights from the hip."""
    hip = np.median(joints[:, HIP_C], axis=0)
    rel = (joints[:, JOINTS] - hip) / body_height(joints)
    return resample_to_length(rel.reshape(len(joints), -1), LENGTH).T


def load(source: Path, subjects: list[int]) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Trial ids, (n, 21, LENGTH) paths, labels (0-based) and subjects of every skeleton file."""
    ids, x, y, s = [], [], [], []
    for path in sorted((source / "Skeleton").glob("*_skeleton.mat")):
        m = TRIAL.match(path.name)
        if m and int(m.group(3)) in subjects:
            ids.append(m.group(1))
            x.append(joint_paths(read_skeleton(path)))
            y.append(int(m.group(2)) - 1)
            s.append(int(m.group(3)))
    if not ids:
        raise FileNotFoundError(f"{source / 'Skeleton'}: no a*_s*_t*_skeleton.mat of subjects {subjects}")
    return ids, np.stack(x), np.array(y), np.array(s)


def run(source: Path, subjects: list[int], seeds: list[int]) -> dict:
    ids, x, y, s = load(source, subjects)
    folds = {}
    for held in subjects:
        train, test = s != held, s == held
        preds = {seed: fit_predict(x[train], y[train], x[test], seed=seed, n_kernels=10_000,
                                   max_dilations_per_kernel=32) for seed in seeds}
        acc = [float((preds[k] == y[test]).mean()) for k in seeds]
        folds[f"s{held}"] = {"accuracy": seed_summary(acc), "per_seed": acc,
                             "test_ids": [ids[i] for i in np.flatnonzero(test)],
                             "y_true": y[test].tolist(), "predictions": {str(k): preds[k].tolist() for k in seeds}}
    means = [f["accuracy"]["mean"] for f in folds.values()]
    return {"source": str(source), "joints": len(JOINTS), "length": LENGTH, "seeds": seeds,
            "folds": folds, "across_folds": seed_summary(means)}


def against(result: dict, protocol_file: Path) -> dict:
    """Skeleton MiniRocket minus the protocol's teacher and wrist MiniRocket, pooled over trials."""
    other = json.loads(protocol_file.read_text())["predictions"]
    out = {}
    for model in ("teacher", "minirocket"):
        mine, theirs = [], []
        for name, fold in result["folds"].items():
            ref = other[name]
            if sorted(ref["test_ids"]) != sorted(fold["test_ids"]):
                raise ValueError(f"{protocol_file}: fold {name} holds other trials than this run")
            order = np.argsort(fold["test_ids"])   # both in one order: the ids sorted
            ref_order = np.argsort(ref["test_ids"])
            y = np.array(fold["y_true"])[order]
            for seed in result["seeds"]:
                ref_pred = ref[model] if model == "teacher" else ref[model][str(seed)]
                mine.append(np.array(fold["predictions"][str(seed)])[order] == y)
                theirs.append(np.array(ref_pred)[ref_order] == y)
        by_seed = len(result["seeds"])
        a = np.stack([np.concatenate(theirs[k::by_seed]) for k in range(by_seed)])
        b = np.stack([np.concatenate(mine[k::by_seed]) for k in range(by_seed)])
        out[model] = paired_bootstrap_ci(a, b)
    return {"file": str(protocol_file), **out}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--source", type=Path, required=True, help="a folder holding Skeleton/")
    p.add_argument("--subjects", default="1,3,5,7")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--against", type=Path, help="a dev protocol metrics file with predictions")
    p.add_argument("--out", type=Path)
    args = p.parse_args(argv)
    result = run(args.source, [int(v) for v in args.subjects.split(",")], [int(v) for v in args.seeds.split(",")])
    if args.out:   # written before the comparison too, so a bad --against file loses no fit
        args.out.write_text(json.dumps(result, indent=1) + "\n")
    if args.against:
        result["against"] = against(result, args.against)
    for name, fold in result["folds"].items():
        print(f"{name}: {100 * fold['accuracy']['mean']:.1f} % (seeds {fold['per_seed']})")
    print(f"mean over folds {100 * result['across_folds']['mean']:.1f} ± {100 * result['across_folds']['std']:.1f} %")
    for model, ci in (result.get("against") or {}).items():
        if model != "file":
            print(f"skeleton MiniRocket - {model}: {100 * ci['accuracy_diff']:+.1f} points, "
                  f"CI [{100 * ci['ci_low']:+.1f}, {100 * ci['ci_high']:+.1f}]")
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
