"""Berkeley-MHAD reader: the real sample files, and mini trees in the exact native layout."""

import numpy as np
import pytest

from vskd.datasets.berkeley_mhad import (LayoutError, census, check_params, read_accelerometer,
                                         read_accelerometer_text, read_pgm, read_video, scan)
from vskd.datasets.resample import resample_uniform
from vskd.frames import VideoError
from vskd.index import make_split

BLOCK = {"video": {"cluster": 1, "camera": 1, "bayer": "none"}, "sensor": {"shimmer": 1, "rate_hz": 30}}


def block(**sensor):
    return {"video": dict(BLOCK["video"]), "sensor": {**BLOCK["sensor"], **sensor}}


def write_pgm(path, image, maxval=255):
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = image.shape
    header = f"P5\n# written by the vskd tests\n{width} {height}\n{maxval}\n".encode()
    path.write_bytes(header + image.astype(">u2" if maxval > 255 else np.uint8).tobytes())


def write_acc(path, t, xyz):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{x:.6f} {y:.6f} {z:.6f} {ti:.6f}\n" for (x, y, z), ti in zip(xyz, t)))


def make_tree(root, recordings, frames=5, skip_acc=(), no_video=()):
    """Accelerometer/Shimmer0h/acc_h0h_sSS_aAA_rRR.txt (irregular timestamps, h = 1..6),
    Camera/Cluster01/Cam01/SSS/AAA/RRR/img_l01_c01_..._NNNNN.pgm and Time_stamps/."""
    rng = np.random.default_rng(0)
    for s, a, r in recordings:
        tag = f"s{s:02d}_a{a:02d}_r{r:02d}"
        t = 1309540771.9 + np.cumsum(rng.uniform(1 / 46, 1 / 22, 40))   # 22-46 Hz, like the real files
        for h in range(1, 7):
            if (h, s, a, r) not in skip_acc:
                xyz = np.column_stack([np.full(40, h), np.full(40, a), np.linspace(0, 1, 40)])
                write_acc(root / "Accelerometer" / f"Shimmer{h:02d}" / f"acc_h{h:02d}_{tag}.txt", t, xyz)
        if (s, a, r) in no_video:
            continue
        folder = root / "Camera" / "Cluster01" / "Cam01" / f"S{s:02d}" / f"A{a:02d}" / f"R{r:02d}"
        for i in reversed(range(frames)):  # written out of order on purpose
            write_pgm(folder / f"img_l01_c01_{tag}_{i:05d}.pgm", np.full((24, 32), 10 * i + a, np.uint8))
        stamps = root / "Time_stamps" / f"time_stamps_img_{tag}.txt"
        stamps.parent.mkdir(parents=True, exist_ok=True)
        stamps.write_text("".join(f"{i} {t[0] + i / 22:.6f}\n" for i in range(frames)))


# --- the real sample files ---------------------------------------------------------------
def test_real_accelerometer_files(shared_fixtures):
    folder = shared_fixtures / "berkeley_mhad"
    lengths = []
    for h in range(1, 7):
        t, acc = read_accelerometer_text(folder / f"acc_h{h:02d}_s01_a05_r01.txt")
        assert acc.shape == (len(t), 3) and np.all(np.abs(acc) <= 2.0)  # clipped at +-2 g
        lengths.append(len(t))
    assert lengths == [247, 247, 247, 246, 247, 248]
    t, acc = read_accelerometer_text(folder / "acc_h01_s01_a05_r01.txt")
    np.testing.assert_allclose(acc[0], [0.850586, -0.466797, 0.127930])
    assert t[0] == pytest.approx(1309540771.937360, abs=1e-6)
    gaps = np.diff(t)
    assert gaps.min() < 1 / 40 and gaps.max() > 1 / 25            # irregular, as documented
    assert 28 < (len(t) - 1) / (t[-1] - t[0]) < 34                 # ~31 Hz on average


def test_real_accelerometer_resampled_by_hand(shared_fixtures):
    path = shared_fixtures / "berkeley_mhad" / "acc_h01_s01_a05_r01.txt"
    acc = read_accelerometer(path, block(rate_hz=30))
    # 1309540779.872504 - 1309540771.937360 = 7.935144 s -> floor(7.935144 * 30) + 1 samples
    assert acc.shape == (239, 3)
    np.testing.assert_allclose(acc[0], [0.850586, -0.466797, 0.127930])
    # t = 1/30 s lies between the first two samples (0 and 0.042995 s after the start):
    # x = 0.850586 + (0.033333 / 0.042995) * (0.866211 - 0.850586) = 0.862700
    assert acc[1, 0] == pytest.approx(0.862700, abs=2e-6)
    assert acc[1, 1] == pytest.approx(-0.466797 + (1 / 30 / 0.042995) * (-0.492188 + 0.466797), abs=2e-6)
    raw = read_accelerometer(path, block(rate_hz=0))                 # 0: as recorded
    assert raw.shape == (247, 3)


