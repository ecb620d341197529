"""The shipped student: GAF in the graph, ONNX export, int8, cost counting, the export stage."""

import json

import numpy as np
import onnx
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from tests.conftest import REPO, SHARED
from tests.export_helpers import CLASSES, IMAGE, WINDOW, export_tiny, recordings, tiny_student, write_mat
from vskd.cost import count_macs, count_params, onnx_session, torch_threads
from vskd.datasets.resample import resample_to_length
from vskd.export import (GAFLayer, GAFStudentPipeline, check_params, onnx_metadata, quantize_int8, resize_matrix,
                         run_export, run_onnx, run_torch)
from vskd.gaf import accelerometer_to_gaf
from vskd.params import ParamsError


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread here: on a shared CPU two threads can run these small convolutions 20x slower."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    pipeline = export_tiny(path)
    return path, pipeline


# --- MAC counting --------------------------------------------------------------------------

def test_count_macs_hand_computed():
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1),            # out 4 x 5 x 5 = 100 values, 2 * 3 * 3 = 18 MACs each
        nn.BatchNorm2d(4), nn.ReLU(),             # not counted
        nn.Conv2d(4, 6, 3, stride=2, groups=2),   # out 6 x 2 x 2 = 24 values, (4 / 2) * 9 = 18 each
        nn.Flatten(),
        nn.Linear(24, 7),                         # 7 outputs, 24 MACs each
    )
    x = torch.randn(1, 2, 5, 5)
    assert count_macs(model, x) == 100 * 18 + 24 * 18 + 7 * 24
    assert count_macs(model, torch.randn(3, 2, 5, 5)) == 3 * (100 * 18 + 24 * 18 + 7 * 24)  # whole batch
    assert count_params(model) == (2 * 9 * 4 + 4) + 8 + (2 * 9 * 6 + 6) + (24 * 7 + 7)
    assert model.training  # restored


def test_count_macs_resnet18_and_gaf_layer():
    import torchvision

    # The figure every counter reports for torchvision's ResNet18 at 224 px: 1.814 GMACs.
    assert count_macs(torchvision.models.resnet18(), torch.randn(1, 3, 224, 224)) == 1_814_073_344
    pipeline = GAFStudentPipeline(tiny_student(), WINDOW, IMAGE)
    acc = torch.randn(1, WINDOW, 3)
    gaf = 3 * (2 * WINDOW * IMAGE + 2 * IMAGE * IMAGE)  # two resizes, two outer products per axis
    assert count_macs(pipeline.gaf, acc) == gaf
    assert count_macs(pipeline, acc) == gaf + count_macs(pipeline.student, pipeline.gaf(acc))


# --- GAF in the graph ----------------------------------------------------------------------

@pytest.mark.parametrize("n,size", [(156, 64), (200, 16), (40, 64), (64, 64)])
def test_resize_matrix_is_the_antialiased_resize(n, size):
    g = torch.randn(1, 2, n, n, dtype=torch.float64)
    r = torch.tensor(resize_matrix(n, size))  # a copy: the cached matrix is read-only
    expected = g if n == size else F.interpolate(g, size=(size, size), mode="bilinear", align_corners=False,
                                                 antialias=True)
    torch.testing.assert_close(r @ g @ r.T, expected, atol=1e-12, rtol=0)


def _real_recordings():
    recs = [acc for _, acc in recordings(actions=(1, 9), subjects=(1, 3))]
    fixtures = SHARED / "fixtures" / "utd_mhad"
    if fixtures.is_dir():
        from vskd.datasets.utd_mhad import read_accelerometer

        recs += [read_accelerometer(p) for p in sorted(fixtures.glob("*_inertial.mat"))]
    return recs


@pytest.mark.parametrize("method, scale", [("summation", "axis"), ("difference", "axis"),
                                           ("summation", "joint"), ("difference", "joint"),
                                           ("summation", "tanh"), ("summation", "sigmoid")])
