"""Evaluate stage: test accuracy and macro-F1 of the teacher, baseline student and VSKD student.

The teacher's test predictions come from its stored outputs (no video is decoded here); the
two students run on the test GAF images. Writes ``metrics/<ds>.json`` (nested, so
``dvc metrics show/diff`` read ``vskd.accuracy``, ``gain.accuracy``, ...) and, per model,
a confusion matrix as CSV (for ``dvc plots``) and as PNG.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from vskd.gaf import GAFDataset
from vskd.h5store import atomic_path, get_meta, open_store, read_index
from vskd.index import make_split
from vskd.models.student import GAFStudent
from vskd.teacher_outputs import TeacherOutputs
from vskd.training import Runtime, load_checkpoint, make_loader, predict

MODELS = ("teacher", "student", "vskd")


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


def evaluate(dataset: str, gaf_path, teacher_outputs_path, student_path, vskd_path, *,
             split_cfg: dict, seed: int, metrics_path, plots_dir, device=None) -> dict:
    """``device``: where the students run (``runtime.device``); the teacher's outputs are stored.

    Test samples the frames or teacher stage skipped (``runtime.on_bad_sample: skip``) have no
    teacher output: all three models are scored without them, and ``split.skipped`` counts them.
    """
    with open_store(gaf_path, "gaf") as h5:
        index = read_index(h5)
        class_names = get_meta(h5, "class_names")
    split = make_split(index["subjects"], index["trials"], index["labels"], split_cfg, seed)
    test = split["test"]
    teacher = TeacherOutputs(teacher_outputs_path)
    no_output = np.array([i not in teacher.row_of and i in teacher.skipped for i in index["ids"][test]],
                         dtype=bool)
    test = test[~no_output]
    y_true = index["labels"][test]

    predictions, selection = {}, {"teacher": teacher.selection}
    predictions["teacher"] = teacher.logits[teacher.rows_for(index["ids"][test], y_true)].argmax(1)
    predictions["student"], selection["student"] = student_predictions(student_path, "student", gaf_path,
                                                                       test, device)
    predictions["vskd"], selection["vskd"] = student_predictions(vskd_path, "distill", gaf_path, test, device)
    k = len(class_names)
    metrics: dict = {
        "dataset": dataset,
        "split": {"name": split_cfg["name"], "train": len(split["train"]), "val": len(split["val"]),
                  "test": len(test)},
        "selection": selection,
    }
    if no_output.any():
        metrics["split"]["skipped"] = int(no_output.sum())
    for name in MODELS:
        metrics[name] = scores(y_true, predictions[name], k)
    metrics["gain"] = {m: metrics["vskd"][m] - metrics["student"][m] for m in ("accuracy", "macro_f1")}

    plots_dir = Path(plots_dir)
    plots_dir.mkdir(parents=True, exist_ok=True)
    for name in MODELS:
        write_confusion(plots_dir, name, y_true, predictions[name], class_names)
    with atomic_path(metrics_path) as tmp:
        tmp.write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
