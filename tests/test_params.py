import copy

import pytest
import yaml

from tests.conftest import REPO
from vskd.params import ParamsError, load_params, validate


@pytest.fixture
def params():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_repository_params_are_valid():
    load_params(REPO / "params.yaml")


@pytest.mark.parametrize("key, value, message", [
    ("beta", -0.5, "'beta' must be >= 0"),
    ("temperature", 0, "'temperature' must be > 0"),
    ("datasets", [], "'datasets' must be a non-empty list"),
    ("datasets", ["imagenet"], "unknown dataset 'imagenet'"),
    ("gaf.image_size", 8, "'gaf.image_size' must be >= 16"),
    ("teacher.lr", 0, "'teacher.lr' must be > 0"),
    ("teacher.input_size", 128, "'teacher.input_size' must not exceed frames.short_side"),
    ("student.selection", "best_test", "'student.selection' must be 'last' or 'best_val'"),
    ("teacher.dropout", 1.0, "'teacher.dropout' must be < 1"),
    ("teacher.affine.stretch", 1.0, "'teacher.affine.stretch' must be < 1"),
    ("student.augment.gain", 1.0, "'student.augment.gain' must be below 1"),
    ("student.augment.gain", -0.1, "'student.augment.gain' must be a number >= 0"),
    ("teacher.affine.rotate_deg", -5.0, "'teacher.affine.rotate_deg' must be >= 0"),
    ("student.mixup", -0.2, "'student.mixup' must be >= 0"),
    ("teacher.mixup", -1, "'teacher.mixup' must be >= 0"),
    ("synthetic.segments", 1, "'synthetic.segments' must be >= 2"),
    ("seed", "zero", "'seed' must be an integer"),
    ("seeds", [], "'seeds' must be a non-empty list of integers >= 0, got \\[\\]"),
    ("seeds", 0, "'seeds' must be a non-empty list of integers >= 0, got 0"),
    ("seeds", [0, 1.5], "'seeds' must be a non-empty list of integers >= 0"),
    ("seeds", [0, True], "'seeds' must be a non-empty list of integers >= 0"),
    ("seeds", [0, -1], "'seeds' must be a non-empty list of integers >= 0"),
    ("seeds", [1, 2, 1], "'seeds' must not repeat a seed"),
    ("minirocket.n_kernels", 10, "'minirocket.n_kernels' must be >= 84"),
    ("minirocket.length", 5, "'minirocket.length' must be 0 .* or >= 9"),
])
def test_invalid_values_name_the_key(params, key, value, message):
    bad = copy.deepcopy(params)
    node = bad
    *parents, last = key.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    with pytest.raises(ParamsError, match=message):
        validate(bad, "params.yaml")


def test_missing_key_is_named(params):
    del params["student"]["epochs"]
    with pytest.raises(ParamsError, match="missing key 'student.epochs'"):
        validate(params, "params.yaml")


def test_missing_seeds_list_is_named(params):
    del params["seeds"]
    with pytest.raises(ParamsError, match="missing key 'seeds'"):
        validate(params, "params.yaml")


@pytest.mark.parametrize("dataset, key, value, message", [
    ("berkeley_mhad", "sensor.shimmer", 7, "'berkeley_mhad.sensor.shimmer' must be an integer in 1..6"),
    ("berkeley_mhad", "video.bayer", "rgb", "'berkeley_mhad.video.bayer' must be one of none, grbg"),
    ("berkeley_mhad", "sensor.rate_hz", -5, "'berkeley_mhad.sensor.rate_hz' must be a number >= 0"),
    ("mmact", "sensor.device", "pocket", "'mmact.sensor.device' must be 'phone' or 'watch'"),
    ("mmact", "split.name", "subject_specific", "'mmact.split.name' must be one of cross_subject, cross_session"),
    ("mmact", "split.train_subjects", [], "'mmact.split.train_subjects' must be a non-empty list"),
    ("utd_mhad", "split.name", "random", "'utd_mhad.split.name' must be 'subject_specific'.* or 'cross_subject'"),
    ("utd_mhad", "video", {"camera": 1}, "'utd_mhad.video' must be \\{source: rgb\\}"),
    ("utd_mhad", "download.urls", ["ftp://x/y.zip"], "'utd_mhad.download.urls' must be a list of http"),
    ("utd_mhad", "source", None, "'utd_mhad.source' must be a string"),
])
def test_real_dataset_blocks_are_checked(params, dataset, key, value, message):
    for name in ("utd_mhad", "berkeley_mhad", "mmact"):
        params["datasets"] = [name]
        validate(params, "params.yaml")                  # the committed blocks are valid
    params["datasets"] = [dataset]
    node = params[dataset]
    *parents, last = key.split(".")
    for p in parents:
        node = node[p]
    node[last] = value
    with pytest.raises(ParamsError, match=message):
        validate(params, "params.yaml")


def test_default_run_stays_synthetic(params):
    assert params["datasets"] == ["synthetic"]
