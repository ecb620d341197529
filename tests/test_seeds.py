"""Training seeds: one baseline and one distilled student (and one MiniRocket) per seed in
``seeds``, the metrics per seed with mean, std and paired tests. The tiny configuration of the
end-to-end tests, stages run as DVC runs them (tests/test_robustness.py's helpers)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from tests.test_robustness import raw_tree, stage, workspace, write_params  # noqa: F401 (fixtures)

MODELS = "models/synthetic"


def state(path):
    return torch.load(path, weights_only=True)["state_dict"]


def same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(autouse=True)
def one_thread():
    """Every in-process training run here on one thread (see two_seeds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory, raw_tree):  # noqa: F811
    """The whole chain with seeds [0, 1], run once for the tests below."""
    import runpy
    import sys

    from tests.test_robustness import STAGES

    root = workspace(tmp_path_factory.mktemp("seeds"), raw_tree, {"seeds": [0, 1]})
    mp = pytest.MonkeyPatch()
    outputs = {}
    # one thread, as the stage subprocesses the tests compare against (OMP_NUM_THREADS=1):
    # another thread count changes float reductions, so the weights would differ
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        mp.chdir(root)
        for name in ("frames", "gaf", "teacher", "student", "distill", "minirocket", "evaluate"):
            mp.setattr(sys, "argv", [f"stages/{name}.py", "synthetic"])
            try:
                runpy.run_path(str(STAGES / f"{name}.py"), run_name="__main__")
            except SystemExit as exc:
                assert exc.code in (0, None), f"{name} failed"
    finally:
        mp.undo()
        torch.set_num_threads(threads)
    outputs["metrics"] = json.loads((root / "metrics/synthetic.json").read_text())
    return root, outputs


def test_every_seed_has_its_model_and_the_first_seeds_are_the_stage_outputs(two_seeds):
    root, _ = two_seeds
    for stem in ("student", "vskd"):
        first, second = root / MODELS / f"{stem}.pt", root / MODELS / f"{stem}_seeds" / f"{stem}_s1.pt"
        assert first.is_file() and second.is_file()
        assert sorted(p.name for p in (root / MODELS / f"{stem}_seeds").iterdir()) == [f"{stem}_s1.pt"]
        assert not same_weights(state(first), state(second))       # another initialisation
    # every resume file is gone once all seeds are written
    assert not list((root / MODELS).glob(".*.resume.pt"))


def test_metrics_give_every_seed_the_mean_the_std_and_paired_tests(two_seeds):
    _, out = two_seeds
    m = out["metrics"]
    assert m["seeds"] == [0, 1]
    n = m["split"]["test"]
    for model in ("student", "vskd", "minirocket"):
        per_seed = m[model]["per_seed"]
        assert set(per_seed) == {"s0", "s1"}
        acc = [per_seed["s0"]["accuracy"], per_seed["s1"]["accuracy"]]
        assert m[model]["accuracy"] == pytest.approx(np.mean(acc))
        assert m[model]["accuracy_std"] == pytest.approx(np.std(acc, ddof=1))
        f1 = [per_seed["s0"]["macro_f1"], per_seed["s1"]["macro_f1"]]
        assert m[model]["macro_f1_std"] == pytest.approx(np.std(f1, ddof=1))
    for s in ("s0", "s1"):
        diff = m["vskd"]["per_seed"][s]["accuracy"] - m["student"]["per_seed"][s]["accuracy"]
        assert m["gain"]["per_seed"][s]["accuracy"] == pytest.approx(diff)
        test = m["paired"]["vskd_vs_student"]["mcnemar"][s]
        assert (test["c"] - test["b"]) / n == pytest.approx(diff)
    assert m["gain"]["accuracy"] == pytest.approx(m["vskd"]["accuracy"] - m["student"]["accuracy"])
    boot = m["paired"]["vskd_vs_student"]["bootstrap"]
    assert boot["seeds_pooled"] == 2 and boot["samples"] == n
    assert boot["accuracy_diff"] == pytest.approx(m["gain"]["accuracy"])
    assert boot["ci_low"] <= boot["accuracy_diff"] <= boot["ci_high"]
    assert m["vskd_minus_minirocket"]["accuracy"] == pytest.approx(m["vskd"]["accuracy"] - m["minirocket"]["accuracy"])


