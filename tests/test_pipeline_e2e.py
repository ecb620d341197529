"""End to end: `dvc repro` of the whole pipeline on a tiny configuration, in a temporary copy."""

import json
import os
import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO
from vskd.params import TINY_OVERRIDES, set_dotted

TINY = TINY_OVERRIDES  # also read by tests/test_robustness.py


def copy_tiny_repo(root, overrides: dict):
    """Copy the repository's files (tracked and untracked, not ignored; no metrics, no
    dvc.lock) into ``root`` and apply ``overrides`` (dotted keys) to its params.yaml."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                           capture_output=True, text=True, check=True).stdout.split()
    for name in files:
        src = REPO / name
        if src.is_file() and not name.startswith(("metrics/", "dvc.lock")):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, root / name)
    params = yaml.safe_load((root / "params.yaml").read_text())
    for key, value in overrides.items():
        set_dotted(params, key, value)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return root


def run(cmd, cwd):
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t"}
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory):
    if shutil.which("dvc") is None:
        pytest.skip("dvc is not installed")
    root = copy_tiny_repo(tmp_path_factory.mktemp("e2e") / "repo", TINY)
    run(["git", "init", "-q"], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "tiny"], root)
    log = run(["dvc", "repro"], root)
    return root, log


def test_repro_runs_every_stage_and_writes_metrics(tiny_repo):
    root, log = tiny_repo
    for stage in ("download", "frames", "gaf", "teacher", "student", "distill", "minirocket", "evaluate"):
        assert f"Running stage '{stage}@synthetic'" in log
    metrics = json.loads((root / "metrics" / "synthetic.json").read_text())
    assert set(metrics) == {"dataset", "split", "seeds", "selection", "teacher", "student", "vskd",
                            "minirocket", "gain", "vskd_minus_minirocket", "paired"}
    assert metrics["split"] == {"name": "cross_subject", "train": 6, "val": 0, "test": 6}
    assert metrics["seeds"] == [0]
    assert set(metrics["teacher"]) == {"accuracy", "macro_f1"}
    for model in ("student", "vskd", "minirocket"):
        # one seed: the mean is that seed's value, and there is no spread to estimate
        assert set(metrics[model]) == {"accuracy", "macro_f1", "accuracy_std", "macro_f1_std", "per_seed"}
        assert metrics[model]["per_seed"] == {"s0": {"accuracy": metrics[model]["accuracy"],
                                                     "macro_f1": metrics[model]["macro_f1"]}}
        assert metrics[model]["accuracy_std"] is None
    for model in ("teacher", "student", "vskd", "minirocket"):
        assert metrics[model]["accuracy"] in {k / 6 for k in range(7)}   # 6 test samples
    assert metrics["gain"]["accuracy"] == pytest.approx(metrics["vskd"]["accuracy"] - metrics["student"]["accuracy"])
    assert metrics["vskd_minus_minirocket"]["accuracy"] == pytest.approx(
        metrics["vskd"]["accuracy"] - metrics["minirocket"]["accuracy"])
    paired = metrics["paired"]["vskd_vs_student"]
    b, c = paired["mcnemar"]["s0"]["b"], paired["mcnemar"]["s0"]["c"]
    assert (c - b) / 6 == pytest.approx(metrics["gain"]["accuracy"])     # c: only VSKD right
    assert 0 < paired["mcnemar"]["s0"]["p_value"] <= 1
    boot = paired["bootstrap"]
    assert boot["accuracy_diff"] == pytest.approx(metrics["gain"]["accuracy"])
    assert boot["ci_low"] <= boot["accuracy_diff"] <= boot["ci_high"]
    assert (boot["resamples"], boot["samples"], boot["seeds_pooled"]) == (10000, 6, 1)
    assert set(metrics["paired"]["vskd_vs_minirocket"]) == {"mcnemar", "bootstrap"}
    predictions = json.loads((root / "models" / "synthetic" / "minirocket.json").read_text())
    assert predictions["seeds"] == [0] and len(predictions["predictions"]["0"]) == 6
    assert (root / "models" / "synthetic" / "student_seeds").is_dir()
    assert not any((root / "models" / "synthetic" / "student_seeds").iterdir())   # one seed
    for model in ("teacher", "student", "vskd", "minirocket"):
        assert (root / "metrics" / "synthetic" / "plots" / f"confusion_{model}.png").stat().st_size > 0
    curves = root / "metrics" / "synthetic" / "train" / "distill" / "plots" / "metrics" / "train"
    assert {p.stem for p in curves.glob("*.tsv")} >= {"ce", "kd", "rkd_distance", "rkd_angle", "semantic", "loss"}


def test_second_repro_runs_nothing(tiny_repo):
    root, _ = tiny_repo
    log = run(["dvc", "repro"], root)
    assert "Running stage" not in log
    assert "up to date" in log


def test_report_renders_the_workspace_run_from_dvc_exp_show(tiny_repo):
    """`python -m vskd report` runs `dvc exp show --json` and puts the workspace's default run
    (DASK, ResNet18) in Table 4's DASK-ResNet18 row, one seed: no spread."""
    import sys

    root, _ = tiny_repo
    metrics = json.loads((root / "metrics" / "synthetic.json").read_text())
    text = run([sys.executable, "-m", "vskd", "report"], root)
    row = next(line for line in text.splitlines() if line.startswith("| DASK-ResNet18 |"))
    assert f"| {100 * metrics['vskd']['accuracy']:.2f} | 96.97 |" in row and "`workspace`" in row
    assert "seeds 0 (1)" in text and "| ST | Acc. | n/a |" in text


