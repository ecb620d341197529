"""Is the real-motion teacher wrong by chance or by habit? Teachers of several dev runs, averaged.

    python -m benchmarks.teacher_ensemble --reference metrics/dev/utd_mhad_teachers_amp.json \\
      data/dev-onefold-fast data/dev-final data/dev-tmix data/dev-vj data/dev-seg12 data/dev-frame

Each work folder is a finished ``python -m vskd dev`` run (its commands: docs/real-motion.md);
per fold its ``teacher_outputs.h5`` holds the teacher's logits for every trial. The teachers of
the folders are trained on the same three subjects per fold with slightly different recipes
(a seed's worth of difference each), so averaging their class probabilities removes what they
get wrong by chance (variance) and keeps what they all get wrong (bias). The script prints the
held-out accuracy of each teacher, the mean over every subset of ``k`` teachers averaged, and
all of them averaged, per fold and over folds. The held-out trials and labels are the
``--reference`` protocol file's; nothing is fitted or chosen.
"""

from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np

from vskd.teacher_outputs import TeacherOutputs


def held_out_probabilities(work: Path, fold: str, test_ids: list[str], dataset: str = "utd_mhad") -> np.ndarray:
    """(n, classes) softmax of the fold's teacher logits for ``test_ids``, in that order."""
    path = work / dataset / f"fold_{fold}" / "teacher_outputs.h5"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no teacher outputs; finish that work folder's dev run first")
    outputs = TeacherOutputs(path)
    logits = outputs.logits[outputs.rows_for(test_ids)].astype(np.float64)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def averaged_accuracy(probs: list[np.ndarray], y: np.ndarray) -> float:
    """Accuracy of the class with the highest mean probability over ``probs``."""
    return float((np.mean(probs, axis=0).argmax(axis=1) == y).mean())


def ensemble_table(probs: dict[str, dict[str, np.ndarray]], y: dict[str, np.ndarray]) -> dict:
    """{"single": {run: [per fold]}, "k": {k: [per fold, mean over every k-subset]}, "all": [per fold]}."""
    runs, folds = list(probs), list(y)
    table = {"single": {r: [averaged_accuracy([probs[r][f]], y[f]) for f in folds] for r in runs}, "k": {}}
    for k in range(2, len(runs)):
        subsets = list(itertools.combinations(runs, k))
        table["k"][k] = [float(np.mean([averaged_accuracy([probs[r][f] for r in s], y[f]) for s in subsets]))
                         for f in folds]
    table["all"] = [averaged_accuracy([probs[r][f] for r in runs], y[f]) for f in folds]
    return table


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("works", nargs="+", type=Path, help="finished dev work folders (data/dev-...)")
    ap.add_argument("--reference", type=Path, required=True, help="a protocol file with the held-out predictions")
    args = ap.parse_args(argv)
    reference = json.loads(args.reference.read_text())["predictions"]
    y = {f: np.array(v["y_true"]) for f, v in reference.items()}
    probs = {w.name: {f: held_out_probabilities(w, f, v["test_ids"]) for f, v in reference.items()}
             for w in args.works}
    table = ensemble_table(probs, y)
    rows = [(name, acc) for name, acc in table["single"].items()]
    rows += [(f"mean of every {k} averaged", acc) for k, acc in table["k"].items()]
    rows.append((f"all {len(probs)} averaged", table["all"]))
    print("| teachers | " + " | ".join(y) + " | mean over folds |")
    print("|---|" + "---|" * (len(y) + 1))
    for name, acc in rows:
        print(f"| {name} | " + " | ".join(f"{100 * a:.1f}" for a in acc) + f" | {100 * np.mean(acc):.1f} |")


if __name__ == "__main__":
    main()
