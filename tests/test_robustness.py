"""Robustness: bad inputs, atomic outputs, resume after SIGKILL, determinism, DDP (torchrun).

Each row of docs/robustness.md names its test: here, or in
the test file that covered it before. Stages run as DVC runs them (``stages/<name>.py
synthetic`` in a workspace holding params.yaml), on the tiny configuration of
tests/test_pipeline_e2e.py.
"""

from __future__ import annotations

import json
import os
import runpy
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import h5py
import numpy as np
import pytest
import scipy.io
import torch
import yaml

from tests.conftest import REPO
from tests.test_pipeline_e2e import TINY
from vskd.datasets import synthetic
from vskd.gaf import build_gaf_store
from vskd.index import Sample
from vskd.params import set_dotted
from vskd.stage import free_port

STAGES = REPO / "stages"
DS = "data/synthetic"


def write_params(root: Path, overrides: dict | None = None) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    for key, value in {**TINY, **(overrides or {})}.items():
        set_dotted(params, key, value)
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return params


@pytest.fixture(scope="module")
def raw_tree(tmp_path_factory):
    """The tiny synthetic recordings (3 actions x 2 subjects x 2 trials), made once."""
    raw = tmp_path_factory.mktemp("raw") / "raw"
    synthetic.generate(raw, **TINY["synthetic.download"])
    return raw


def workspace(root: Path, raw_tree: Path, overrides: dict | None = None) -> Path:
    shutil.copytree(raw_tree, root / DS / "raw")
    write_params(root, overrides)
    return root


@pytest.fixture
def stage(monkeypatch, capsys):
    """Run ``stages/<name>.py DATASET`` in this process, in ``root``: (exit code, stdout, stderr)."""
    def call(name: str, root: Path, dataset: str = "synthetic"):
        monkeypatch.chdir(root)
        monkeypatch.setattr(sys, "argv", [f"stages/{name}.py", dataset])
        code = 0
        try:
            runpy.run_path(str(STAGES / f"{name}.py"), run_name="__main__")
        except SystemExit as exc:
            code = exc.code
        out = capsys.readouterr()
        return code, out.out, out.err
    return call


def subprocess_env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "VSKD_PROGRESS": "0"}


def ids_of(store: Path) -> list[str]:
    with h5py.File(store) as h5:
        return [v.decode() for v in h5["index/ids"][()]]


# --- bad input ----------------------------------------------------------------------------

def write_video_without_frames(path: Path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=15)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()               # header and trailer, no frame
        for packet in stream.encode():
            out.mux(packet)


BAD_VIDEOS = {
    "corrupt": (lambda p: p.write_bytes(b"RIFF\x00\x00\x00\x00AVI LIST garbage" * 10), "Replace the file"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[:200]), "download it again"),
    "no_frames": (lambda p: p.unlink() or write_video_without_frames(p), "decodes to 0 frames. The file is empty or corrupt: download it again"),
}


@pytest.mark.parametrize("case", BAD_VIDEOS)
def test_bad_video_stops_frames_or_is_skipped_and_counted(case, tmp_path, raw_tree, stage):
    root = workspace(tmp_path, raw_tree)
    video = root / DS / "raw" / "RGB" / "a2_s1_t1_color.avi"
    damage, advice = BAD_VIDEOS[case]
    damage(video)

    code, out, err = stage("frames", root)
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("frames@synthetic: error: sample a2_s1_t1")     # the sample
    assert str(Path(DS) / "raw" / "RGB" / "a2_s1_t1_color.avi") in line     # the file
    assert advice in line and "runtime.on_bad_sample: skip" in line        # what to do
    assert not (root / DS / "frames.h5").exists()
    assert not list((root / DS).glob(".frames.h5.tmp-*"))

    write_params(root, {"runtime.on_bad_sample": "skip"})
    code, out, err = stage("frames", root)
    assert code == 0
    assert "videos=11" in out and "skipped=1 (a2_s1_t1)" in out
    assert "warning: skipped sample a2_s1_t1" in err
    with h5py.File(root / DS / "frames.h5") as h5:
        assert "a2_s1_t1" in json.loads(h5.attrs["skipped"])
        assert len(h5["frames"]) == 11
    assert "a2_s1_t1" not in ids_of(root / DS / "frames.h5")


