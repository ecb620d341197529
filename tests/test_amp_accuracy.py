"""benchmarks.amp_accuracy's comparison: hand-computed accuracies, McNemar counts and the paired difference."""

import numpy as np
import pytest

from benchmarks.amp_accuracy import compare_precisions, format_result, main


def test_compare_precisions_by_hand():
    y = np.array([0, 1, 2, 3])
    fp32 = {0: np.array([0, 1, 2, 0]), 1: np.array([0, 1, 0, 0])}   # 3/4, 2/4 right
    bf16 = {0: np.array([0, 1, 2, 3]), 1: np.array([1, 1, 0, 0])}   # 4/4, 1/4 right
    r = compare_precisions(y, {"float32": fp32, "bfloat16": bf16})
    assert r["float32"]["per_seed"] == [0.75, 0.5]
    assert r["bfloat16"]["per_seed"] == [1.0, 0.25]
    assert r["float32"]["mean"] == pytest.approx(0.625) and r["bfloat16"]["mean"] == pytest.approx(0.625)
    assert r["bfloat16"]["std"] == pytest.approx(np.std([1.0, 0.25], ddof=1))
    # seed 0: bf16 alone right on sample 3 (b=0, c=1); seed 1: fp32 alone right on sample 0 (b=1, c=0)
    assert [(m["b"], m["c"]) for m in r["mcnemar_per_seed"]] == [(0, 1), (1, 0)]
    assert r["bfloat16_minus_float32"]["accuracy_diff"] == pytest.approx(0.0)
    assert r["bfloat16_minus_float32"]["seeds_pooled"] == 2
    text = format_result({"dataset": "toy", "seeds": [0, 1], "test_samples": 4,
                          "stages": {"student": {**r, "train_seconds": {"float32": 1.0, "bfloat16": 2.0}}}})
    assert "75.00 50.00" in text and "+0.00 points" in text and "b/c 0/1, 1/0" in text


def test_seed_lists_must_match():
    y = np.array([0, 1])
    with pytest.raises(ValueError, match="seeds"):
        compare_precisions(y, {"float32": {0: y}, "bfloat16": {1: y}})


def test_unknown_stage_is_refused(capsys):
    with pytest.raises(SystemExit):
        main(["--stages", "teacher"])
    assert "choose from student, distill" in capsys.readouterr().err