def test_real_frame_timestamps_cover_the_accelerometer(shared_fixtures):
    stamps = np.loadtxt(shared_fixtures / "berkeley_mhad" / "time_stamps_img_s01_a05_r01.txt")
    assert stamps.shape == (170, 2) and stamps[0, 0] == 0 and stamps[-1, 0] == 169
    assert 21 < 169 / (stamps[-1, 1] - stamps[0, 1]) < 23           # the cameras' ~22 fps
    t, _ = read_accelerometer_text(shared_fixtures / "berkeley_mhad" / "acc_h01_s01_a05_r01.txt")
    assert abs(t[0] - stamps[0, 1]) < 0.2 and abs(t[-1] - stamps[-1, 1]) < 0.2  # same clip


# --- resampling ---------------------------------------------------------------------------
def test_resample_uniform_by_hand():
    # out of order, and two samples at t = 0.4 (averaged to 3)
    t = [0.1, 0.0, 0.3, 0.4, 0.4]
    x = [[1, 10], [0, 0], [3, 30], [2, 20], [4, 40]]
    grid, values = resample_uniform(t, x, 10)
    np.testing.assert_allclose(grid, [0, 0.1, 0.2, 0.3, 0.4], atol=1e-12)
    np.testing.assert_allclose(values, [[0, 0], [1, 10], [2, 20], [3, 30], [3, 30]])
    grid, values = resample_uniform([5.0, 5.25, 5.5], [[0], [1], [3]], 8)   # 0.125 s steps
    np.testing.assert_allclose(values[:, 0], [0, 0.5, 1, 2, 3])
    with pytest.raises(ValueError, match="less than one sample period"):
        resample_uniform([0, 0.01], [[0], [1]], 10)


# --- mini trees in the native layout ------------------------------------------------------
def test_scan_pairs_camera_folders_with_the_chosen_shimmer(tmp_path):
    make_tree(tmp_path, [(1, 1, 1), (1, 2, 3), (8, 11, 5), (4, 8, 5), (2, 12, 1)],
              skip_acc={(3, 1, 2, 3)}, no_video={(4, 8, 5)})
    samples = scan(tmp_path, BLOCK)
    assert [s.id for s in samples] == ["s01_a01_r01", "s01_a02_r03", "s08_a11_r05"]  # A12 (T-pose) skipped
    assert [(s.label, s.subject, s.trial) for s in samples] == [(0, 1, 1), (1, 1, 3), (10, 8, 5)]
    assert samples[1].video == tmp_path / "Camera/Cluster01/Cam01/S01/A02/R03"
    assert samples[1].sensor == tmp_path / "Accelerometer/Shimmer01/acc_h01_s01_a02_r03.txt"
    # another sensor: only the GAF side changes; the missing h03 file is None, not replaced
    third = scan(tmp_path, block(shimmer=3))
    assert [s.id for s in third] == [s.id for s in samples]
    assert third[0].sensor.name == "acc_h03_s01_a01_r01.txt" and third[1].sensor is None
    counts = census(tmp_path, block(shimmer=3), third)
    assert counts["known_missing"] == "1 (s04_a08_r05)"
    assert counts["no_sensor"] == "1 (s01_a02_r03)"
    assert counts["no_video"] == 0 and counts["other_actions"] == 1
    assert counts["absent"].startswith("656 (")                    # 660 - 3 found - 1 known
    # the standard split on this index
    split = make_split([s.subject for s in samples], [s.trial for s in samples],
                       [s.label for s in samples], {"name": "cross_subject", "train_subjects": list(range(1, 8))}, 0)
    assert split["train"].tolist() == [0, 1] and split["test"].tolist() == [2]


