"""MMAct reader on mini trees in the native layout (sensor CSV clips + per-camera videos)."""

import io
import tarfile

import numpy as np
import pytest

from tests.test_frames import write_video
from vskd.datasets import get_adapter
from vskd.datasets.mmact import (LayoutError, census, check_params, class_names, parse_timestamps,
                                 read_accelerometer, read_csv, scan)
from vskd.download import SourceError
from vskd.index import make_split

BLOCK = {"video": {"camera": 1}, "sensor": {"device": "phone", "rate_hz": 0}}
PHONE = ("2018-11-09 10:59:30.000,0.10,9.80,0.30\n"
         "2018-11-09 10:59:30.010,0.20,9.70,0.40\n"
         "2018-11-09 10:59:30.030,0.40,9.50,0.60\n"
         "2018-11-09 10:59:30.040,0.50,9.40,0.70\n")


def block(**kw):
    out = {"video": dict(BLOCK["video"]), "sensor": dict(BLOCK["sensor"])}
    for key, value in kw.items():
        section, name = key.split("__")
        out[section][name] = value
    return out


def make_tree(root, clips, cams=(1,), empty=(), no_watch=(), video_root="trimmed/video"):
    """acc_phone_clip/subjectX/sceneY/sessionZ/ACTION.csv, acc_watch_clip/... and
    VIDEO_ROOT/subjectX/camC/sceneY/sessionZ/ACTION.mp4."""
    for subject, scene, session, action in clips:
        rel = f"subject{subject}/scene{scene}/session{session}/{action}"
        phone = root / "acc_phone_clip" / f"{rel}.csv"
        phone.parent.mkdir(parents=True, exist_ok=True)
        phone.write_text("" if (subject, scene, session, action) in empty else PHONE)
        if (subject, scene, session, action) not in no_watch:
            watch = root / "acc_watch_clip" / f"{rel}.csv"
            watch.parent.mkdir(parents=True, exist_ok=True)
            # epoch milliseconds, and a header line
            watch.write_text("timestamp,x,y,z\n" + "".join(
                f"{1541761170000 + 20 * i},{i},{2 * i},{-i}\n" for i in range(6)))
        for cam in cams:
            video = root / video_root / f"subject{subject}/cam{cam}/scene{scene}/session{session}/{action}.mp4"
            video.parent.mkdir(parents=True, exist_ok=True)
            write_video(video, [(0, 0, 255)] * 4, 32, 24)


CLIPS = [(1, 1, 1, "walking"), (1, 1, 5, "carrying"), (2, 3, 2, "using_pc"), (17, 2, 5, "walking"),
         (1, 3, 1, "talking_on_phone")]


def test_scan_gives_one_sample_per_clip(tmp_path):
    make_tree(tmp_path, CLIPS, cams=(1, 2), empty={(2, 3, 2, "using_pc")})
    samples = scan(tmp_path, BLOCK)
    assert [s.id for s in samples] == ["s01_sc1_se1_walking", "s01_sc1_se5_carrying",
                                       "s01_sc3_se1_talking_on_phone", "s02_sc3_se2_using_pc",
                                       "s17_sc2_se5_walking"]
    # labels: the alphabetical order of the action names found
    assert class_names(tmp_path) == ["carrying", "talking_on_phone", "using_pc", "walking"]
    assert [s.label for s in samples] == [3, 0, 1, 2, 3]
    assert [(s.subject, s.trial) for s in samples] == [(1, 1), (1, 5), (1, 1), (2, 2), (17, 5)]  # trial = session
    assert samples[0].video == tmp_path / "trimmed/video/subject1/cam1/scene1/session1/walking.mp4"
    assert samples[0].sensor == tmp_path / "acc_phone_clip/subject1/scene1/session1/walking.csv"
    assert samples[3].sensor is None                                # the empty CSV
    assert census(tmp_path, BLOCK, samples) == {"device": "phone", "no_sensor": "1 (s02_sc3_se2_using_pc)",
                                                 "no_video": 0}
    # watch and camera 2 instead
    watch = scan(tmp_path, block(sensor__device="watch", video__camera=2))
    assert watch[3].sensor.parts[-5] == "acc_watch_clip" and watch[0].video.parts[-4] == "cam2"


def test_invalid_files_list_and_missing_videos_are_counted(tmp_path):
    make_tree(tmp_path, CLIPS[:3])
    (tmp_path / "acc_phone_clip" / "invalid_files.txt").write_text("subject1/scene1/session5/carrying.csv\n")
    extra = tmp_path / "acc_phone_clip/subject3/scene1/session1/walking.csv"
    extra.parent.mkdir(parents=True)
    extra.write_text(PHONE)                                          # a clip with no video
    samples = scan(tmp_path, BLOCK)
    counts = census(tmp_path, BLOCK, samples)
    assert counts["no_sensor"] == "1 (s01_sc1_se5_carrying)"
    assert counts["no_video"] == "1 (s03_sc1_se1_walking)"


