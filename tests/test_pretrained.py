"""ImageNet initialisation of the GAF student (params student.pretrained, student.input_norm):
the backbone comes exactly from a torchvision state_dict, the head stays new, a wrong file
or no internet stops with the key and the file named, and ImageNet's normalisation is part
of the model (forward, checkpoint config, ONNX graph). No network: torchvision's download
is made to fail as it does offline."""

import copy
import urllib.error

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torchvision
import yaml

from tests.conftest import REPO
from vskd.checkpoints import save_checkpoint
from vskd.choices import weights_names
from vskd.cost import torch_threads
from vskd.export import GAFStudentPipeline, export_onnx, load_student
from vskd.models.student import IMAGENET_MEAN, IMAGENET_STD, GAFStudent, load_pretrained
from vskd.params import ParamsError, validate
from vskd.train_student import build_student


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def resnet18_state():
    """A torchvision resnet18 state_dict (random weights: nothing is downloaded)."""
    torch.manual_seed(1)
    return torchvision.models.resnet18(weights=None).state_dict()


@pytest.fixture
def resnet18_file(tmp_path, resnet18_state):
    path = tmp_path / "resnet18.pth"
    torch.save(resnet18_state, path)
    return path


def test_backbone_equals_the_file_and_the_head_is_new(resnet18_file, resnet18_state):
    torch.manual_seed(0)
    fresh = GAFStudent(5, 8)
    torch.manual_seed(0)
    model = build_student(5, 8, {"arch": "resnet18", "pretrained": str(resnet18_file)}, verbose=False)
    backbone = model.backbone.state_dict()
    assert len(backbone) == len(resnet18_state) - 2              # all but the ImageNet fc
    for key, value in backbone.items():
        assert torch.equal(value, resnet18_state[key]), key
    assert not torch.equal(backbone["conv1.weight"], fresh.backbone.conv1.weight)
    # fc0 / fc1 are the fresh initialisation, untouched, and not in the file
    assert not any(k.startswith(("fc0.", "fc1.")) for k in resnet18_state)
    for name in ("fc0", "fc1"):
        assert torch.equal(getattr(model, name).weight, getattr(fresh, name).weight)
    assert resnet18_state["fc.weight"].shape == (1000, 512) != model.fc1.weight.shape


def test_a_file_without_batchnorm_counters_loads(tmp_path, resnet18_state):
    """Files saved before PyTorch 0.4.1 have no num_batches_tracked."""
    old = {k: v for k, v in resnet18_state.items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    model = GAFStudent(3, 8)
    report = load_pretrained(model, str(tmp_path / "old.pth"))
    assert report.startswith(f"{len(old) - 2} backbone tensors from ")
    assert torch.equal(model.backbone.layer4[1].bn2.running_var, old["layer4.1.bn2.running_var"])


def _edited(state, edit):
    state = dict(state)
    if edit == "missing":
        del state["layer3.0.conv1.weight"]
    elif edit == "shape":
        state["conv1.weight"] = torch.zeros(64, 1, 7, 7)
    elif edit == "unexpected":       # a resnet34 has this block; its other keys match resnet18's
        state["layer1.2.conv1.weight"] = torch.zeros(64, 64, 3, 3)
    elif edit == "ddp":
        state = {f"module.{k}": v for k, v in state.items()}
    elif edit == "checkpoint":
        state = {"kind": "gaf_student", "state_dict": state}
    elif edit == "list":
        state = list(state.values())
    return state


@pytest.mark.parametrize("edit, message", [
    ("missing", "missing key 'layer3.0.conv1.weight' \\(1 of the 120 backbone keys"),
    ("shape", "key 'conv1.weight' has shape \\(64, 1, 7, 7\\), the student's \\(64, 3, 7, 7\\)"),
    ("unexpected", "unexpected key 'layer1.2.conv1.weight': not a torchvision resnet18 state_dict"),
    ("ddp", "missing key 'conv1.weight' .*keys start with 'module.'"),
    ("checkpoint", "not a state_dict: key 'kind' holds a str, not a tensor: it looks like a training checkpoint"),
    ("list", "holds a list, not a state_dict"),
])
def test_a_wrong_file_names_the_key_and_the_file(tmp_path, resnet18_state, edit, message):
    path = tmp_path / "weights.pth"
    torch.save(_edited(resnet18_state, edit), path)
    model = GAFStudent(3, 8)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ParamsError, match=f"student.pretrained: {path}: {message}"):
        load_pretrained(model, str(path))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())   # nothing half-loaded


def test_a_resnet18_file_for_the_vgg16_student_and_other_bad_paths(tmp_path, resnet18_file):
    with pytest.raises(ParamsError, match="missing key 'features.0.weight'.*torchvision vgg16_bn state_dict"):
        load_pretrained(GAFStudent(3, 8, arch="vgg16"), str(resnet18_file))
    (tmp_path / "notes.pth").write_text("not a torch file")
    with pytest.raises(ParamsError, match=f"student.pretrained: {tmp_path / 'notes.pth'}: not a readable torch"):
        load_pretrained(GAFStudent(3, 8), str(tmp_path / "notes.pth"))
    with pytest.raises(ParamsError, match="'student.pretrained': IMAGENET1K_V2 is not a file, nor a torchvision "
                                          "weights name of resnet18 \\(DEFAULT, IMAGENET1K_V1\\)"):
        load_pretrained(GAFStudent(3, 8), "IMAGENET1K_V2")


@pytest.fixture
def offline(tmp_path, monkeypatch):
    """torchvision's hub cache in tmp_path, and every download failing as it does offline."""
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    return tmp_path / "hub" / "checkpoints"


