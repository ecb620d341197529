"""Small students, recordings and exports shared by test_export.py and test_predict.py."""

from __future__ import annotations

import json

import numpy as np
import scipy.io
import torch

from vskd.datasets.synthetic import simulate_recording
from vskd.export import GAFStudentPipeline, export_onnx
from vskd.models.student import GAFStudent

CLASSES = ["wave", "clap", "squat"]
WINDOW = 64        # graph input length of the tiny export
IMAGE = 16         # GAF image size of the tiny export
RATE = 50.0


def tiny_student(seed: int = 0, num_classes: int = len(CLASSES)) -> GAFStudent:
    torch.manual_seed(seed)
    model = GAFStudent(num_classes, feature_dim=8).eval()
    # Random BatchNorm statistics, so that eval-mode BN is not the identity in the export.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model


def recordings(actions=(1, 6, 8), subjects=(1, 2), trials=(1,)) -> list[tuple[int, np.ndarray]]:
    """(label, (N, 3) accelerometer) of simulated synthetic recordings (no video rendered)."""
    out = []
    for label, action in enumerate(actions):
        for s in subjects:
            for t in trials:
                out.append((label, simulate_recording(action, s, t, render=False)["d_iner"][:, :3]))
    return out


def write_mat(path, acc: np.ndarray) -> None:
    d_iner = np.concatenate([acc, np.zeros_like(acc)], axis=1)
    scipy.io.savemat(path, {"d_iner": d_iner})


def export_tiny(path, model=None, method="summation"):
    """Export a tiny pipeline to ``path`` with the metadata the export stage writes."""
    model = model or tiny_student()
    pipeline = GAFStudentPipeline(model, WINDOW, IMAGE, method).eval()
    export_onnx(pipeline, path, opset=17, metadata={
        "class_names": json.dumps(CLASSES), "window": WINDOW, "sample_rate": RATE,
        "clip_seconds": WINDOW / RATE, "gaf_method": method, "gaf_image_size": IMAGE})
    return pipeline