def test_csv_values_and_resampling_by_hand(tmp_path):
    make_tree(tmp_path, CLIPS[:1])
    path = tmp_path / "acc_phone_clip/subject1/scene1/session1/walking.csv"
    stamps, xyz = read_csv(path)
    assert stamps[0] == "2018-11-09 10:59:30.000"
    np.testing.assert_allclose(xyz, [[0.1, 9.8, 0.3], [0.2, 9.7, 0.4], [0.4, 9.5, 0.6], [0.5, 9.4, 0.7]])
    np.testing.assert_allclose(read_accelerometer(path, BLOCK), xyz)          # rate 0: as recorded
    # 100 Hz from 0, 10, 30, 40 ms: the 20 ms point is halfway between 10 ms and 30 ms
    resampled = read_accelerometer(path, block(sensor__rate_hz=100))
    np.testing.assert_allclose(resampled, [[0.1, 9.8, 0.3], [0.2, 9.7, 0.4], [0.3, 9.6, 0.5],
                                           [0.4, 9.5, 0.6], [0.5, 9.4, 0.7]], atol=1e-9)
    watch = tmp_path / "acc_watch_clip/subject1/scene1/session1/walking.csv"
    stamps, xyz = read_csv(watch)                                    # header skipped
    assert xyz.shape == (6, 3) and xyz[5].tolist() == [5, 10, -5]
    np.testing.assert_allclose(np.diff(parse_timestamps(stamps)), 0.02)  # milliseconds -> s


@pytest.mark.parametrize("text, message", [
    ("", "0 sample"),
    ("1,2,3\n", "3 column"),
    ("t,x,y,z\n1,0.1,0.2,0.3\n2,a,0.2,0.3\n", ":3: x, y, z are not numbers"),
])
def test_bad_csv_names_the_file_and_line(tmp_path, text, message):
    path = tmp_path / "walking.csv"
    path.write_text(text)
    with pytest.raises(LayoutError, match=message) as err:
        read_csv(path)
    assert str(path) in str(err.value)


def test_cross_subject_and_cross_session_splits(tmp_path):
    make_tree(tmp_path, CLIPS)
    samples = scan(tmp_path, BLOCK)
    subjects, sessions, labels = ([getattr(s, f) for s in samples] for f in ("subject", "trial", "label"))
    by_subject = make_split(subjects, sessions, labels,
                            {"name": "cross_subject", "train_subjects": list(range(1, 17))}, 0)
    assert [samples[i].id for i in by_subject["test"]] == ["s17_sc2_se5_walking"]
    by_session = make_split(subjects, sessions, labels,
                            {"name": "cross_session", "train_sessions": [1, 2, 3, 4]}, 0)
    assert [samples[i].id for i in by_session["test"]] == ["s01_sc1_se5_carrying", "s17_sc2_se5_walking"]


def test_no_videos_for_the_camera(tmp_path):
    make_tree(tmp_path, CLIPS[:1], cams=(2,))
    with pytest.raises(LayoutError, match="no videos subject\\{X\\}/cam1/.*Cameras present: \\[2\\]"):
        scan(tmp_path, BLOCK)


def test_local_source_with_archives_and_what_is_missing(tmp_path):
    src = tmp_path / "MMAct"
    make_tree(src, CLIPS[:2])
    adapter = get_adapter("mmact")
    # the phone clips as the official archive, the videos as a folder
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        tf.add(src / "acc_phone_clip", arcname="acc_phone_clip")
    (src / "acc_phone_clip.tar.gz").write_bytes(buf.getvalue())
    import shutil
    shutil.rmtree(src / "acc_phone_clip")
    shutil.rmtree(src / "acc_watch_clip")
    summary = adapter.prepare_raw({"source": str(src), "download": {}}, tmp_path / "raw")
    assert summary == {"source": str(src), "archives": 1, "copied": 1}
    assert len(adapter.scan(tmp_path / "raw", BLOCK)) == 2
    # only videos: the accelerometer archives are named
    shutil.rmtree(tmp_path / "raw")
    (src / "acc_phone_clip.tar.gz").unlink()
    with pytest.raises(SourceError, match="lacks an accelerometer set: acc_phone_clip/ or acc_phone_clip.tar.gz"):
        adapter.prepare_raw({"source": str(src), "download": {}}, tmp_path / "raw")


def test_params_checks():
    assert check_params({**BLOCK, "split": {"name": "cross_session"}, "download": {}}) == []
    problems = dict(check_params({"video": {"camera": 0}, "sensor": {"device": "pocket", "rate_hz": -1},
                                  "split": {"name": "subject_specific"},
                                  "download": {"urls": ["https://example.org/mmact.zip"]}}))
    assert set(problems) == {"video.camera", "sensor.device", "sensor.rate_hz", "split.name", "download.urls"}
    assert "licensed" in problems["download.urls"]
