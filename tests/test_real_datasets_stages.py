"""download -> frames -> gaf stages, as DVC runs them, on tiny local copies of the real
datasets in their official layouts (``source: PATH``); the printed summary lines carry the
counts of missing recordings."""

import importlib.util
import io
import shutil
import sys
import tarfile

import h5py
import numpy as np
import pytest
import scipy.io
import yaml

from tests.conftest import REPO, SHARED
from tests.test_berkeley_mhad import make_tree as make_berkeley_tree
from tests.test_frames import write_video
from tests.test_mmact import make_tree as make_mmact_tree


def load_stage(name):
    spec = importlib.util.spec_from_file_location(f"stage_{name}", REPO / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def run_stages(tmp_path, monkeypatch, capsys):
    """Write a params file for one dataset and run the stage scripts' ``run`` in tmp_path."""
    def run(dataset, overrides, stages=("download", "frames", "gaf")):
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["datasets"] = [dataset]
        params["frames"]["short_side"] = 32
        params["teacher"]["input_size"] = 32
        params["gaf"]["image_size"] = 16
        for key, value in overrides.items():
            node = params
            *parents, last = key.split(".")
            for p in parents:
                node = node[p]
            node[last] = value
        (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
        monkeypatch.chdir(tmp_path)
        lines = {}
        for stage in stages:
            module = load_stage(stage)
            monkeypatch.setattr(sys, "argv", [f"stages/{stage}.py", dataset])
            module.run(stage, module.body)
            out = capsys.readouterr().out.strip().splitlines()
            lines[stage] = out[-1]
            assert lines[stage].startswith(f"{stage}@{dataset}: done")
        return lines
    return run


def test_utd_mhad_from_a_local_copy(tmp_path, run_stages):
    src = tmp_path / "UTD-MHAD"
    (src / "Inertial").mkdir(parents=True)
    (src / "RGB").mkdir()
    fixtures = SHARED / "fixtures" / "utd_mhad"
    for a, s, t in [(1, 1, 1), (22, 2, 3), (5, 1, 3), (5, 2, 1)]:
        name = f"a{a}_s{s}_t{t}"
        real = fixtures / f"{name}_inertial.mat"
        if real.is_file():               # the real sample files where ../shared is present
            shutil.copy(real, src / "Inertial" / real.name)
        else:
            scipy.io.savemat(src / "Inertial" / f"{name}_inertial.mat",
                             {"d_iner": np.random.default_rng(a).normal(size=(60, 6))})
        write_video(src / "RGB" / f"{name}_color.avi", [(40 * a % 255, 0, 0)] * (8 + a), 48, 32)
    lines = run_stages("utd_mhad", {"utd_mhad.source": str(src)})
    assert "recordings=4" in lines["download"]
    for stage in ("download", "frames", "gaf"):
        assert "known_missing=3 (a8_s1_t4, a23_s6_t4, a27_s8_t4)" in lines[stage]
    assert "wrist=3, thigh=1" in lines["gaf"]
    with h5py.File(tmp_path / "data/utd_mhad/frames.h5") as h5:
        assert h5["frames/a22_s2_t3"].shape == (30, 32, 48, 3)
        assert [v.decode() for v in h5["index/ids"][()]] == ["a1_s1_t1", "a5_s1_t3", "a5_s2_t1", "a22_s2_t3"]
        assert h5["index/labels"][()].tolist() == [0, 4, 4, 21]
    with h5py.File(tmp_path / "data/utd_mhad/gaf.h5") as h5:
        assert h5["gaf"].shape == (4, 3, 16, 16)
    assert sorted(p.name for p in (tmp_path / "data/utd_mhad").iterdir()) == ["frames.h5", "gaf.h5", "raw"]


@pytest.mark.parametrize("shimmer", [1, 6])
def test_berkeley_mhad_from_a_local_copy(tmp_path, run_stages, shimmer):
    src = tmp_path / "BerkeleyMHAD"
    make_berkeley_tree(src, [(1, 1, 1), (2, 5, 2), (9, 11, 4), (4, 8, 5)], frames=9,
                       skip_acc={(6, 2, 5, 2)}, no_video={(4, 8, 5)})
    # the accelerometer data as an archive, the camera as an extracted folder
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src / "Accelerometer", arcname="Accelerometer")
    (src / "Accelerometer.tar.gz").write_bytes(buf.getvalue())
    shutil.rmtree(src / "Accelerometer")
    # the made-up series (shimmer, action, ramp) are not in g: the unit-free scale (layout test)
    lines = run_stages("berkeley_mhad", {"berkeley_mhad.source": str(src), "gaf.scale": "joint",
                                         "berkeley_mhad.sensor.shimmer": shimmer})
    assert "archives=1, copied=2" in lines["download"] and "recordings=3" in lines["download"]
    assert "known_missing=1 (s04_a08_r05)" in lines["gaf"]
    with h5py.File(tmp_path / "data/berkeley_mhad/frames.h5") as h5:
        assert h5["frames/s02_a05_r02"].shape == (9, 32, 43, 3)
        assert h5["frames/s02_a05_r02"][4, 10, 10].tolist() == [45, 45, 45]     # grey PGM value 10*4 + 5
        assert len(h5["index/ids"]) == 3
    with h5py.File(tmp_path / "data/berkeley_mhad/gaf.h5") as h5:
        ids = [v.decode() for v in h5["index/ids"][()]]
    if shimmer == 1:
        assert ids == ["s01_a01_r01", "s02_a05_r02", "s09_a11_r04"] and "no_sensor=0" in lines["gaf"]
    else:  # Shimmer06 has no file for s02_a05_r02: left out of the GAF store and named
        assert ids == ["s01_a01_r01", "s09_a11_r04"] and "no_sensor=1 (s02_a05_r02)" in lines["gaf"]


def test_mmact_from_a_local_copy(tmp_path, run_stages):
    src = tmp_path / "MMAct"
    make_mmact_tree(src, [(1, 1, 1, "walking"), (1, 1, 5, "carrying"), (17, 2, 5, "walking")],
                    empty={(1, 1, 5, "carrying")})
    # the made-up series are not in g: the unit-free scale (layout test)
    lines = run_stages("mmact", {"mmact.source": str(src), "mmact.split.name": "cross_session",
                                 "gaf.scale": "joint"})
    assert "recordings=3" in lines["download"]
    assert "no_sensor=1 (s01_sc1_se5_carrying)" in lines["gaf"] and "trials=2" in lines["gaf"]
    with h5py.File(tmp_path / "data/mmact/frames.h5") as h5:
        assert len(h5["index/ids"]) == 3 and h5["index/trials"][()].tolist() == [1, 5, 5]


def test_missing_mmact_source_is_a_one_line_error(tmp_path, run_stages, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_stages("mmact", {}, stages=("download",))
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("download@mmact: error: mmact: no local copy")
    assert "acc_phone_clip.tar.gz" in err and not (tmp_path / "data/mmact/raw").exists()


def test_berkeley_mhad_real_accelerometer_files_through_the_stages(tmp_path, run_stages, shared_fixtures):
    src = tmp_path / "BerkeleyMHAD"
    make_berkeley_tree(src, [(1, 5, 1)], frames=10)
    for h in range(1, 7):                      # the real files replace the generated ones
        name = f"acc_h{h:02d}_s01_a05_r01.txt"
        shutil.copy(shared_fixtures / "berkeley_mhad" / name, src / "Accelerometer" / f"Shimmer{h:02d}" / name)
    shutil.copy(shared_fixtures / "berkeley_mhad" / "time_stamps_img_s01_a05_r01.txt",
                src / "Time_stamps" / "time_stamps_img_s01_a05_r01.txt")
    lines = run_stages("berkeley_mhad", {"berkeley_mhad.source": str(src)})
    # 7.935 s of irregular samples at 30 Hz: 239 uniform samples (247 as recorded)
    assert "trials=1, min_length=239, max_length=239" in lines["gaf"]
    lines = run_stages("berkeley_mhad", {"berkeley_mhad.source": str(src), "berkeley_mhad.sensor.rate_hz": 0,
                                         "berkeley_mhad.sensor.shimmer": 6}, stages=("gaf",))
    assert "min_length=248, max_length=248" in lines["gaf"]