def test_pgm_frames_read_in_frame_order_as_grey_rgb(tmp_path):
    make_tree(tmp_path, [(1, 3, 1)], frames=12)
    folder = tmp_path / "Camera/Cluster01/Cam01/S01/A03/R01"
    frames = read_video(folder, 24, BLOCK)
    assert frames.shape == (12, 24, 32, 3) and frames.dtype == np.uint8
    assert frames[:, 5, 7, 0].tolist() == [10 * i + 3 for i in range(12)]   # 00000, 00001, ... 00011
    assert np.all(frames == frames[..., :1])                       # three equal channels
    small = read_video(folder, 12, BLOCK)
    assert small.shape == (12, 12, 16, 3) and small[4, 6, 8].tolist() == [43, 43, 43]


def test_bayer_mosaic_is_demosaiced_when_asked(tmp_path):
    mosaic = np.empty((24, 32), np.uint8)
    mosaic[0::2, 0::2], mosaic[0::2, 1::2] = 100, 200               # G R
    mosaic[1::2, 0::2], mosaic[1::2, 1::2] = 50, 100                # B G
    write_pgm(tmp_path / "R01" / "img_l01_c01_s01_a01_r01_00000.pgm", mosaic)
    colour = read_video(tmp_path / "R01", 24, {"video": {"bayer": "grbg"}})
    np.testing.assert_allclose(colour[0, 12, 16], [200, 100, 50], atol=2)
    grey = read_video(tmp_path / "R01", 24, {"video": {"bayer": "none"}})
    assert grey[0, 12, 16].tolist() in ([100, 100, 100], [200, 200, 200], [50, 50, 50])


def test_pgm_variants_and_damage(tmp_path):
    write_pgm(tmp_path / "deep.pgm", np.array([[4095, 2048], [0, 1]]), maxval=4095)
    assert read_pgm(tmp_path / "deep.pgm").tolist() == [[255, 128], [0, 0]]
    write_pgm(tmp_path / "cut.pgm", np.zeros((24, 32), np.uint8))
    (tmp_path / "cut.pgm").write_bytes((tmp_path / "cut.pgm").read_bytes()[:-100])
    with pytest.raises(VideoError, match="cut.pgm: truncated PGM"):
        read_pgm(tmp_path / "cut.pgm")
    (tmp_path / "text.pgm").write_bytes(b"P2\n2 1\n255\n0 1\n")
    with pytest.raises(VideoError, match="text.pgm: not a binary PGM"):
        read_pgm(tmp_path / "text.pgm")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VideoError, match="empty: no .pgm frames"):
        read_video(tmp_path / "empty", 24, BLOCK)


def test_missing_camera_names_the_ones_present(tmp_path):
    make_tree(tmp_path, [(1, 1, 1)])
    other = {"video": {"cluster": 2, "camera": 1, "bayer": "none"}, "sensor": BLOCK["sensor"]}
    with pytest.raises(LayoutError, match="no camera folder Cluster02/Cam01.*Cameras present: Cluster01/Cam01"):
        scan(tmp_path, other)
    with pytest.raises(LayoutError, match="not a folder"):
        scan(tmp_path / "nope", BLOCK)


def test_archive_top_folder_does_not_matter(tmp_path):
    make_tree(tmp_path / "BerkeleyMHAD", [(5, 4, 2)])
    samples = scan(tmp_path, BLOCK)
    assert [s.id for s in samples] == ["s05_a04_r02"] and samples[0].sensor is not None


@pytest.mark.parametrize("text, message", [
    ("0.1 0.2 0.3\n0.1 0.2 0.3\n", "expected at least 2 lines 'ax ay az unix_time'"),
    ("", "0 line"),
    ("0.1 0.2 0.3 1.0\n0.1 x 0.3 2.0\n", "not a Berkeley-MHAD accelerometer file"),
    ("0.1 0.2 0.3 1.0\n0.1 nan 0.3 2.0\n", "1 line\\(s\\) with NaN"),
])
def test_bad_accelerometer_files_name_the_file(tmp_path, text, message):
    path = tmp_path / "acc_h01_s01_a01_r01.txt"
    path.write_text(text)
    with pytest.raises(LayoutError, match=message) as err:
        read_accelerometer(path, BLOCK)
    assert str(path) in str(err.value)


def test_params_checks():
    assert check_params(BLOCK) == []
    problems = dict(check_params({"video": {"cluster": 5, "camera": 1, "bayer": "rgb"},
                                  "sensor": {"shimmer": 7, "rate_hz": -1}}))
    assert set(problems) == {"video.cluster", "video.bayer", "sensor.shimmer", "sensor.rate_hz"}
    assert "1..6" in problems["sensor.shimmer"]