def test_dvc_remote_shares_the_cache_and_a_fresh_clone_runs_nothing(tiny_repo, tmp_path):
    """`dvc push` to a local-folder remote; a fresh `git clone` + `dvc pull` has every output,
    and `dvc repro` there runs no stage."""
    root, _ = tiny_repo
    remote = tmp_path / "dvc-remote"
    run(["dvc", "remote", "add", "-d", "shared", str(remote)], root)
    run(["git", "add", "-A"], root)
    run(["git", "commit", "-qm", "tiny run, shared remote"], root)
    log = run(["dvc", "push"], root)
    assert "pushed" in log and any(remote.rglob("*"))

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(root), str(clone)], tmp_path)
    assert not (clone / "models" / "synthetic" / "vskd.pt").exists()
    run(["dvc", "pull"], clone)
    for out in ("data/synthetic/raw", "data/synthetic/frames.h5", "data/synthetic/gaf.h5",
                "models/synthetic/teacher.pt", "models/synthetic/vskd.pt", "models/synthetic/onnx"):
        assert (clone / out).exists(), out
    assert "Data and pipelines are up to date" in run(["dvc", "status"], clone)
    log = run(["dvc", "repro"], clone)
    assert "Running stage" not in log
    assert "Stage 'teacher@synthetic' didn't change, skipping" in log
    assert "Data and pipelines are up to date" in log


def test_dvc_repro_killed_mid_stage_is_rerun_and_loses_nothing(tiny_repo):
    """SIGKILL to `dvc repro` (and its stage) while student@synthetic runs: DVC has deleted the
    stage's outputs and recorded nothing new, so `dvc status` reports the stage and the next
    `dvc repro` restores the last good output from the cache; trained again, the same seed
    gives the same student.pt, and dvc.lock is unchanged."""
    import signal
    import time

    root, _ = tiny_repo
    lock_before = (root / "dvc.lock").read_text()
    model = root / "models" / "synthetic" / "student.pt"
    env = {**os.environ, "DVC_NO_ANALYTICS": "1"}
    proc = subprocess.Popen(["dvc", "repro", "-f", "student@synthetic"], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while model.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)                                     # the stage's python is starting or training
    assert proc.poll() is None, "dvc repro ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not model.exists()
    status = run(["dvc", "status"], root)
    assert "student@synthetic" in status and "deleted" in status
    log = run(["dvc", "repro"], root)
    # The lock entry still names the last good student.pt, which the cache holds: DVC checks
    # it out instead of training again. Nothing else reruns.
    assert "Stage 'student@synthetic' is cached - skipping run, checking out outputs" in log
    assert "Running stage" not in log and model.exists()
    assert "Data and pipelines are up to date" in run(["dvc", "status"], root)
    # Trained again (forced), the same seed gives the same file: dvc.lock does not change.
    log = run(["dvc", "repro", "-f", "student@synthetic"], root)
    assert "Running stage 'student@synthetic'" in log
    assert (root / "dvc.lock").read_text() == lock_before