def _d_iner(rows: int = 80, fill=None) -> np.ndarray:
    rng = np.random.default_rng(0)
    data = rng.normal(size=(rows, 6))
    if fill is not None:
        fill(data)
    return data


BAD_SENSORS = {
    "not_a_mat_file": (b"MATLAB 5.0 garbage", "not a readable MATLAB file"),
    "no_d_iner": ({"acc": _d_iner()}, "no variable 'd_iner'"),
    "wrong_shape": ({"d_iner": np.zeros((80, 4))}, "'d_iner' has shape (80, 4)"),
    "one_row": ({"d_iner": np.zeros((1, 6))}, "'d_iner' has shape (1, 6)"),
    "nan": ({"d_iner": _d_iner(fill=lambda d: d.__setitem__((5, 1), np.nan))}, "NaN or inf"),
    "inf": ({"d_iner": _d_iner(fill=lambda d: d.__setitem__((7, 0), np.inf))}, "NaN or inf"),
    "dead_sensor": ({"d_iner": np.ones((80, 6))}, "all three accelerometer axes are constant"),
}


@pytest.mark.parametrize("case", BAD_SENSORS)
def test_bad_sensor_file_stops_gaf_or_is_skipped_and_counted(case, tmp_path, raw_tree, stage):
    root = workspace(tmp_path, raw_tree)
    mat = root / DS / "raw" / "Inertial" / "a3_s2_t2_inertial.mat"
    content, problem = BAD_SENSORS[case]
    if isinstance(content, bytes):
        mat.write_bytes(content)
    else:
        scipy.io.savemat(mat, content)

    code, out, err = stage("gaf", root)
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("gaf@synthetic: error: sample a3_s2_t2")
    assert "a3_s2_t2_inertial.mat" in line and problem in line
    assert "runtime.on_bad_sample: skip" in line
    assert not (root / DS / "gaf.h5").exists()

    write_params(root, {"runtime.on_bad_sample": "skip"})
    code, out, err = stage("gaf", root)
    assert code == 0 and "trials=11" in out and "skipped=1 (a3_s2_t2)" in out
    assert "a3_s2_t2" not in ids_of(root / DS / "gaf.h5")


def test_constant_sensor_axis_is_encoded_and_counted(tmp_path, raw_tree, stage):
    root = workspace(tmp_path, raw_tree)
    mat = root / DS / "raw" / "Inertial" / "a1_s2_t1_inertial.mat"
    data = scipy.io.loadmat(mat)["d_iner"]
    data[:, 2] = 0.98                           # z reads the same value throughout
    scipy.io.savemat(mat, {"d_iner": data})
    code, out, err = stage("gaf", root)
    assert code == 0 and "trials=12" in out and "constant_axis=1 (a1_s2_t1)" in out
    with h5py.File(root / DS / "gaf.h5") as h5:
        row = ids_of(root / DS / "gaf.h5").index("a1_s2_t1")
        image = h5["gaf"][row]
    # a constant axis is one value: under gaf.scale tanh it maps to x = tanh(0.98 g / 2 g),
    # so its GASF is the constant 2x^2 - 1 (under axis scaling x = 0 and the channel is -1)
    x = np.tanh(0.98 / 2.0)
    np.testing.assert_allclose(image[2], 2 * x * x - 1, atol=1e-5)
    assert np.isfinite(image).all() and image[0].std() > 0.1


def test_accelerometer_in_metres_per_second_squared_stops_the_tanh_gaf(tmp_path, raw_tree, stage):
    root = workspace(tmp_path, raw_tree)
    for mat in (root / DS / "raw" / "Inertial").glob("*_inertial.mat"):
        data = scipy.io.loadmat(mat)["d_iner"]
        data[:, :3] *= 9.81                      # the recorder wrote m/s^2, not g
        scipy.io.savemat(mat, {"d_iner": data})
    code, out, err = stage("gaf", root)
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert "gaf.scale tanh expects the accelerometer in g" in line and "_inertial.mat" in line
    assert "divide by 9.81" in line
    assert not (root / DS / "gaf.h5").exists()


