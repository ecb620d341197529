"""Golden values of every distillation loss, in the manner of torchdistill's loss tests.

Fixed inputs (drawn once from a seeded numpy generator, rounded to 4 decimals and stored in
the file itself, so no RNG is involved at test time) and the value each loss gave on them are
in ``tests/golden/losses.json``. A test recomputes every value and compares it with the stored
one: any change to a loss's formula, reduction, scaling or pairing fails here.

After a deliberate change to a loss, regenerate the expected values (on the stored inputs)
and review the file's diff:

    python -m tests.test_losses_golden --write              # add --new-inputs to redraw them
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vskd.losses import (ATLoss, CrossEntropyLoss, KDLoss, RKDAngleLoss, RKDDistanceLoss, SemanticLoss, SPLoss,
                         distill_inputs, distill_loss)

GOLDEN = Path(__file__).parent / "golden" / "losses.json"
SEED = 20220523  # ICASSP 2022
SHAPES = {
    "student_logits": (6, 5), "teacher_logits": (6, 5),
    "student_feature": (6, 8), "teacher_feature": (6, 8),
    # AT: student activations (B, C, H, W) of two layers; teacher attention maps (B, h, w),
    # the first pair of different sizes (pooled to 3 x 3), the second of the same size
    "student_map_0": (6, 3, 4, 4), "student_map_1": (6, 5, 2, 2),
    "teacher_map_0": (6, 3, 3), "teacher_map_1": (6, 2, 2),
}
# the paper's DASK weights as params.yaml has them, and the comparison methods' defaults
PARAMS = {"alpha": 0.01, "beta": 1.0, "gamma": 1.0, "temperature": 4.0,
          "distill": {"method": "dask", "distance_weight": 1.0, "angle_weight": 1.0,
                      "at_weight": 1000.0, "sp_weight": 3000.0}}


def draw_inputs() -> dict:
    rng = np.random.default_rng(SEED)
    out = {}
    for name, shape in SHAPES.items():
        x = rng.standard_normal(shape)
        if name.startswith("teacher_map"):
            x = x * x  # attention maps are non-negative (channel means of squares)
        out[name] = np.round(x, 4).tolist()
    out["target"] = [0, 1, 2, 3, 4, 0]
    return out


def tensors(inputs: dict) -> dict:
    t = {k: torch.tensor(v, dtype=torch.float32) for k, v in inputs.items() if k != "target"}
    return {"student_logits": t["student_logits"], "teacher_logits": t["teacher_logits"],
            "student_feature": t["student_feature"], "teacher_feature": t["teacher_feature"],
            "student_maps": [t["student_map_0"], t["student_map_1"]],
            "teacher_maps": [t["teacher_map_0"], t["teacher_map_1"]],
            "target": torch.tensor(inputs["target"], dtype=torch.long)}


def compute(inputs: dict) -> dict[str, float]:
    """Every loss on the stored inputs: the single terms, then each method's total and terms."""
    b = tensors(inputs)
    s_l, t_l, s_f, t_f = b["student_logits"], b["teacher_logits"], b["student_feature"], b["teacher_feature"]
    out = {
        "ce": CrossEntropyLoss()(s_l, b["target"]),
        "kd_T1": KDLoss(1.0)(s_l, t_l),
        "kd_T4": KDLoss(4.0)(s_l, t_l),
        "rkd_distance": RKDDistanceLoss()(s_f, t_f),
        "rkd_angle": RKDAngleLoss()(s_f, t_f),
        "semantic": SemanticLoss()(s_f, t_f),
        "at": ATLoss()(b["student_maps"], b["teacher_maps"]),
        "at_layer_0": ATLoss()(b["student_maps"][:1], b["teacher_maps"][:1]),
        "sp": SPLoss()(s_f, t_f),
    }
    for method in ("dask", "st", "at", "sp"):
        loss = distill_loss({**PARAMS, "distill": {**PARAMS["distill"], "method": method}})
        total, terms = loss(distill_inputs(loss, **b))
        out[f"{method}/total"] = total
        out.update({f"{method}/{name}": value for name, value in terms.items()})
    return {k: float(v) for k, v in out.items()}


@pytest.fixture(scope="module")
def golden():
    return json.loads(GOLDEN.read_text())


def test_every_loss_has_a_golden_value(golden):
    assert set(compute(golden["inputs"])) == set(golden["expected"])
    assert {"ce", "kd_T4", "rkd_distance", "rkd_angle", "semantic", "at", "sp", "dask/total"} <= set(golden["expected"])


