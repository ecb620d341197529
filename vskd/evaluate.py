"""Evaluate stage: test accuracy and macro-F1 of the teacher, the baseline and VSKD students
(one per training seed) and the MiniRocket reference, and whether the differences are real.

The teacher's test predictions come from its stored outputs (no video is decoded here); the
students run on the test GAF images; MiniRocket's predictions come from its stage. Writes
``metrics/<ds>.json`` (nested, so ``dvc metrics show/diff`` read ``vskd.accuracy``,
``gain.accuracy``, ``paired.vskd_vs_student.bootstrap.ci_low``, ...) and, per model, a
confusion matrix (the first seed's) as CSV (for ``dvc plots``) and as PNG.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from vskd.checkpoints import load_checkpoint
from vskd.gaf import GAFDataset
from vskd.h5store import atomic_path, get_meta, open_store, read_index
from vskd.index import make_split
from vskd.loaders import make_loader, predict
from vskd.minirocket import load_predictions
from vskd.models.student import GAFStudent
from vskd.runtime import Runtime
from vskd.stats import mcnemar, paired_bootstrap_ci, seed_summary
from vskd.teacher_outputs import TeacherOutputs

MODELS = ("teacher", "student", "vskd", "minirocket")


def scores(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=np.arange(num_classes), average="macro",
                                   zero_division=0)),
    }


def student_predictions(checkpoint_path, stage: str, gaf_path, rows, device=None) -> tuple[np.ndarray, str]:
    """Test predictions of a student checkpoint, and how its epoch was selected."""
    ckpt = load_checkpoint(checkpoint_path, stage)
    model = GAFStudent(**ckpt["config"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    device = torch.device("cpu") if device is None else device
    model.to(device)
    loader = make_loader(GAFDataset(gaf_path, rows), 64, shuffle=False, seed=0,
                         runtime=Runtime(device=device))
    (logits,), out_rows = predict(lambda b: (model(b[0]),), loader, desc=f"{stage} test", device=device)
    assert np.array_equal(out_rows, rows)
    return logits.argmax(1), ckpt["selection"]


def write_confusion(directory: Path, name: str, y_true, y_pred, class_names: list[str]) -> None:
    """CSV of (actual, predicted) per test sample, for dvc's confusion template, and a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with atomic_path(directory / f"confusion_{name}.csv") as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["actual", "predicted"])
        for t, p in zip(y_true, y_pred):
            writer.writerow([class_names[t], class_names[p]])

    k = len(class_names)
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(k))
    size = max(5.0, 0.45 * k + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(cm, cmap="Blues")
    for i in range(k):
        for j in range(k):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=8,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks(range(k), class_names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(k), class_names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("actual")
    ax.set_title(f"{name}: accuracy {np.mean(np.asarray(y_true) == np.asarray(y_pred)):.3f}")
    fig.tight_layout()
    with atomic_path(directory / f"confusion_{name}.png") as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)


def _seed_key(seed: int) -> str:
    return f"s{seed}"


def seed_scores(y_true: np.ndarray, predictions: dict[int, np.ndarray], num_classes: int) -> dict:
    """Accuracy and macro-F1 per seed, and their mean and sample std over seeds.

    ``accuracy`` and ``macro_f1`` are the means (one seed: that seed's value), so the keys
    ``student.accuracy``, ``vskd.accuracy`` read the same with one seed or several."""
    per_seed = {_seed_key(s): scores(y_true, p, num_classes) for s, p in predictions.items()}
    out: dict = {}
    for metric in ("accuracy", "macro_f1"):
        summary = seed_summary([v[metric] for v in per_seed.values()])
        out[metric], out[f"{metric}_std"] = summary["mean"], summary["std"]
    out["per_seed"] = per_seed
    return out


def paired_comparison(y_true: np.ndarray, base: dict[int, np.ndarray], other: dict[int, np.ndarray]) -> dict:
    """``other`` against ``base`` on the same test samples (vskd.stats): per seed, the exact
    McNemar test (b: samples only ``base`` gets right, c: samples only ``other`` gets right;
    seeds paired in order), and a paired bootstrap 95 % interval of the accuracy difference,
    each sample's correctness averaged over the seeds first."""
    seeds = list(zip(base, other))
    tests = {}
    for sb, so in seeds:
        key = _seed_key(so) if sb == so else f"{_seed_key(sb)}_{_seed_key(so)}"
        tests[key] = mcnemar(y_true, base[sb], other[so])
    correct_base = np.stack([base[sb] == y_true for sb, _ in seeds])
    correct_other = np.stack([other[so] == y_true for _, so in seeds])
    return {"mcnemar": tests, "bootstrap": paired_bootstrap_ci(correct_base, correct_other)}


def minirocket_predictions(path, test_ids, seeds: list[int], split_name: str) -> dict[int, np.ndarray]:
    """The minirocket stage's test predictions for ``test_ids``, per seed."""
    stored = load_predictions(path)
    if [int(s) for s in stored["seeds"]] != list(seeds) or stored["split"]["name"] != split_name:
        raise ValueError(f"{path}: written for seeds {stored['seeds']} and split {stored['split']['name']!r}, "
                         f"not {list(seeds)} and {split_name!r}; run `dvc repro minirocket`")
    position = {i: k for k, i in enumerate(stored["test_ids"])}
    missing = [i for i in test_ids if i not in position]
    if missing:
        raise ValueError(f"{path}: no prediction for {len(missing)} test sample(s), e.g. {missing[:3]}; "
                         "run `dvc repro minirocket`")
    rows = np.array([position[i] for i in test_ids], dtype=np.int64)
    return {s: np.asarray(stored["predictions"][str(s)], dtype=np.int64)[rows] for s in seeds}


def test_predictions(gaf_path, teacher_outputs_path, student_paths: dict, vskd_paths: dict,
                     minirocket_path, *, split_cfg: dict, seed: int, device=None) -> dict:
    """Every model's test predictions: ``{"y_true", "test_ids", "split", "skipped", "selection",
    "predictions": {"teacher": array, "student"|"vskd"|"minirocket": {seed: array}}}``.

    Test samples the frames or teacher stage skipped (``runtime.on_bad_sample: skip``) have no
    teacher output: every model is scored without them (``skipped`` counts them)."""
    seeds = list(student_paths)
    if list(vskd_paths) != seeds:
        raise ValueError(f"student seeds {seeds} and vskd seeds {list(vskd_paths)} differ")
    with open_store(gaf_path, "gaf") as h5:
        index = read_index(h5)
    split = make_split(index["subjects"], index["trials"], index["labels"], split_cfg, seed)
    test = split["test"]
    teacher = TeacherOutputs(teacher_outputs_path)
    no_output = np.array([i not in teacher.row_of and i in teacher.skipped for i in index["ids"][test]],
                         dtype=bool)
    test = test[~no_output]
    y_true = index["labels"][test]
    test_ids = [str(i) for i in index["ids"][test]]
    # MiniRocket's stored predictions first: a stale file (another seeds list) stops here.
    predictions = {"minirocket": minirocket_predictions(minirocket_path, test_ids, seeds, split_cfg["name"]),
                   "teacher": teacher.logits[teacher.rows_for(index["ids"][test], y_true)].argmax(1)}
    selection = {"teacher": teacher.selection}
    for name, stage, paths in (("student", "student", student_paths), ("vskd", "distill", vskd_paths)):
        predictions[name], chosen = {}, set()
        for s, path in paths.items():
            predictions[name][s], how = student_predictions(path, stage, gaf_path, test, device)
            chosen.add(how)
        selection[name] = chosen.pop() if len(chosen) == 1 else "/".join(sorted(chosen))
    return {"y_true": y_true, "test_ids": test_ids, "seeds": seeds, "selection": selection,
            "split": {"name": split_cfg["name"], "train": len(split["train"]), "val": len(split["val"]),
                      "test": len(test)},
            "skipped": int(no_output.sum()), "predictions": predictions}


def score_predictions(dataset: str, found: dict, num_classes: int) -> dict:
    """The metrics of :func:`test_predictions`' output: scores per model and seed, mean and
    std, the VSKD gain seed by seed and the paired tests (McNemar, bootstrap interval)."""
    y_true, seeds, predictions = found["y_true"], found["seeds"], found["predictions"]
    metrics: dict = {"dataset": dataset, "split": dict(found["split"]), "seeds": seeds,
                     "selection": found["selection"]}
    if found["skipped"]:
        metrics["split"]["skipped"] = found["skipped"]
    metrics["teacher"] = scores(y_true, predictions["teacher"], num_classes)
    for name in ("student", "vskd", "minirocket"):
        metrics[name] = seed_scores(y_true, predictions[name], num_classes)
    # VSKD minus baseline, seed by seed (the same seed: the same initialisation and data order).
    gain: dict = {}
    per_seed = {_seed_key(s): {m: metrics["vskd"]["per_seed"][_seed_key(s)][m]
                               - metrics["student"]["per_seed"][_seed_key(s)][m]
                               for m in ("accuracy", "macro_f1")} for s in seeds}
    for m in ("accuracy", "macro_f1"):
        summary = seed_summary([v[m] for v in per_seed.values()])
        gain[m], gain[f"{m}_std"] = summary["mean"], summary["std"]
    gain["per_seed"] = per_seed
    metrics["gain"] = gain
    # The distilled student against the reference that needs no teacher: negative = it loses.
    metrics["vskd_minus_minirocket"] = {m: metrics["vskd"][m] - metrics["minirocket"][m]
                                        for m in ("accuracy", "macro_f1")}
    metrics["paired"] = {
        "vskd_vs_student": paired_comparison(y_true, predictions["student"], predictions["vskd"]),
        "vskd_vs_minirocket": paired_comparison(y_true, predictions["minirocket"], predictions["vskd"]),
    }
    return metrics


def evaluate(dataset: str, gaf_path, teacher_outputs_path, student_paths: dict, vskd_paths: dict,
             minirocket_path, *, split_cfg: dict, seed: int, metrics_path, plots_dir,
             device=None) -> dict:
    """Score every model on the test split, compare them, write ``metrics_path`` and the
    confusion matrices (the first seed's) into ``plots_dir``.

    ``student_paths``, ``vskd_paths``: {training seed: checkpoint}, in params.yaml ``seeds``
    order; ``minirocket_path``: the minirocket stage's predictions; ``seed``: params.yaml
    ``seed``, which carved the split's validation subset (and trained the one teacher).
    ``device``: where the students run (``runtime.device``); the teacher's outputs are stored.
    """
    with open_store(gaf_path, "gaf") as h5:
        class_names = get_meta(h5, "class_names")
    found = test_predictions(gaf_path, teacher_outputs_path, student_paths, vskd_paths, minirocket_path,
                             split_cfg=split_cfg, seed=seed, device=device)
    metrics = score_predictions(dataset, found, len(class_names))
    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    first = {"teacher": found["predictions"]["teacher"],
             **{name: found["predictions"][name][found["seeds"][0]] for name in ("student", "vskd", "minirocket")}}
    for name in MODELS:
        write_confusion(plots_dir, name, found["y_true"], first[name], class_names)
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