def test_minirocket_predicts_every_test_sample_once_per_seed(two_seeds):
    root, out = two_seeds
    stored = json.loads((root / MODELS / "minirocket.json").read_text())
    assert stored["seeds"] == [0, 1]
    assert len(stored["test_ids"]) == len(stored["test_labels"]) == out["metrics"]["split"]["test"]
    assert stored["split"] == {"name": "cross_subject", "train": 6, "val": 0, "test": 6}
    for s in ("0", "1"):
        assert len(stored["predictions"][s]) == 6 and set(stored["predictions"][s]) <= {0, 1, 2}
        accuracy = np.mean(np.array(stored["predictions"][s]) == np.array(stored["test_labels"]))
        assert out["metrics"]["minirocket"]["per_seed"][f"s{s}"]["accuracy"] == pytest.approx(accuracy)


def test_adding_seeds_leaves_the_first_seeds_model_alone_and_drops_stale_ones(two_seeds, stage):  # noqa: F811
    root, _ = two_seeds
    before = state(root / MODELS / "student.pt")
    write_params(root, {"seeds": [0, 2]})
    code, out, _ = stage("student", root)
    assert code == 0 and "seeds=0/2" in out
    assert same_weights(state(root / MODELS / "student.pt"), before)   # seed 0: the same model
    assert sorted(p.name for p in (root / MODELS / "student_seeds").iterdir()) == ["student_s2.pt"]
    # evaluate refuses MiniRocket predictions made for another seeds list
    code, _, err = stage("evaluate", root)
    assert code == 1 and "minirocket.json: written for seeds [0, 1]" in err and "dvc repro minirocket" in err


KILL_AT_SECOND_SEED = r"""
import os, runpy, signal, sys
import vskd.train_student as ts
original = ts.train_student
def train_then_die(*args, **kwargs):
    if kwargs["seed"] == 1:                       # seed 0 is written, its resume file kept
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
ts.train_student = train_then_die
sys.argv = [sys.argv[1], "synthetic"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_a_stage_killed_at_its_second_seed_resumes_the_first_and_ends_the_same(tmp_path, raw_tree, stage):  # noqa: F811
    import shutil
    import signal
    import subprocess
    import sys

    from tests.test_robustness import STAGES, subprocess_env

    def student(*script):  # one thread, as every run compared here (README: Determinism)
        return subprocess.run([sys.executable, *script, str(STAGES / "student.py"), *([] if script else ["synthetic"])],
                              cwd=root, env=subprocess_env(), capture_output=True, text=True, timeout=300)

    root = workspace(tmp_path, raw_tree, {"seeds": [0, 1]})
    assert stage("gaf", root)[0] == 0
    assert student().returncode == 0
    reference = {s: state(p) for s, p in ((0, root / MODELS / "student.pt"),
                                          (1, root / MODELS / "student_seeds" / "student_s1.pt"))}
    (root / MODELS / "student.pt").unlink()
    shutil.rmtree(root / MODELS / "student_seeds")
    killed = student("-c", KILL_AT_SECOND_SEED)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (root / MODELS / ".student.resume.pt").is_file()           # kept for the rerun
    (root / MODELS / "student.pt").unlink()                           # as DVC deletes outputs
    rerun = student()
    assert rerun.returncode == 0, rerun.stderr
    assert "student: resumed from models/synthetic/.student.resume.pt after epoch 1 of 1" in rerun.stderr
    assert same_weights(state(root / MODELS / "student.pt"), reference[0])
    assert same_weights(state(root / MODELS / "student_seeds" / "student_s1.pt"), reference[1])
    assert not list((root / MODELS).glob(".*.resume.pt"))