@pytest.mark.parametrize("missing, says", [("RGB/a2_s2_t2_color.avi", "a2_s2_t2 has no video"),
                                           ("Inertial/a1_s1_t2_inertial.mat", "a1_s1_t2 has no sensor")])
@pytest.mark.parametrize("mode", ["error", "skip"])
def test_recording_missing_one_modality_is_named(missing, says, mode, tmp_path, raw_tree, stage):
    """An incomplete copy is an error in both modes: the fix is the copy, not the sample."""
    root = workspace(tmp_path, raw_tree, {"runtime.on_bad_sample": mode})
    (root / DS / "raw" / missing).unlink()
    for name in ("frames", "gaf"):
        code, out, err = stage(name, root)
        assert code == 1
        assert says in err and "Restore the missing files or remove the incomplete recordings" in err
        assert not list((root / DS).glob("*.h5"))


def test_unknown_dataset_name_is_one_line(tmp_path, raw_tree, stage):
    root = workspace(tmp_path, raw_tree)
    code, out, err = stage("frames", root, dataset="imagenet")
    assert code == 1
    assert err.strip() == ("frames@imagenet: error: unknown dataset 'imagenet'. "
                           "Known datasets: berkeley_mhad, mmact, synthetic, utd_mhad.")


@pytest.mark.parametrize("key, value, message", [
    ("alpha", -1.0, "'alpha' must be >= 0, got -1.0"),
    ("beta", -0.5, "'beta' must be >= 0"),
    ("gamma", -2, "'gamma' must be >= 0"),
    ("distill.angle_weight", -1, "'distill.angle_weight' must be >= 0"),
    ("distill.semantic_scale", "batch", "'distill.semantic_scale' must be none (the paper's L_S) or teacher"),
    ("temperature", 0, "'temperature' must be > 0, got 0"),
    ("temperature", -4.0, "'temperature' must be > 0"),
    ("gaf.image_size", 8, "'gaf.image_size' must be >= 16, got 8"),
    ("teacher.input_size", 16, "'teacher.input_size' must be >= 32"),
    ("frames.short_side", 8, "'frames.short_side' must be >= 16"),
    ("seeds", [], "'seeds' must be a non-empty list of integers"),
    ("seeds", [0, "one"], "'seeds' must be a non-empty list of integers"),
    ("seed", -1, "'seed' must be >= 0"),
    ("student.lr", -0.001, "'student.lr' must be > 0"),
    ("student.batch_size", 1, "'student.batch_size' must be >= 2"),
    ("student.epochs", 0, "'student.epochs' must be > 0"),
    ("runtime.device", "tpu", "'runtime.device' must be auto, cpu or cuda"),
    ("runtime.on_bad_sample", "ignore", "'runtime.on_bad_sample' must be 'error' or 'skip'"),
    ("runtime.distributed.nproc_per_node", 0, "'runtime.distributed.nproc_per_node' must be an integer >= 1"),
    ("runtime.resume", "yes", "'runtime.resume' must be true or false"),
    ("runtime.resume_every_s", -1, "'runtime.resume_every_s' must be a number of seconds >= 0"),
])
def test_invalid_hyperparameters_are_rejected_at_stage_start(key, value, message, tmp_path, stage):
    # No data at all: with valid params the stage would fail on the missing gaf.h5 instead.
    write_params(tmp_path, {key: value})
    code, out, err = stage("distill", tmp_path)
    assert code == 1
    assert err.strip().startswith("distill@synthetic: error: params.yaml: '") and message in err
    assert not (tmp_path / "models").exists() and not (tmp_path / "metrics").exists()