def test_gaf_layer_equals_vskd_gaf_on_recordings(method, scale):
    for acc in _real_recordings():
        # at the recording's own length (the training image) ...
        layer = GAFLayer(len(acc), 64, method, scale)
        image = layer(torch.from_numpy(acc).float()[None])[0].numpy()
        np.testing.assert_allclose(image, accelerometer_to_gaf(acc, 64, method, scale), atol=1e-5, rtol=0)
        # ... and resampled to a fixed window, as the exported graph sees it
        clip = resample_to_length(acc, 200)
        image = GAFLayer(200, 64, method, scale)(torch.from_numpy(clip).float()[None])[0].numpy()
        np.testing.assert_allclose(image, accelerometer_to_gaf(clip, 64, method, scale), atol=1e-5, rtol=0)


def test_gaf_layer_constant_axis_as_vskd_gaf():
    acc = np.random.default_rng(0).normal(size=(WINDOW, 3))
    acc[:, 1] = 0.98
    image = GAFLayer(WINDOW, IMAGE)(torch.from_numpy(acc).float()[None])[0].numpy()
    np.testing.assert_allclose(image, accelerometer_to_gaf(acc, IMAGE), atol=1e-5, rtol=0)
    np.testing.assert_allclose(image[1], -1.0)


def test_resample_to_length_exact_values():
    acc = np.array([[0.0, 0.0, 0.0], [1.0, 10.0, -1.0], [4.0, 20.0, -4.0]])
    expected = np.array([[0.0, 0.0, 0.0], [0.5, 5.0, -0.5], [1.0, 10.0, -1.0], [2.5, 15.0, -2.5],
                         [4.0, 20.0, -4.0]])                    # positions 0, 0.5, 1, 1.5, 2
    assert np.array_equal(resample_to_length(acc, 5), expected)
    assert np.array_equal(resample_to_length(acc, 2), acc[[0, 2]])          # shrunk: the end points
    assert np.array_equal(resample_to_length([[0.0], [1.0], [4.0], [9.0]], 3), [[0.0], [2.5], [9.0]])
    same = resample_to_length(acc, 3)
    assert same is not acc and np.array_equal(same, acc) and same.dtype == np.float64
    for bad, length, message in [(np.zeros(10), 5, "shape"), (np.zeros((1, 3)), 5, "shape"),
                                 (acc, 1, "length"), (acc, 2.5, "length")]:
        with pytest.raises(ValueError, match=message):
            resample_to_length(bad, length)


def test_export_predict_and_minirocket_resample_alike():
    # One definition: the exported graph's input (export, predict) and MiniRocket's series are
    # the same numbers, equal to the formula both modules had before.
    from vskd.minirocket import to_panel

    for acc in _real_recordings():
        for length in (200, WINDOW, len(acc)):
            old = np.stack([np.interp(np.linspace(0.0, len(acc) - 1.0, length), np.arange(len(acc), dtype=float),
                                      acc[:, k]) for k in range(3)], axis=1)
            assert np.array_equal(resample_to_length(acc, length), old)
            assert np.array_equal(to_panel([acc], length)[0].T, old)


def test_pipeline_equals_vskd_gaf_then_student():
    model = tiny_student()
    pipeline = GAFStudentPipeline(model, WINDOW, IMAGE).eval()
    clips = np.stack([resample_to_length(acc, WINDOW) for _, acc in recordings()])
    images = np.stack([accelerometer_to_gaf(c, IMAGE) for c in clips])
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(images)), 1).numpy()
    np.testing.assert_allclose(run_torch(pipeline, clips), expected, atol=1e-5, rtol=0)


# --- ONNX ----------------------------------------------------------------------------------

def test_onnx_matches_torch_and_carries_metadata(tiny_onnx):
    path, pipeline = tiny_onnx
    session = onnx_session(path)
    (inp,), (out,) = session.get_inputs(), session.get_outputs()
    assert (inp.name, inp.shape, inp.type) == ("accelerometer", ["batch", WINDOW, 3], "tensor(float)")
    assert (out.name, out.shape) == ("probabilities", ["batch", len(CLASSES)])
    meta = onnx_metadata(session)
    assert meta["class_names"] == CLASSES and meta["window"] == WINDOW and meta["gaf_method"] == "summation"
    clips = np.stack([resample_to_length(acc, WINDOW) for _, acc in recordings()])
    clips = np.concatenate([clips, np.random.default_rng(1).normal(size=(5, WINDOW, 3))])
    got, expected = run_onnx(session, clips), run_torch(pipeline, clips)
    assert np.abs(got - expected).max() <= 1e-4
    np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


