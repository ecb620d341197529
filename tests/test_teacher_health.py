"""The teacher stage's health figures and its warning (vskd/train_teacher.py)."""

import numpy as np
import pytest


def test_teacher_health_by_hand(capsys):
    from vskd.train_teacher import teacher_health, warn_if_weak

    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 1.0]])
    labels = np.array([0, 1, 1, 1])
    features = np.array([[3.0, 4.0], [3.0, 4.0], [3.0, 4.0], [3.0, 4.0]])  # constant: spread 0
    train = np.array([True, True, True, False])
    health = teacher_health(logits, features, labels, train)
    assert health == {"train_accuracy": round(2 / 3, 4), "feature_spread": 0.0}
    warn_if_weak(health, num_classes=27)
    err = capsys.readouterr().err
    assert "WARNING" in err and "barely vary" in err and "accuracy" not in err.split("learnt nothing:")[1].split(";")[0]
    spread = teacher_health(logits, np.array([[0.0, 1.0], [0.0, -1.0], [0.0, 1.0], [0.0, -1.0]]), labels, train)
    assert spread["feature_spread"] == pytest.approx(0.5)  # per-dim std (0, 1) mean 0.5 over norm 1
    warn_if_weak({"train_accuracy": 0.05, "feature_spread": 0.5}, num_classes=27)
    assert "under twice chance" in capsys.readouterr().err
    warn_if_weak({"train_accuracy": 0.9, "feature_spread": 0.5}, num_classes=27)
    assert capsys.readouterr().err == ""
