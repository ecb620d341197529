"""The GAF student's two architectures (student.arch) and the distill stage's methods
(distill.method) wired through train_student: maps, teacher outputs, checkpoint, export."""

import json

import h5py
import numpy as np
import onnxruntime as ort
import pytest
import torch

from vskd import teacher_outputs
from vskd.checkpoints import save_checkpoint
from vskd.cost import count_macs, count_params, torch_threads
from vskd.export import GAFStudentPipeline, cost_report, export_onnx, load_student
from vskd.h5store import set_meta, write_index
from vskd.losses import distill_loss
from vskd.models.student import ATTENTION_LAYERS, GAFStudent
from vskd.models.trn import TRNTeacher
from vskd.params import RUNTIME_DEFAULTS
from vskd.train_student import train_student


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with torch_threads(1):
        yield


@pytest.mark.parametrize("arch, params_m, channels", [
    ("resnet18", 11.31, (128, 256, 512)),
    ("vgg16", 14.86, (256, 512, 512)),
])
def test_both_archs_share_the_head_and_give_maps_at_strides_8_16_32(arch, params_m, channels):
    torch.manual_seed(0)
    model = GAFStudent(10, 256, arch=arch).eval()
    assert count_params(model) / 1e6 == pytest.approx(params_m, abs=0.01)
    assert (model.fc0.in_features, model.fc0.out_features, model.fc1.out_features) == (512, 256, 10)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        h, maps = model.features_and_maps(x)
        assert torch.equal(h, model.features(x))             # the same forward, maps on the side
        assert torch.equal(model.head(h), model(x))
    assert len(maps) == len(ATTENTION_LAYERS[arch]) == 3
    assert [tuple(m.shape) for m in maps] == [(2, c, 64 // s, 64 // s) for c, s in zip(channels, (8, 16, 32))]


def test_stem_pool_false_keeps_the_weights_and_doubles_every_map_side():
    """Without the max pool after conv1 every map is twice as wide and high (strides 4, 8, 16
    instead of 8, 16, 32); the parameters are the same tensors, so a state_dict moves across,
    and the MACs grow 3.23x at 48 px (layers 1-3 by 4x, layer4's 3 x 3 map against 2 x 2 by 2.25x,
    conv1 not at all)."""
    torch.manual_seed(0)
    pooled, full = GAFStudent(10, 256).eval(), GAFStudent(10, 256, stem_pool=False).eval()
    assert full.config()["stem_pool"] is False and pooled.config()["stem_pool"] is True
    full.load_state_dict(pooled.state_dict())
    x = torch.randn(2, 3, 48, 48)
    with torch.no_grad():
        _, maps = full.features_and_maps(x)
    assert [tuple(m.shape[2:]) for m in maps] == [(12, 12), (6, 6), (3, 3)]
    with torch.no_grad():  # conv1's output, before the pool the two differ by
        stem = full.backbone.relu(full.backbone.bn1(full.backbone.conv1(x)))
        assert torch.equal(full.backbone.layer1(stem), pooled.backbone.layer1(stem))
    ratio = count_macs(full, x[:1]) / count_macs(pooled, x[:1])
    assert ratio == pytest.approx(3.2315, abs=1e-4)
    with pytest.raises(ValueError, match="stem_pool False is a resnet18 setting"):
        GAFStudent(4, 8, arch="vgg16", stem_pool=False)


def test_vgg16_works_on_small_gaf_images():
    model = GAFStudent(4, 8, arch="vgg16").eval()
    for size in (32, 64, 96):
        assert model(torch.randn(1, 3, size, size)).shape == (1, 4)
    with pytest.raises(ValueError, match="unknown student arch 'vgg19'"):
        GAFStudent(4, 8, arch="vgg19")


def test_vgg16_student_exports_and_is_costed_as_vgg(tmp_path):
    """export.load_student rebuilds the arch from the checkpoint; the ONNX graph matches torch;
    the cost report's paper-scale student is a VGG16 too."""
    torch.manual_seed(0)
    student = GAFStudent(3, 8, arch="vgg16").eval()
    save_checkpoint(tmp_path / "vskd.pt", kind="gaf_student", config={"num_classes": 3, "feature_dim": 8, "arch": "vgg16"},
                    state_dict=student.state_dict(), class_names=["a", "b", "c"], epoch=1, selection="last")
    loaded, _ = load_student(tmp_path / "vskd.pt")
    assert loaded.arch == "vgg16"
    pipeline = GAFStudentPipeline(loaded, 64, 32).eval()
    path = export_onnx(pipeline, tmp_path / "vskd.onnx", opset=17, metadata={"window": 64})
    acc = torch.rand(4, 64, 3) * 2 - 1
    with torch.no_grad():
        expected = pipeline(acc).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"accelerometer": acc.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    resnet = GAFStudentPipeline(GAFStudent(3, 8), 64, 32)
    assert count_macs(pipeline, acc[:1]) > 2 * count_macs(resnet, acc[:1])  # VGG16 costs more than ResNet18

    config = {"num_classes": 3, "num_segments": 3, "img_feature_dim": 8, "dropout": 0.5}
    save_checkpoint(tmp_path / "teacher.pt", kind="trn_teacher", config=config,
                    state_dict=TRNTeacher(**config).state_dict(), class_names=["a", "b", "c"], epoch=1,
                    selection="last", input_size=32)
    report = cost_report(pipeline, tmp_path / "vskd.pt", tmp_path / "teacher.pt", path, None, runs=1)["cost"]
    assert report["student"]["params"] == report["student_paper"]["params"] == count_params(pipeline)
    assert report["student_paper"]["macs"] > 10 * report["student"]["macs"]   # 224 px against 32 px


# --- train_student with every method ------------------------------------------------------------

N, CLASSES, DIM = 12, 3, 6


@pytest.fixture
def stores(tmp_path):
    """A GAF store and teacher outputs (with attention maps) for 12 samples of 3 classes."""
    rng = np.random.default_rng(0)
    cols = {"ids": np.array([f"a{i % 3 + 1}_s{i}_t1" for i in range(N)], dtype=object),
            "labels": np.arange(N) % CLASSES, "subjects": np.arange(N), "trials": np.ones(N, dtype=np.int64)}
    gaf = tmp_path / "gaf.h5"
    with h5py.File(gaf, "w") as h5:
        write_index(h5, cols)
        h5["gaf"] = rng.uniform(-1, 1, (N, 3, 32, 32)).astype(np.float32)
        set_meta(h5, class_names=["a", "b", "c"])
    maps = {"inception_3b": rng.random((N, 3, 3)), "inception_4d": rng.random((N, 2, 2)),
            "inception_5b": rng.random((N, 1, 1))}
    out = tmp_path / "teacher_outputs.h5"
    teacher_outputs.write(out, cols, rng.standard_normal((N, CLASSES)), rng.random((N, DIM)), attention=maps,
                          class_names=["a", "b", "c"], selection="last", epoch=1)
    return gaf, out


@pytest.mark.parametrize("method, arch, terms, mixup", [
    ("at", "resnet18", {"ce", "at"}, 0.0),
    ("at", "vgg16", {"ce", "at"}, 0.0),
    ("sp", "resnet18", {"ce", "sp"}, 0.0),
    ("st", "resnet18", {"ce", "kd"}, 0.0),
    ("at", "resnet18", {"ce", "at"}, 0.4),   # mixup mixes the teacher's maps too
    ("st", "resnet18", {"ce", "kd"}, 0.4),
])
def test_train_student_runs_each_method_and_logs_each_term(stores, tmp_path, method, arch, terms, mixup):
    gaf, out = stores
    params = {"alpha": 0.5, "beta": 1.0, "gamma": 1.0, "temperature": 4.0,
              "distill": {"method": method, "distance_weight": 1.0, "angle_weight": 1.0,
                          "at_weight": 1000.0, "sp_weight": 3000.0}}
    cfg = {"arch": arch, "epochs": 1, "batch_size": 4, "lr": 1e-4, "weight_decay": 0.0, "selection": "last",
           "num_workers": 0, "mixup": mixup}
    torch.manual_seed(0)
    train_student(gaf, tmp_path / "vskd.pt", tmp_path / "live", cfg=cfg, feature_dim=DIM,
                  split_cfg={"name": "cross_subject", "train_subjects": list(range(8)), "val_fraction": 0.0},
                  seed=0, loss=distill_loss(params), teacher_path=out,
                  runtime={**RUNTIME_DEFAULTS, "device": "cpu", "resume": False})
    ckpt = torch.load(tmp_path / "vskd.pt", weights_only=True)
    assert ckpt["config"] == {"num_classes": CLASSES, "feature_dim": DIM, "arch": arch, "input_norm": "none",
                              "stem_pool": True}
    assert set(ckpt["loss_weights"]) == terms
    logged = json.loads((tmp_path / "live" / "metrics.json").read_text())["train"]
    assert terms | {"loss"} <= set(logged)
    for name in terms:
        assert logged[name] > 0
    weights = ckpt["loss_weights"]
    assert logged["loss"] == pytest.approx(sum(weights[k] * logged[k] for k in terms), rel=1e-5)


def test_baseline_student_trains_with_mixup(stores, tmp_path):
    gaf, _ = stores
    cfg = {"arch": "resnet18", "epochs": 1, "batch_size": 4, "lr": 1e-4, "weight_decay": 0.0, "selection": "last",
           "num_workers": 0, "mixup": 0.2}
    train_student(gaf, tmp_path / "student.pt", tmp_path / "live", cfg=cfg, feature_dim=DIM,
                  split_cfg={"name": "cross_subject", "train_subjects": list(range(8)), "val_fraction": 0.0},
                  seed=0, runtime={**RUNTIME_DEFAULTS, "device": "cpu", "resume": False})
    logged = json.loads((tmp_path / "live" / "metrics.json").read_text())["train"]
    assert logged["ce"] > 0 and torch.load(tmp_path / "student.pt", weights_only=True)["config"]["arch"] == "resnet18"


def test_ce_warning_says_when_the_distilled_student_has_not_fitted_its_labels(capsys):
    from vskd.train_student import _warn_if_ce_stuck, ce_warning

    assert "learnt no labels" in ce_warning(3.1, 27)          # ln 27 = 3.296: at chance
    assert "above ln 2 = 0.693" in ce_warning(1.01, 27)       # AT's seed 1 on dev fold s1
    assert ce_warning(0.69, 27) is None and ce_warning(0.11, 27) is None
    assert "learnt no labels" in ce_warning(0.65, 2)          # two classes: 0.9 ln 2 = 0.624
    # with mixup (alpha 0.2) a perfect fit still pays 0.228: DASK + mixup ended at 0.63-0.71 on the dev folds
    assert ce_warning(0.71, 27, floor=0.228) is None
    assert "0.722 above the 0.228 mixup's mixed labels cost" in ce_warning(0.95, 27, floor=0.228)
    assert _warn_if_ce_stuck([{"train/ce": 0.82}], 27) == {"final_train_ce": 0.82}
    assert "distill: WARNING: the training cross-entropy ended at 0.820" in capsys.readouterr().err
    assert _warn_if_ce_stuck([{"train/ce": 0.2}], 27) == {"final_train_ce": 0.2}
    assert capsys.readouterr().err == "" and _warn_if_ce_stuck([], 27) == {}