def test_onnx_accuracy_equals_torch_accuracy_on_recordings(tiny_onnx):
    path, pipeline = tiny_onnx
    recs = recordings(subjects=(1, 2, 3, 4))
    labels = np.array([label for label, _ in recs])
    clips = np.stack([resample_to_length(acc, WINDOW) for _, acc in recs])
    torch_pred = run_torch(pipeline, clips).argmax(1)
    onnx_pred = run_onnx(onnx_session(path), clips).argmax(1)
    np.testing.assert_array_equal(onnx_pred, torch_pred)
    assert np.mean(onnx_pred == labels) == np.mean(torch_pred == labels)


def test_int8_model_quantizes_the_student_not_the_gaf(tiny_onnx, tmp_path):
    path, pipeline = tiny_onnx
    int8 = quantize_int8(path, tmp_path / "tiny.int8.onnx")
    graph = onnx.load(str(int8)).graph
    ops = [n.op_type for n in graph.node]
    assert "ConvInteger" in ops and "Conv" not in ops
    float_matmuls = [n for n in graph.node if n.op_type == "MatMul"]
    assert len(float_matmuls) == 2 and all("gaf.resize_t" in n.input for n in float_matmuls)
    assert int8.stat().st_size < path.stat().st_size / 3
    session = onnx_session(int8)
    assert onnx_metadata(session)["class_names"] == CLASSES
    clips = np.stack([resample_to_length(acc, WINDOW) for _, acc in recordings()])
    probs = run_onnx(session, clips)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert np.abs(probs - run_torch(pipeline, clips)).max() < 0.1


def test_export_params_are_checked():
    good = {"window": 200, "sample_rate": 50, "opset": 17, "quantize": True, "latency_runs": 5}
    assert check_params(good)["sample_rate"] == 50.0
    for key, bad in [("window", 1), ("opset", 9), ("quantize", "yes"), ("latency_runs", 0), ("window", True)]:
        with pytest.raises(ParamsError, match=f"export.{key}"):
            check_params({**good, key: bad})
    with pytest.raises(ParamsError, match="export.opset"):
        check_params({k: v for k, v in good.items() if k != "opset"})
    # latency_runs is read by `python -m vskd.export` only: optional, checked when present
    assert check_params({k: v for k, v in good.items() if k != "latency_runs"})["latency_runs"] == 20
    assert check_params(good)["latency_runs"] == 5


# --- The export stage, end to end on a tiny dataset ----------------------------------------

def _tiny_workspace(root):
    """raw/, gaf.h5, vskd.pt and teacher.pt of a 2-action, 2-subject dataset under ``root``; the block."""
    from vskd.datasets.synthetic import ACTIONS
    from vskd.gaf import build_gaf_store
    from vskd.datasets.utd_mhad import read_accelerometer, scan
    from vskd.models.trn import TRNTeacher
    from vskd.checkpoints import save_checkpoint

    raw = root / "raw"
    (raw / "Inertial").mkdir(parents=True)
    (raw / "RGB").mkdir()
    for a in (1, 2):
        for s in (1, 2):
            write_mat(raw / "Inertial" / f"a{a}_s{s}_t1_inertial.mat",
                      recordings(actions=(a,), subjects=(s,))[0][1])
            (raw / "RGB" / f"a{a}_s{s}_t1_color.avi").write_bytes(b"unused")
    names = list(ACTIONS[:2])
    build_gaf_store(scan(raw, 2), read_accelerometer, root / "gaf.h5", IMAGE, "summation", names, "synthetic")
    torch.manual_seed(0)
    student = tiny_student(num_classes=2)
    save_checkpoint(root / "vskd.pt", kind="gaf_student", config={"num_classes": 2, "feature_dim": 8},
                    state_dict=student.state_dict(), class_names=names, epoch=1, selection="last")
    config = {"num_classes": 2, "num_segments": 3, "img_feature_dim": 8, "dropout": 0.5}
    save_checkpoint(root / "teacher.pt", kind="trn_teacher", config=config,
                    state_dict=TRNTeacher(**config).state_dict(), class_names=names, epoch=1,
                    selection="last", input_size=32)
    return {"download": {"actions": 2}, "split": {"name": "cross_subject", "train_subjects": [1]}}


