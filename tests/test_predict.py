"""``python -m vskd predict``: reading recordings, sliding windows, both model formats, errors."""

import json

import numpy as np
import pytest
import torch
import yaml

from tests.conftest import SHARED
from tests.export_helpers import CLASSES, IMAGE, WINDOW, export_tiny, recordings, tiny_student, write_mat
from vskd.__main__ import main
from vskd.checkpoints import save_checkpoint
from vskd.cost import torch_threads
from vskd.predict import format_table, read_csv, read_recording, window_starts


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The same tiny student as an ONNX export and as a .pt checkpoint with its params.yaml."""
    root = tmp_path_factory.mktemp("models")
    model = tiny_student()
    export_tiny(root / "tiny.onnx", model)
    save_checkpoint(root / "tiny.pt", kind="gaf_student", config={"num_classes": len(CLASSES), "feature_dim": 8},
                    state_dict=model.state_dict(), class_names=CLASSES, epoch=1, selection="last")
    (root / "params.yaml").write_text(yaml.safe_dump(
        {"gaf": {"image_size": IMAGE, "method": "summation"}, "export": {"window": WINDOW, "sample_rate": 50}}))
    return root


def run_cli(capsys, *argv):
    code = main(["predict", *map(str, argv)])
    out, err = capsys.readouterr()
    return code, out, err


def write_csv(path, acc, header="t,x,y,z", rate=50.0, time=True):
    cols = [np.arange(len(acc)) / rate, acc[:, 0], acc[:, 1], acc[:, 2]] if time else [acc[:, 0], acc[:, 1], acc[:, 2]]
    np.savetxt(path, np.column_stack(cols), delimiter=",", header=header or "", comments="", fmt="%.6f")


# --- Reading recordings --------------------------------------------------------------------

def test_read_csv_accepted_formats(tmp_path):
    acc = np.arange(30, dtype=float).reshape(10, 3) / 10
    cases = {
        "plain.csv": "\n".join(",".join(f"{v:g}" for v in row) for row in acc),
        "timed.csv": "\n".join(f"{i / 100:g}," + ",".join(f"{v:g}" for v in row) for i, row in enumerate(acc)),
        "header.csv": "# watch export\nTimestamp,gyro,X,Y,Z\n"
                      + "\n".join(f"{i * 0.02:g},9," + ",".join(f"{v:g}" for v in row) for i, row in enumerate(acc)),
    }
    rates = {"plain.csv": None, "timed.csv": 100.0, "header.csv": 50.0}
    for name, text in cases.items():
        (tmp_path / name).write_text(text + "\n\n")
        got, rate = read_csv(tmp_path / name)
        np.testing.assert_allclose(got, acc, err_msg=name)
        assert rate == (None if rates[name] is None else pytest.approx(rates[name])), name


@pytest.mark.parametrize("text,message", [
    ("a,b,c\n1,2,3\n", r"no column\(s\) \['x', 'y', 'z'\]"),
    ("1,2\n3,4\n", "line 1 has 2 columns"),
    ("x,y,z\n1,2,3\n1,nan,3\n", "line 3 has NaN"),
    ("x,y,z\n1,2,3\n1,two,3\n", "line 3 is not numeric"),
    ("t,x,y,z\n0,1,2,3\n0,1,2,3\n", "time column must increase"),
    ("x,y,z\n1,2,3\n", "1 sample"),
])
def test_read_csv_errors_name_the_file(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        read_csv(path)
    assert str(path) in str(info.value)


def test_read_recording_mat_and_bad_inputs(tmp_path):
    acc = recordings(actions=(1,), subjects=(1,))[0][1]
    write_mat(tmp_path / "a1_s1_t1_inertial.mat", acc)
    got, rate = read_recording(tmp_path / "a1_s1_t1_inertial.mat")
    np.testing.assert_allclose(got, acc)
    assert rate is None
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        read_recording(tmp_path / "missing.csv")
    (tmp_path / "rec.txt").write_text("1,2,3\n")
    with pytest.raises(ValueError, match="rec.txt.*unsupported"):
        read_recording(tmp_path / "rec.txt")


def test_window_starts_cover_the_recording():
    assert window_starts(1000, 200, 100) == [0, 100, 200, 300, 400, 500, 600, 700, 800]
    assert window_starts(1050, 200, 100) == [0, 100, 200, 300, 400, 500, 600, 700, 800, 850]
    assert window_starts(201, 200, 500) == [0, 1]


# --- The CLI -------------------------------------------------------------------------------

def test_predict_mat_with_onnx_model(models, tmp_path, capsys):
    acc = recordings(actions=(1,), subjects=(2,))[0][1]          # about 3 s: one 5 s window
    write_mat(tmp_path / "a1_s2_t1_inertial.mat", acc)
    code, out, _ = run_cli(capsys, models / "tiny.onnx", tmp_path / "a1_s2_t1_inertial.mat", "--json",
                           "--window", 5)
    assert code == 0
    result = json.loads(out)
    assert result["model"] == "onnx" and result["samples"] == len(acc) and result["rate_hz"] == 50.0
    (window,) = result["windows"]
    assert (window["start_s"], window["samples"]) == (0.0, len(acc))
    assert list(window["probabilities"]) == CLASSES
    assert sum(window["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert window["label"] == max(window["probabilities"], key=window["probabilities"].get)
    code, out, _ = run_cli(capsys, models / "tiny.onnx", tmp_path / "a1_s2_t1_inertial.mat", "--window", 5)
    assert code == 0 and f"label: {window['label']}" in out and "1 window(s)" in out


def test_predict_real_utd_mhad_file(models, capsys):
    path = SHARED / "fixtures" / "utd_mhad" / "a1_s1_t1_inertial.mat"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    code, out, _ = run_cli(capsys, models / "tiny.onnx", path, "--json", "--window", 4)
    assert code == 0 and json.loads(out)["samples"] == 160


def test_predict_long_csv_slides_windows(models, tmp_path, capsys):
    acc = np.concatenate([a for _, a in recordings(subjects=(1, 2, 3))])[:1050]   # 21 s at 50 Hz
    assert len(acc) == 1050
    write_csv(tmp_path / "long.csv", acc)
    code, out, _ = run_cli(capsys, models / "tiny.onnx", tmp_path / "long.csv", "--window", 4, "--stride", 2,
                           "--json")
    assert code == 0
    windows = json.loads(out)["windows"]
    assert len(windows) == 10                                   # 0, 2, ..., 16 s, then 17-21 s
    assert [w["start_s"] for w in windows] == [0, 2, 4, 6, 8, 10, 12, 14, 16, 17]
    assert all(w["samples"] == 200 for w in windows) and windows[-1]["end_s"] == 21.0
    # The default window is the model's input, 64 samples at 50 Hz here; stride half of it.
    code, out, _ = run_cli(capsys, models / "tiny.onnx", tmp_path / "long.csv")
    assert code == 0 and f"{len(window_starts(1050, 64, 32))} window(s) of 1.28 s" in out
    assert out.count("\n") == 2 + len(window_starts(1050, 64, 32))  # header lines + one per window


def test_rate_comes_from_the_csv_time_column(models, tmp_path, capsys):
    acc = np.concatenate([a for _, a in recordings(subjects=(1,))])[:400]
    write_csv(tmp_path / "fast.csv", acc, rate=100.0)
    code, out, _ = run_cli(capsys, models / "tiny.onnx", tmp_path / "fast.csv", "--window", 1, "--json")
    result = json.loads(out)
    assert result["rate_hz"] == pytest.approx(100.0) and result["windows"][0]["samples"] == 100
    code, out, _ = run_cli(capsys, models / "tiny.onnx", tmp_path / "fast.csv", "--window", 1, "--rate", 50,
                           "--json")
    assert json.loads(out)["windows"][0]["samples"] == 50


def test_pt_checkpoint_agrees_with_onnx_on_a_full_window(models, tmp_path, capsys, monkeypatch):
    # A clip of exactly the graph's input length: the ONNX graph does not resample it, so the
    # torch path (vskd.gaf on the clip) and the exported graph see the same image.
    acc = recordings(actions=(8,), subjects=(1,))[0][1][:WINDOW]
    write_csv(tmp_path / "clip.csv", acc, header=None, time=False)
    results = {}
    for name in ("tiny.onnx", "tiny.pt"):
        code, out, err = run_cli(capsys, models / name, tmp_path / "clip.csv", "--json",
                                 "--params", models / "params.yaml")
        assert code == 0, err
        results[name] = json.loads(out)["windows"][0]["probabilities"]
    np.testing.assert_allclose(list(results["tiny.pt"].values()), list(results["tiny.onnx"].values()), atol=1e-4)
    monkeypatch.chdir(tmp_path)  # no params.yaml here: a .pt checkpoint needs its GAF settings
    code, _, err = run_cli(capsys, models / "tiny.pt", tmp_path / "clip.csv")
    assert code == 1 and "tiny.pt" in err and "GAF settings" in err


def _one_window_result(probabilities: dict) -> dict:
    """A predict_file result of one 3 s window at 50 Hz with these class probabilities."""
    label = max(probabilities, key=probabilities.get)
    return {"file": "rec.csv", "model": "onnx", "samples": 150, "rate_hz": 50.0, "duration_s": 3.0,
            "window_s": 4.0, "stride_s": 2.0,
            "windows": [{"start_s": 0.0, "end_s": 3.0, "samples": 150, "label": label,
                         "probability": probabilities[label], "probabilities": probabilities}]}


def test_format_table_one_window_shows_only_the_top_classes():
    # --top K lists the K most probable classes, as the many-window table does (label + K - 1).
    result = _one_window_result({"wave": 0.1, "clap": 0.5, "squat": 0.05, "jog": 0.25, "throw_far": 0.1})
    header = "rec.csv: 150 samples at 50 Hz (3.00 s), 1 window(s) of 4.00 s (onnx model)"
    assert format_table(result, top=2).splitlines() == [
        header,
        "label: clap (p = 0.500)",
        "  clap  0.500",
        "  jog   0.250",
    ]
    assert format_table(result, top=3).splitlines()[2:] == ["  clap  0.500", "  jog   0.250", "  wave  0.100"]
    assert format_table(result, top=1).splitlines() == [header, "label: clap (p = 0.500)", "  clap  0.500"]
    assert len(format_table(result, top=9).splitlines()) == 2 + 5  # K above the class count: every class


def test_predict_top_option_on_one_window(models, tmp_path, capsys):
    acc = recordings(actions=(1,), subjects=(2,))[0][1]          # about 3 s: one 5 s window
    write_csv(tmp_path / "clip.csv", acc)
    code, out, _ = run_cli(capsys, models / "tiny.onnx", tmp_path / "clip.csv", "--window", 5, "--json")
    probabilities = json.loads(out)["windows"][0]["probabilities"]
    best = sorted(probabilities, key=probabilities.get, reverse=True)
    code, out, _ = run_cli(capsys, models / "tiny.onnx", tmp_path / "clip.csv", "--window", 5, "--top", 2)
    lines = out.splitlines()
    assert code == 0 and "1 window(s)" in lines[0] and lines[1].startswith(f"label: {best[0]} ")
    assert [line.split()[0] for line in lines[2:]] == best[:2]


def test_predict_errors_are_one_line_naming_the_file(models, tmp_path, capsys):
    code, out, err = run_cli(capsys, models / "tiny.onnx", tmp_path / "nope.mat")
    assert code == 1 and out == "" and err.startswith("predict: error: ") and "nope.mat" in err
    (tmp_path / "nan.csv").write_text("x,y,z\n0,0,1\nnan,0,1\n0,0,1\n")
    code, _, err = run_cli(capsys, models / "tiny.onnx", tmp_path / "nan.csv")
    assert code == 1 and "nan.csv" in err and "NaN" in err
    (tmp_path / "bad.mat").write_bytes(b"not a mat file")
    code, _, err = run_cli(capsys, models / "tiny.onnx", tmp_path / "bad.mat")
    assert code == 1 and "bad.mat" in err
    (tmp_path / "model.onnx").write_bytes(b"garbage")
    code, _, err = run_cli(capsys, tmp_path / "model.onnx", tmp_path / "nan.csv")
    assert code == 1 and "model.onnx" in err
    torch.save({"kind": "trn_teacher"}, tmp_path / "teacher.pt")
    code, _, err = run_cli(capsys, tmp_path / "teacher.pt", tmp_path / "nan.csv")
    assert code == 1 and "not a GAF student checkpoint" in err


def test_python_dash_m_entry_point(models, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    write_csv(tmp_path / "clip.csv", recordings(actions=(1,), subjects=(1,))[0][1])
    result = subprocess.run([sys.executable, "-m", "vskd", "predict", str(models / "tiny.onnx"),
                             str(tmp_path / "clip.csv")], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "window(s) of 1.28 s (onnx model)" in result.stdout and "start_s" in result.stdout