def test_a_weights_name_without_internet_says_how_to_pass_a_local_file(offline):
    url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
    with pytest.raises(ParamsError) as err:
        load_pretrained(GAFStudent(3, 8), "IMAGENET1K_V1")
    message = str(err.value)
    assert "'student.pretrained' is 'IMAGENET1K_V1'" in message and url in message
    assert "Temporary failure in name resolution" in message
    assert "set student.pretrained to its local path (a .pth state_dict)" in message
    assert str(offline / "resnet18-f37072fd.pth") in message
    assert list(offline.iterdir()) == []                          # no partial download left


def test_a_weights_name_loads_from_torchvisions_cache_offline(offline, resnet18_state):
    offline.mkdir(parents=True)
    torch.save(resnet18_state, offline / "resnet18-f37072fd.pth")
    model = GAFStudent(3, 8)
    assert "from torchvision ResNet18_Weights.IMAGENET1K_V1" in load_pretrained(model, "DEFAULT")
    assert torch.equal(model.backbone.layer2[0].downsample[0].weight, resnet18_state["layer2.0.downsample.0.weight"])


def test_imagenet_norm_maps_minus_one_to_minus_mean_over_std():
    assert weights_names("resnet18") == ("DEFAULT", "IMAGENET1K_V1")
    transform = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.transforms()
    assert (tuple(transform.mean), tuple(transform.std)) == (IMAGENET_MEAN, IMAGENET_STD)
    model = GAFStudent(3, 8, input_norm="imagenet").eval()
    out = model.normalise(torch.full((2, 3, 4, 4), -1.0))
    mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
    expected = ((torch.zeros(3) - mean) / std).view(1, 3, 1, 1).expand(2, 3, 4, 4)
    assert out.dtype == torch.float32 and torch.equal(out, expected)
    np.testing.assert_allclose(out[0, :, 0, 0], [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225], rtol=1e-6)
    assert torch.equal(model.normalise(torch.ones(1, 3, 1, 1)).flatten(), (1 - mean) / std)
    # the forward normalises; "none" feeds the GAF as it is, with the same state_dict keys
    plain = GAFStudent(3, 8).eval()
    plain.load_state_dict(model.state_dict())
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(model(x), plain(model.normalise(x)))
        assert torch.equal(model.features_and_maps(x)[0], plain.features(model.normalise(x)))
    with pytest.raises(ValueError, match="unknown student input_norm 'caffe'"):
        GAFStudent(3, 8, input_norm="caffe")


def test_input_norm_and_stem_pool_travel_in_the_checkpoint_and_the_onnx_graph(tmp_path):
    torch.manual_seed(0)
    student = build_student(3, 8, {"arch": "resnet18", "input_norm": "imagenet", "stem_pool": False},
                            verbose=False).eval()
    assert student.config() == {"num_classes": 3, "feature_dim": 8, "arch": "resnet18", "input_norm": "imagenet",
                                "stem_pool": False}
    save_checkpoint(tmp_path / "vskd.pt", kind="gaf_student", config=student.config(),
                    state_dict=student.state_dict(), class_names=["a", "b", "c"], epoch=1, selection="last")
    loaded, _ = load_student(tmp_path / "vskd.pt")
    assert loaded.input_norm == "imagenet" and loaded.normalise is not None
    assert loaded.stem_pool is False and isinstance(loaded.backbone.maxpool, torch.nn.Identity)
    pipeline = GAFStudentPipeline(loaded, 32, 16).eval()
    path = export_onnx(pipeline, tmp_path / "vskd.onnx", opset=17, metadata={"window": 32})
    acc = torch.rand(3, 32, 3) * 2 - 1
    plain = GAFStudent(3, 8, stem_pool=False).eval()
    plain.load_state_dict(student.state_dict())
    with torch.no_grad():
        expected = pipeline(acc).numpy()
        unnormalised = GAFStudentPipeline(plain, 32, 16).eval()(acc).numpy()
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"accelerometer": acc.numpy()})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert np.abs(got - unnormalised).max() > 1e-3       # the graph normalises: not the plain student


@pytest.fixture
def params():
    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("key, value, message", [
    ("student.input_norm", "caffe", "'student.input_norm' must be none .* or imagenet"),
    ("student.pretrained", 1, "'student.pretrained' must be a string"),
    ("student.pretrained", "weights/missing.pth", "'student.pretrained' is 'weights/missing.pth': neither a "
                                                  "torchvision weights name of resnet18"),
    ("student.stem_pool", "no", "'student.stem_pool' must be true .* or false, got 'no'"),
])
def test_params_validation_names_the_key(params, key, value, message):
    bad = copy.deepcopy(params)
    block, name = key.split(".")
    bad.setdefault(block, {})[name] = value
    with pytest.raises(ParamsError, match=message):
        validate(bad, "params.yaml")


def test_params_reject_stem_pool_false_for_vgg16(params):
    bad = copy.deepcopy(params)
    bad["student"].update(arch="vgg16", stem_pool=False)
    with pytest.raises(ParamsError, match="'student.stem_pool' false drops ResNet18's max pool .* vgg16 has none"):
        validate(bad, "params.yaml")


def test_params_accept_a_weights_name_and_an_existing_file_offline(params, resnet18_file):
    for value in ("IMAGENET1K_V1", "DEFAULT", str(resnet18_file)):
        ok = copy.deepcopy(params)
        ok["student"].update(pretrained=value, input_norm="imagenet")
        validate(ok, "params.yaml")