EXPORT_CFG = {"window": WINDOW, "sample_rate": 50, "opset": 17, "quantize": True}  # no latency_runs: optional


def _export(root, out, **kw):
    """run_export on the tiny workspace ``root`` into ``root/out`` (graphs) and ``root/out.json``."""
    block = kw.pop("block")
    return run_export("synthetic", raw_dir=root / "raw", block=block, gaf_path=root / "gaf.h5",
                      teacher_path=root / "teacher.pt", student_path=root / "vskd.pt", out_dir=root / out,
                      metrics_path=root / f"{out}.json", split_cfg=block["split"], seed=0, **kw)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """The tiny workspace after one export with every row: (root, block, metrics)."""
    root = tmp_path_factory.mktemp("export")
    block = _tiny_workspace(root)
    return root, block, _export(root, "onnx", block=block, cfg=EXPORT_CFG)


def test_run_export_writes_models_and_metrics(exported):
    root, _, m = exported
    assert json.loads((root / "onnx.json").read_text()) == m
    assert (root / "onnx" / "vskd.onnx").is_file() and (root / "onnx" / "vskd.int8.onnx").is_file()
    assert m["test"] == 2 and m["onnx"]["max_abs_diff"] <= 1e-4
    assert m["accuracy"]["onnx"] == m["accuracy"]["torch"] and m["agreement"]["onnx_torch"] == 1.0
    cost = m["cost"]
    assert list(cost) == ["student", "student_paper", "onnx", "onnx_int8", "teacher", "teacher_paper"]
    for entry in cost.values():
        assert entry["macs"] > 0 and entry["params"] > 0
    assert cost["student"]["file_bytes"] == (root / "vskd.pt").stat().st_size
    assert cost["onnx_int8"]["file_bytes"] == (root / "onnx" / "vskd.int8.onnx").stat().st_size
    assert cost["student"]["gaf_macs"] == 3 * (2 * WINDOW * IMAGE + 2 * IMAGE * IMAGE)
    assert m["mac_ratio"]["trained"] == pytest.approx(cost["teacher"]["macs"] / cost["student"]["macs"], rel=1e-3)
    assert cost["teacher_paper"]["input"] == "8 x 3 x 224 x 224 frames"


def test_export_metrics_hold_no_latency_and_a_rerun_reproduces_them(exported):
    # metrics/<ds>/export.json is a DVC output: a value that changes between runs (a latency)
    # would change its hash in dvc.lock on every `dvc repro`.
    import hashlib

    root, block, m = exported
    assert "latency" not in (root / "onnx.json").read_text()
    again = _export(root, "again", block=block, cfg={**EXPORT_CFG, "latency_runs": 3})  # the key is tolerated
    assert (root / "again.json").read_bytes() == (root / "onnx.json").read_bytes() and again == m
    for name in ("vskd.onnx", "vskd.int8.onnx"):   # the graphs' bytes too (dvc.lock hashes models/<ds>/onnx)
        digests = {hashlib.sha256((root / d / name).read_bytes()).hexdigest() for d in ("onnx", "again")}
        assert len(digests) == 1, name
    # quantize: false leaves no int8 model behind
    m = _export(root, "again", block=block, cfg={**EXPORT_CFG, "quantize": False}, paper_scale=False)
    assert not (root / "again" / "vskd.int8.onnx").exists() and "onnx_int8" not in m["cost"]
    assert "int8" not in m["accuracy"] and set(m["mac_ratio"]) == {"trained"}