def test_skip_mode_runs_the_whole_chain_and_counts_every_skip(tmp_path, raw_tree, stage):
    """A corrupt video (train), a NaN sensor file (test) and two 2-frame videos, shorter than
    the 3 segments (one train, one test): with on_bad_sample: error each stops its stage;
    with skip every stage runs, and the summary lines and the metrics JSON count them."""
    from tests.test_frames import COLOURS, write_video

    root = workspace(tmp_path, raw_tree)
    raw = root / DS / "raw"
    (raw / "RGB" / "a1_s1_t1_color.avi").write_bytes(b"\x00" * 100)
    scipy.io.savemat(raw / "Inertial" / "a2_s2_t1_inertial.mat",
                     {"d_iner": _d_iner(fill=lambda d: d.__setitem__((3, 2), np.nan))})
    short = ["a3_s1_t2", "a1_s2_t2"]
    for sample in short:
        write_video(raw / "RGB" / f"{sample}_color.avi", COLOURS[:2], width=80, height=60)
    write_params(root, {"runtime.on_bad_sample": "skip"})
    code, out, _ = stage("frames", root)
    assert code == 0 and "skipped=1 (a1_s1_t1)" in out and "min_frames=2" in out
    code, out, _ = stage("gaf", root)
    assert code == 0 and "skipped=1 (a2_s2_t1)" in out

    write_params(root, {"runtime.on_bad_sample": "error"})
    code, out, err = stage("teacher", root)
    assert code == 1
    assert "2 video(s) have fewer frames than the 3 segments: a1_s2_t2 (2 frames), a3_s1_t2 (2 frames)" in err
    assert "frames.h5" in err and "Lower '<dataset>.segments'" in err and "on_bad_sample: skip" in err
    assert not (root / "models").exists()

    write_params(root, {"runtime.on_bad_sample": "skip"})
    code, out, _ = stage("teacher", root)
    assert code == 0 and "train=4" in out and "skipped=2 (a1_s2_t2, a3_s1_t2)" in out
    outputs = ids_of(root / "models" / "synthetic" / "teacher_outputs.h5")
    assert len(outputs) == 9 and not {"a1_s1_t1", *short} & set(outputs)
    code, out, _ = stage("student", root)
    assert code == 0 and "train=6" in out                  # the sensor student has them all
    code, out, _ = stage("distill", root)
    assert code == 0 and "train=4" in out and "no_teacher_output=2 (a1_s1_t1, a3_s1_t2)" in out
    code, out, _ = stage("minirocket", root)             # the sensor reference: all gaf.h5 samples
    assert code == 0 and "train=6" in out and "test=5" in out
    code, out, _ = stage("evaluate", root)
    assert code == 0
    metrics = json.loads((root / "metrics" / "synthetic.json").read_text())
    # test: subject 2's 6 trials, less the NaN sensor (not in gaf.h5) and the short video
    assert metrics["split"] == {"name": "cross_subject", "train": 6, "val": 0, "test": 4, "skipped": 1}


# --- atomic outputs -----------------------------------------------------------------------

KILL_DURING_DECODE = r"""
import os, runpy, signal, sys
import vskd.frames as frames
original, calls = frames.decode_video, [0]
def decode_then_die(*args, **kwargs):
    calls[0] += 1
    if calls[0] == 5:                      # four videos are in the temporary file
        os.kill(os.getpid(), signal.SIGKILL)
    return original(*args, **kwargs)
frames.decode_video = decode_then_die
script = sys.argv[1]
sys.argv = [script, "synthetic"]
runpy.run_path(script, run_name="__main__")
"""


def test_stage_killed_mid_write_leaves_no_valid_output(tmp_path, raw_tree, stage):
    root = workspace(tmp_path, raw_tree)
    data = root / DS

    def killed_frames_run():
        result = subprocess.run([sys.executable, "-c", KILL_DURING_DECODE, str(STAGES / "frames.py")],
                                cwd=root, env=subprocess_env(), capture_output=True, text=True, timeout=120)
        assert result.returncode == -signal.SIGKILL, result.stderr

    killed_frames_run()
    assert not (data / "frames.h5").exists()
    partial = list(data.glob(".frames.h5.tmp-*"))
    assert len(partial) == 1 and partial[0].stat().st_size > 0   # half written, under a hidden name
    code, out, err = stage("teacher", root)                      # a later stage does not take it
    assert code == 1 and "frames.h5: not found. Run `dvc repro frames`" in err

    code, out, _ = stage("frames", root)                         # the rerun clears the leftover
    assert code == 0 and not list(data.glob(".frames.h5.tmp-*"))
    complete = (data / "frames.h5").read_bytes()
    killed_frames_run()                                          # a killed rewrite...
    assert (data / "frames.h5").read_bytes() == complete         # ...leaves the previous file whole