@pytest.mark.parametrize("name", sorted(json.loads(GOLDEN.read_text())["expected"]) if GOLDEN.exists() else [])
def test_loss_matches_its_golden_value(golden, name):
    value = compute(golden["inputs"])[name]
    assert value == pytest.approx(golden["expected"][name], rel=1e-5, abs=1e-7), name


def test_dask_total_is_the_weighted_sum_of_its_golden_terms(golden):
    e = golden["expected"]
    assert e["dask/total"] == pytest.approx(
        e["ce"] + 0.01 * e["kd_T4"] + 1.0 * (e["rkd_distance"] + e["rkd_angle"]) + 1.0 * e["semantic"], rel=1e-6)
    assert e["at/total"] == pytest.approx(e["ce"] + 1000 * e["at"], rel=1e-6)
    assert e["sp/total"] == pytest.approx(e["ce"] + 3000 * e["sp"], rel=1e-6)
    assert e["st/total"] == pytest.approx(e["ce"] + 0.01 * e["kd_T4"], rel=1e-6)


def _adaptive_pool(q: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """numpy adaptive average pooling of (B, H, W) maps: window i spans floor(i H / h) .. ceil((i + 1) H / h)."""
    (H, W), (h, w) = q.shape[1:], size
    out = np.empty((len(q), h, w))
    for i in range(h):
        for j in range(w):
            r0, r1 = (i * H) // h, -((-(i + 1) * H) // h)
            c0, c1 = (j * W) // w, -((-(j + 1) * W) // w)
            out[:, i, j] = q[:, r0:r1, c0:c1].mean(axis=(1, 2))
    return out


def test_at_and_sp_golden_values_agree_with_a_numpy_reference(golden):
    """The golden AT and SP values, recomputed in float64 numpy from the papers' formulas."""
    x = {k: np.array(v, dtype=np.float64) for k, v in golden["inputs"].items()}
    at = 0.0
    for i in (0, 1):
        q_s = (x[f"student_map_{i}"] ** 2).mean(axis=1)
        q_t = x[f"teacher_map_{i}"]
        size = (min(q_s.shape[1], q_t.shape[1]), min(q_s.shape[2], q_t.shape[2]))
        q_s, q_t = (_adaptive_pool(q, size).reshape(len(q), -1) for q in (q_s, q_t))
        q_s = q_s / np.linalg.norm(q_s, axis=1, keepdims=True)
        q_t = q_t / np.linalg.norm(q_t, axis=1, keepdims=True)
        at += ((q_s - q_t) ** 2).mean()
    assert golden["expected"]["at"] == pytest.approx(at, rel=1e-5)

    def gram(f):
        g = f @ f.T
        return g / np.linalg.norm(g, axis=1, keepdims=True)

    b = len(x["student_feature"])
    sp = ((gram(x["student_feature"]) - gram(x["teacher_feature"])) ** 2).sum() / b**2
    assert golden["expected"]["sp"] == pytest.approx(sp, rel=1e-5)


def write(new_inputs: bool = False) -> None:
    """Recompute the expected values on the stored inputs (``new_inputs``: draw them again)."""
    inputs = draw_inputs() if new_inputs or not GOLDEN.exists() else json.loads(GOLDEN.read_text())["inputs"]
    data = {
        "about": "Golden values of vskd.losses on fixed inputs; tests/test_losses_golden.py. "
                 "Regenerate with: python -m tests.test_losses_golden --write",
        "generated_with": {"torch": torch.__version__, "numpy": np.__version__, "seed": SEED},
        "params": PARAMS,
        "expected": compute(inputs),
        "inputs": inputs,
    }
    GOLDEN.parent.mkdir(exist_ok=True)
    head = json.dumps({k: v for k, v in data.items() if k != "inputs"}, indent=1)[:-2]
    rows = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in inputs.items())  # a tensor a line
    GOLDEN.write_text(head + ',\n "inputs": {\n' + rows + "\n }\n}\n")
    print(f"wrote {GOLDEN}: {len(data['expected'])} values")


if __name__ == "__main__":
    if sys.argv[1:] not in (["--write"], ["--write", "--new-inputs"]):
        sys.exit("usage: python -m tests.test_losses_golden --write [--new-inputs]")
    write(new_inputs="--new-inputs" in sys.argv)