def test_latency_command_measures_the_exported_models(exported, capsys):
    from vskd.export import main, measure_cost

    root, _, m = exported
    report = measure_cost(root, runs=1, paper_scale=False)
    assert list(report["cost"]) == ["student", "onnx", "onnx_int8", "teacher"]
    for name, entry in report["cost"].items():
        assert entry["latency_ms"] > 0, name
        assert {k: v for k, v in entry.items() if k != "latency_ms"} == m["cost"][name], name
    assert report["mac_ratio"] == {"trained": m["mac_ratio"]["trained"]}
    assert main(["synthetic", "--models", str(root), "--runs", "1", "--no-paper-scale"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["model", "input", "params", "MACs", "latency", "file"]
    assert [line.split()[0] for line in lines[1:5]] == ["student", "onnx", "onnx_int8", "teacher"]
    assert all(" ms " in line for line in lines[1:5]) and "median of 1 single-sample runs" in lines[5]
    assert main(["synthetic", "--models", str(root / "nowhere")]) == 1
    assert "vskd.pt: not found" in capsys.readouterr().err


def test_export_and_minirocket_fail_alike_on_a_missing_recording(exported, tmp_path):
    # Both stages read the raw recordings through vskd.minirocket.read_recordings: the same error.
    import shutil

    from vskd.minirocket import read_recordings, train_minirocket

    root, block, _ = exported
    raw = tmp_path / "raw"
    shutil.copytree(root / "raw", raw)
    (raw / "Inertial" / "a2_s2_t1_inertial.mat").unlink()     # the whole recording gone from raw/
    (raw / "RGB" / "a2_s2_t1_color.avi").unlink()
    with pytest.raises(FileNotFoundError, match=r"raw: 1 recording\(s\) indexed in gaf.h5 have no sensor file, "
                                                r"e.g. \['a2_s2_t1'\]; rerun the download and gaf stages"):
        read_recordings("synthetic", raw, block, ["a1_s1_t1", "a2_s2_t1"])
    with pytest.raises(FileNotFoundError, match=r"indexed in gaf.h5 have no sensor file, e.g. \['a2_s2_t1'\]"):
        run_export("synthetic", raw_dir=raw, block=block, gaf_path=root / "gaf.h5", teacher_path=root / "teacher.pt",
                   student_path=root / "vskd.pt", out_dir=tmp_path / "onnx", metrics_path=tmp_path / "export.json",
                   cfg=EXPORT_CFG, split_cfg=block["split"], seed=0)
    with pytest.raises(FileNotFoundError, match=r"indexed in gaf.h5 have no sensor file, e.g. \['a2_s2_t1'\]"):
        train_minirocket("synthetic", root / "gaf.h5", raw, block, tmp_path / "minirocket.json",
                         cfg={"n_kernels": 84, "max_dilations_per_kernel": 32}, split_seed=0, seeds=[0])
    assert not (tmp_path / "export.json").exists() and not (tmp_path / "minirocket.json").exists()


# --- The real distilled student, when the pipeline has been run ----------------------------

def test_exported_vskd_student_accuracy_equals_torch_on_synthetic_test_split(tmp_path):
    import yaml

    from vskd.evaluate import student_predictions
    from vskd.export import load_student
    from vskd.minirocket import read_recordings
    from vskd.h5store import get_meta, read_index
    from vskd.index import make_split

    ckpt, gaf, raw = REPO / "models/synthetic/vskd.pt", REPO / "data/synthetic/gaf.h5", REPO / "data/synthetic/raw"
    if not (ckpt.is_file() and gaf.is_file() and raw.is_dir()):
        pytest.skip("models/synthetic/vskd.pt and data/synthetic are absent: run `dvc repro distill@synthetic`")
    import h5py

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    with h5py.File(gaf, "r") as h5:
        index, size, method = read_index(h5), get_meta(h5, "image_size"), get_meta(h5, "method")
        scale = get_meta(h5, "scale") if "scale" in h5.attrs else "axis"
    split_cfg = params["synthetic"]["split"]
    test = make_split(index["subjects"], index["trials"], index["labels"], split_cfg, params["seed"])["test"]
    y = index["labels"][test]
    clips = np.stack([resample_to_length(a, 200) for a in read_recordings("synthetic", raw, params["synthetic"],
                                                                 index["ids"][test])])
    model, _ = load_student(ckpt)
    pipeline = GAFStudentPipeline(model, 200, size, method, scale).eval()
    export_onnx_path = tmp_path / "vskd.onnx"
    from vskd.export import export_onnx

    export_onnx(pipeline, export_onnx_path)
    p_torch, p_onnx = run_torch(pipeline, clips), run_onnx(onnx_session(export_onnx_path), clips)
    assert np.abs(p_onnx - p_torch).max() <= 1e-4
    assert np.mean(p_onnx.argmax(1) == y) == np.mean(p_torch.argmax(1) == y)
    # The fixed-length input changes few decisions against the stored whole-trial GAF images.
    stored, _ = student_predictions(ckpt, "distill", gaf, test)
    assert np.mean(stored == p_onnx.argmax(1)) >= 0.9