# --- resume -------------------------------------------------------------------------------

RESUME_TINY = {"synthetic.segments": 4,          # 6 pairs of 4 segments, 3 drawn: TRN's generator is used
               "teacher.epochs": 3, "teacher.lr_steps": [2], "teacher.dropout": 0.5,
               "student.epochs": 3, "runtime.resume_every_s": 0}  # a resume file after every epoch


@pytest.fixture(scope="module")
def trained(tmp_path_factory, raw_tree):
    """frames.h5, gaf.h5 and an uninterrupted teacher run (the reference)."""
    root = workspace(tmp_path_factory.mktemp("trained"), raw_tree, RESUME_TINY)
    for name in ("frames", "gaf", "teacher"):
        result = subprocess.run([sys.executable, str(STAGES / f"{name}.py"), "synthetic"], cwd=root,
                                env=subprocess_env(), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
    return root


def copy_inputs(src: Path, dst: Path, with_teacher_outputs: bool = False) -> Path:
    (dst / DS).mkdir(parents=True)
    shutil.copy2(src / "params.yaml", dst / "params.yaml")
    for name in ("frames.h5", "gaf.h5"):
        shutil.copy2(src / DS / name, dst / DS / name)
    if with_teacher_outputs:
        (dst / "models" / "synthetic").mkdir(parents=True)
        shutil.copy2(src / "models" / "synthetic" / "teacher_outputs.h5", dst / "models" / "synthetic")
    return dst


def assert_same_run(a: Path, b: Path, model: str, live: str) -> None:
    """Bit-identical weights and identical per-epoch logs and metrics JSON."""
    sa = torch.load(a / "models" / "synthetic" / model, weights_only=True)
    sb = torch.load(b / "models" / "synthetic" / model, weights_only=True)
    assert sa["epoch"] == sb["epoch"]
    for key, value in sa["state_dict"].items():
        assert torch.equal(value, sb["state_dict"][key]), key
    la, lb = a / "metrics" / "synthetic" / "train" / live, b / "metrics" / "synthetic" / "train" / live
    files = sorted(p.relative_to(la) for p in la.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(lb) for p in lb.rglob("*") if p.is_file())
    assert Path("metrics.json") in files
    for f in files:
        assert (la / f).read_text() == (lb / f).read_text(), f


def test_teacher_killed_mid_run_resumes_to_the_same_result(trained, tmp_path):
    """SIGKILL from outside as soon as epoch 1's checkpoint exists, rerun: the same weights,
    outputs, metrics JSON and per-epoch curves as the uninterrupted run (CPU)."""
    root = copy_inputs(trained, tmp_path)
    models = root / "models" / "synthetic"
    checkpoint = models / ".teacher.resume.pt"
    proc = subprocess.Popen([sys.executable, str(STAGES / "teacher.py"), "synthetic"], cwd=root,
                            env=subprocess_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the teacher ended before its first checkpoint could be seen"
    proc.kill()                                                    # SIGKILL
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert checkpoint.exists()
    assert not (models / "teacher.pt").exists() and not (models / "teacher_outputs.h5").exists()

    result = subprocess.run([sys.executable, str(STAGES / "teacher.py"), "synthetic"], cwd=root,
                            env=subprocess_env(), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "teacher: resumed from models/synthetic/.teacher.resume.pt after epoch " in result.stderr
    resumed = int(result.stderr.split("after epoch ")[1].split()[0])
    assert 1 <= resumed < 3                                        # it stopped mid-training
    assert f"resumed_after_epoch={resumed}" in result.stdout
    assert not checkpoint.exists()                                 # deleted once outputs are written
    assert_same_run(trained, root, "teacher.pt", "teacher")
    with h5py.File(trained / "models/synthetic/teacher_outputs.h5") as h5a, \
            h5py.File(models / "teacher_outputs.h5") as h5b:
        for name in ("logits", "features"):
            np.testing.assert_array_equal(h5a[name][()], h5b[name][()])


KILL_AFTER_EPOCH = r"""
import os, runpy, signal, sys
import vskd.resume as resume
original = resume.ResumeFile.save
def save_then_die(self, state):
    original(self, state)
    if state["epoch"] == int(os.environ["KILL_AFTER_EPOCH"]):
        os.kill(os.getpid(), signal.SIGKILL)
resume.ResumeFile.save = save_then_die
script = sys.argv[1]
sys.argv = [script, "synthetic"]
runpy.run_path(script, run_name="__main__")
"""


def run_stage(root: Path, name: str, kill_after_epoch: int | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, str(STAGES / f"{name}.py"), "synthetic"]
    env = subprocess_env()
    if kill_after_epoch is not None:
        command = [sys.executable, "-c", KILL_AFTER_EPOCH, str(STAGES / f"{name}.py")]
        env["KILL_AFTER_EPOCH"] = str(kill_after_epoch)
    return subprocess.run(command, cwd=root, env=env, capture_output=True, text=True, timeout=300)


def test_distill_killed_after_a_checkpoint_resumes_to_the_same_result(trained, tmp_path):
    """Killed (SIGKILL) right after epoch 2's checkpoint is written; the rerun continues with
    epoch 3 and ends where one uninterrupted run ends. Also: the same seed, run twice, gives
    identical metrics JSON and weights (CPU determinism)."""
    reference = copy_inputs(trained, tmp_path / "reference", with_teacher_outputs=True)
    assert run_stage(reference, "distill").returncode == 0
    again = copy_inputs(trained, tmp_path / "again", with_teacher_outputs=True)
    assert run_stage(again, "distill").returncode == 0
    assert_same_run(reference, again, "vskd.pt", "distill")          # determinism

    root = copy_inputs(trained, tmp_path / "killed", with_teacher_outputs=True)
    killed = run_stage(root, "distill", kill_after_epoch=2)
    assert killed.returncode == -signal.SIGKILL
    assert not (root / "models/synthetic/vskd.pt").exists()
    result = run_stage(root, "distill")
    assert result.returncode == 0, result.stderr
    assert "distill: resumed from models/synthetic/.distill.resume.pt after epoch 2 of 3" in result.stderr
    assert_same_run(reference, root, "vskd.pt", "distill")
    assert not (root / "models/synthetic/.distill.resume.pt").exists()


def test_resume_file_of_another_configuration_is_not_continued(trained, tmp_path):
    root = copy_inputs(trained, tmp_path)
    assert run_stage(root, "student", kill_after_epoch=1).returncode == -signal.SIGKILL
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["student"]["lr"] = 2 * params["student"]["lr"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run_stage(root, "student")
    assert result.returncode == 0
    assert "was written by another configuration" in result.stderr and "resumed" not in result.stdout


# --- scale-out: DDP with torchrun ---------------------------------------------------------

def write_gaf_workspace(root: Path) -> None:
    """A GAF store of 48 trials (3 classes x 4 subjects x 4 trials; a signal per class), so
    the student stage has 18 training, 6 validation and 24 test samples."""
    samples = [Sample(f"a{a}_s{s}_t{t}", a - 1, s, t, Path("unused.avi"), Path(f"a{a}_s{s}_t{t}"))
               for a in range(1, 4) for s in range(1, 5) for t in range(1, 5)]

    def read(path):
        a, s, t = (int(part[1:]) for part in path.name.split("_"))
        x = np.linspace(0, 2 * np.pi, 60)
        noise = np.random.default_rng(100 * a + 10 * s + t).normal(scale=0.1, size=(60, 3))
        return np.stack([np.sin(a * x), np.cos(a * x + s), a * x], 1) + noise

    build_gaf_store(samples, read, root / DS / "gaf.h5", 16, "summation", ["a", "b", "c"], "synthetic")
    write_params(root, {"synthetic.split": {"name": "cross_subject", "train_subjects": [1, 2],
                                            "train_trials": [1, 2], "val_fraction": 0.25},
                        "student.epochs": 2, "student.batch_size": 18, "teacher.feature_dim": 32,
                        # a small constant rate: Adam turns reduction-order noise (1e-7) into
                        # steps of up to lr, so at 1e-3 one process and DDP drift past 1e-6
                        "student.lr": 0.0002, "student.schedule": "constant"})


def curves(root: Path, name: str) -> list[float]:
    tsv = root / "metrics/synthetic/train/student/plots/metrics" / f"{name}.tsv"
    return [float(line.split("\t")[1]) for line in tsv.read_text().splitlines()[1:]]


def test_student_stage_under_torchrun_matches_one_process(tmp_path):
    """2 processes (gloo, 127.0.0.1) against 1, the same global batch (the whole training
    split: one Adam step per epoch, 2 epochs).

    Tolerances: per-epoch training and validation losses within 1e-4 (measured: 5.7e-7);
    BatchNorm running statistics within 1 % (measured 0.35 %); at most 0.01 % of the 11.2 M
    weights differ by more than 1e-6 (measured 100, 0.0009 %: Adam moves a weight by about
    lr = 2e-4 whatever its gradient, so a gradient that is zero up to rounding, summed in
    another order over two processes, can step the other way). Without synchronised
    BatchNorm the same comparison fails: losses differ by 3e-3 and 0.14, 2.1 M weights
    differ, running variances by a factor of up to 27.
    """
    single, ddp, by_params = tmp_path / "single", tmp_path / "ddp", tmp_path / "by_params"
    for root in (single, ddp, by_params):
        write_gaf_workspace(root)
    result = run_stage(single, "student")
    assert result.returncode == 0, result.stderr
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
                "--master_addr=127.0.0.1", f"--master_port={free_port()}", str(STAGES / "student.py"),
                "synthetic"]
    result = subprocess.run(torchrun, cwd=ddp, env=subprocess_env(), capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("student@synthetic: done") == 1          # rank 0 alone reports
    assert "processes=2" in result.stdout

    for name in ("train/loss", "val/loss", "val/accuracy"):
        np.testing.assert_allclose(curves(ddp, name), curves(single, name), rtol=0, atol=1e-4)
    a = torch.load(single / "models/synthetic/student.pt", weights_only=True)["state_dict"]
    b = torch.load(ddp / "models/synthetic/student.pt", weights_only=True)["state_dict"]
    from vskd.models.student import GAFStudent

    weights = {name for name, _ in GAFStudent(3, 32).named_parameters()}
    differing = total = 0
    for key, value in a.items():
        if not value.is_floating_point():
            assert torch.equal(value, b[key]), key                      # num_batches_tracked
        elif key in weights:
            differing += int(((value - b[key]).abs() > 1e-6).sum())
            total += value.numel()
        else:
            torch.testing.assert_close(b[key], value, rtol=1e-2, atol=1e-4)
    assert differing <= 1e-4 * total, f"{differing} of {total} weights differ"
    assert not (ddp / "models/synthetic/.student.resume.pt").exists()

    # The same run selected by params: the stage starts itself under torchrun.
    params = yaml.safe_load((by_params / "params.yaml").read_text())
    params["runtime"]["distributed"]["nproc_per_node"] = 2
    (by_params / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = run_stage(by_params, "student")
    assert result.returncode == 0, result.stderr
    assert "runtime.distributed.nproc_per_node=2" in result.stderr and "processes=2" in result.stdout
    c = torch.load(by_params / "models/synthetic/student.pt", weights_only=True)["state_dict"]
    for key, value in b.items():
        assert torch.equal(value, c[key]), key                          # DDP is deterministic too


@pytest.mark.parametrize("every_s, written_after", [(0, [1, 2, 3]), (3600, [3])])
def test_resume_file_is_written_at_most_every_resume_every_s_and_after_the_last_epoch(
        every_s, written_after, tmp_path, monkeypatch):
    from vskd.loop import cross_entropy_step, fit
    from vskd.resume import ResumeFile
    from vskd.runtime import Runtime

    saved = []
    monkeypatch.setattr(ResumeFile, "save", lambda self, state: saved.append(state["epoch"]))
    model = torch.nn.Linear(2, 2)
    data = torch.utils.data.TensorDataset(torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), torch.arange(4))
    batches = torch.utils.data.DataLoader(data, batch_size=4)
    rt = Runtime(resume_every_s=every_s)
    fit(model, cross_entropy_step(model), lambda: {}, batches, torch.optim.SGD(model.parameters(), 0.1), 3,
        None, runtime=rt, resume=ResumeFile(tmp_path / "m.pt", "student", {}, rt))
    assert saved == written_after
