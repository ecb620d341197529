"""Reader for Berkeley-MHAD (Ofli et al., WACV 2013) in its native layout.

11 actions x 12 subjects x 5 repetitions. Per recording (S = subject, A = action,
R = repetition, two digits each):

* accelerometers ``Accelerometer/Shimmer0{h}/acc_h0{h}_s{S}_a{A}_r{R}.txt``, h = 1..6, one
  line per sample ``ax ay az unix_time`` (g, clipped at +-2 g) at an irregular ~31 Hz; the
  reader interpolates them onto a uniform grid (``sensor.rate_hz``). Placement (inferred from
  the data, not documented): 1/2 wrists (2 = right), 3/4 hips, 5/6 ankles;
* cameras: one folder of PGM frames per recording,
  ``Camera/Cluster0{c}/Cam0{k}/S{S}/A{A}/R{R}/img_l0{c}_c0{k}_s{S}_a{A}_r{R}_{frame:05d}.pgm``,
  about 22 fps, 640 x 480, 8-bit, plus ``Time_stamps/`` files (not needed here). The frames
  are read as grayscale (``video.bayer: none``), as the authors and the paper treat them;
  the dataset's own demo code demosaics Cluster01/Cam01 as a GRBG Bayer mosaic, which
  ``video.bayer: grbg`` does (in libswscale).

Standard split: subjects 1-7 train, 8-12 test (``cross_subject``). The reader searches for
the ``Camera`` and ``Accelerometer`` trees anywhere under the raw folder, so an extra top
folder from an archive does not matter.
"""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import numpy as np

from vskd.datasets.resample import resample_uniform
from vskd.download import RawSpec
from vskd.index import Sample, id_listing

ACTIONS = (
    "jumping in place", "jumping jacks", "bending (hands up all the way down)",
    "punching (boxing)", "waving (two hands)", "waving (one hand)", "clapping hands",
    "throwing a ball", "sit down then stand up", "sit down", "stand up",
)
SUBJECTS = range(1, 13)
REPETITIONS = range(1, 6)
SHIMMERS = range(1, 7)
BAYER = ("none", "grbg", "rggb", "gbrg", "bggr")
# (subject, action, repetition) with no camera recording in the release: it is absent from
# the complete Cluster01 frame lists of the authors' lab (SAKDN: 384 + 275 = 659 of 660).
KNOWN_MISSING = frozenset({(4, 8, 5)})

ACC_PATTERN = re.compile(r"^acc_h(\d{2})_s(\d{2})_a(\d{2})_r(\d{2})\.txt$")
FRAME_PATTERN = re.compile(r"_(\d+)\.pgm$", re.IGNORECASE)

PAGE = "https://tele-immersion.citris-uc.org/berkeley_mhad"
SPEC = RawSpec(
    dataset="berkeley_mhad",
    page=PAGE,
    instructions=(f"Berkeley-MHAD is distributed from {PAGE} after filling in a request form, "
                  "so this pipeline cannot fetch it by itself. Download there the accelerometer "
                  "data and the camera data of the camera you use (Camera/Cluster01/Cam01 by "
                  "default), then set 'berkeley_mhad.source' to the folder holding those "
                  "archives (or their extracted Accelerometer/ and Camera/ folders). If the "
                  "page gives you direct links, list them under 'berkeley_mhad.download.urls' "
                  "instead."),
)


class LayoutError(ValueError):
    """The raw folder does not hold a usable Berkeley-MHAD layout."""


def recording_id(subject: int, action: int, repetition: int) -> str:
    return f"s{subject:02d}_a{action:02d}_r{repetition:02d}"


def _video_cfg(block: dict) -> dict:
    return {"cluster": 1, "camera": 1, "bayer": "none", **(block.get("video") or {})}


def _sensor_cfg(block: dict) -> dict:
    return {"shimmer": 1, "rate_hz": 30.0, **(block.get("sensor") or {})}


def _find(raw: Path, relative: str, depth: int = 3) -> list[Path]:
    """Folders ``raw/[*/...]relative`` at most ``depth`` levels down (no full tree walk)."""
    found = []
    for level in range(depth + 1):
        found += [p for p in raw.glob("/".join(["*"] * level + [relative])) if p.is_dir()]
    return sorted(set(found))


def find_camera(raw_dir: Path, cluster: int, camera: int) -> Path:
    raw = Path(raw_dir)
    name = f"Cluster{cluster:02d}/Cam{camera:02d}"
    hits = _find(raw, name, depth=4)
    if not hits:
        present = sorted({f"{p.parent.name}/{p.name}" for p in _find(raw, "Cluster*/Cam*", depth=4)})
        raise LayoutError(
            f"{raw}: no camera folder {name} (expected Camera/{name}/S??/A??/R??/*.pgm). "
            + (f"Cameras present: {', '.join(present)}; choose one with berkeley_mhad.video."
               if present else "No camera data at all: add the camera archive to the source.")
        )
    if len(hits) > 1:
        raise LayoutError(f"{raw}: {name} found twice ({hits[0]}, {hits[1]}); keep one copy")
    return hits[0]


def accelerometer_files(raw_dir: Path, shimmer: int) -> dict[tuple[int, int, int], Path]:
    """{(subject, action, repetition): acc_h0{shimmer}_... .txt} anywhere under the raw folder."""
    files = {}
    for path in sorted(Path(raw_dir).rglob(f"acc_h{shimmer:02d}_s*_a*_r*.txt")):
        m = ACC_PATTERN.match(path.name)
        if m and path.is_file():
            files[(int(m[2]), int(m[3]), int(m[4]))] = path
    return files


def _has_frames(folder: Path) -> bool:
    with os.scandir(folder) as entries:
        return any(e.name.lower().endswith(".pgm") for e in entries)


def _recording_folders(cam_dir: Path):
    for s_dir in sorted(cam_dir.glob("S[0-9][0-9]")):
        for a_dir in sorted(s_dir.glob("A[0-9][0-9]")):
            for r_dir in sorted(a_dir.glob("R[0-9][0-9]")):
                if r_dir.is_dir():
                    yield (int(s_dir.name[1:]), int(a_dir.name[1:]), int(r_dir.name[1:])), r_dir


def scan(raw_dir: str | Path, block: dict) -> list[Sample]:
    """Every recording with frames for the chosen camera, sorted by (subject, action, rep).

    ``sensor`` is the chosen Shimmer's file, or None where that file is absent (the GAF stage
    leaves such a recording out and counts it). Folders of actions outside 1-11 (T-pose,
    background) are skipped and counted by ``census``.
    """
    raw = Path(raw_dir)
    if not raw.is_dir():
        raise LayoutError(f"{raw}: not a folder. Run the download stage first.")
    video, sensor = _video_cfg(block), _sensor_cfg(block)
    cam_dir = find_camera(raw, video["cluster"], video["camera"])
    acc = accelerometer_files(raw, sensor["shimmer"])
    samples = []
    for (s, a, r), folder in _recording_folders(cam_dir):
        if 1 <= a <= len(ACTIONS) and _has_frames(folder):
            samples.append(Sample(recording_id(s, a, r), a - 1, s, r, folder, acc.get((s, a, r))))
    if not samples:
        raise LayoutError(f"{cam_dir}: no S??/A??/R?? folders holding .pgm frames")
    return samples


def census(raw_dir: str | Path, block: dict, samples: list[Sample]) -> dict:
    found = {(s.subject, s.label + 1, s.trial) for s in samples}
    acc = accelerometer_files(Path(raw_dir), _sensor_cfg(block)["shimmer"])
    grid = {(s, a, r) for s in SUBJECTS for a in range(1, len(ACTIONS) + 1) for r in REPETITIONS}
    no_video = sorted(k for k in acc if k not in found and k not in KNOWN_MISSING)
    absent = sorted(grid - found - KNOWN_MISSING - set(no_video))
    ignored = sorted(k for k in acc if not 1 <= k[1] <= len(ACTIONS))
    return {
        "known_missing": id_listing([recording_id(*k) for k in sorted(KNOWN_MISSING - found)]),
        "no_sensor": id_listing([s.id for s in samples if s.sensor is None]),
        "no_video": id_listing([recording_id(*k) for k in no_video if k not in ignored]),
        "absent": id_listing([recording_id(*k) for k in absent]),
        "other_actions": len(ignored),
    }


# --- accelerometer --------------------------------------------------------------------------
def read_accelerometer_text(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """(unix_time (N,), acc (N, 3) in g) from one Shimmer text file, as recorded."""
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # numpy warns on an empty file; we raise below
            data = np.loadtxt(path, dtype=np.float64, ndmin=2)
    except (ValueError, OSError) as exc:
        raise LayoutError(f"{path}: not a Berkeley-MHAD accelerometer file with lines "
                          f"'ax ay az unix_time' ({exc})") from None
    if data.shape[0] < 2 or data.shape[1] != 4:
        raise LayoutError(f"{path}: {data.shape[0]} line(s) of {data.shape[1] if data.size else 0} "
                          "column(s); expected at least 2 lines 'ax ay az unix_time'")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).any(axis=1).sum())
        raise LayoutError(f"{path}: {bad} line(s) with NaN or inf; repair or remove the recording")
    return data[:, 3], data[:, :3]


def read_accelerometer(path: str | Path, block: dict | None = None) -> np.ndarray:
    """The accelerometer on a uniform ``sensor.rate_hz`` grid (0: the samples as recorded)."""
    t, acc = read_accelerometer_text(path)
    rate = float(_sensor_cfg(block or {})["rate_hz"])
    if rate <= 0:
        return acc
    try:
        return resample_uniform(t, acc, rate)[1]
    except ValueError as exc:
        raise LayoutError(f"{path}: cannot resample to {rate} Hz: {exc}") from None


# --- camera frames --------------------------------------------------------------------------
def read_pgm(path: str | Path) -> np.ndarray:
    """A binary (P5) PGM image as (H, W) uint8; 16-bit images are scaled to 8 bits."""
    from vskd.frames import VideoError

    path = Path(path)
    data = path.read_bytes()
    if data[:2] != b"P5":
        raise VideoError(f"{path}: not a binary PGM image (magic {data[:2]!r}, expected b'P5')")
    values, pos = [], 2
    while len(values) < 3:
        while pos < len(data) and data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.find(b"\n", pos) + 1 or len(data)
            continue
        start = pos
        while pos < len(data) and data[pos:pos + 1].isdigit():
            pos += 1
        if start == pos:
            raise VideoError(f"{path}: malformed PGM header")
        values.append(int(data[start:pos]))
    width, height, maxval = values
    pos += 1  # the single whitespace character after maxval
    if not (width > 0 and height > 0 and 0 < maxval < 65536):
        raise VideoError(f"{path}: PGM header gives {width} x {height}, maxval {maxval}")
    dtype = np.dtype(np.uint8) if maxval < 256 else np.dtype(">u2")
    need = width * height * dtype.itemsize
    if len(data) - pos < need:
        raise VideoError(f"{path}: truncated PGM ({len(data) - pos} of {need} pixel bytes). "
                         "Restore the file from the archive.")
    image = np.frombuffer(data, dtype, count=width * height, offset=pos).reshape(height, width)
    if maxval != 255:
        image = (image.astype(np.float32) * (255.0 / maxval) + 0.5).astype(np.uint8)
    return image


def frame_files(folder: str | Path) -> list[Path]:
    """The folder's .pgm frames in frame-number order (img_..._00012.pgm -> 12)."""
    from vskd.frames import VideoError

    folder = Path(folder)
    numbered = []
    for path in folder.iterdir():
        if path.suffix.lower() != ".pgm":
            continue
        m = FRAME_PATTERN.search(path.name)
        if not m:
            raise VideoError(f"{path}: frame file without a frame number (expected ..._00012.pgm)")
        numbered.append((int(m[1]), path))
    numbered.sort()
    numbers = [n for n, _ in numbered]
    if len(set(numbers)) != len(numbers):
        raise VideoError(f"{folder}: two frames share a frame number")
    return [p for _, p in numbered]


def read_video(folder: str | Path, short_side: int, block: dict) -> np.ndarray:
    """A recording's PGM frames as (T, H, W, 3) uint8 RGB, short side resized to
    ``short_side`` in libswscale (area averaging, as for video files); grayscale frames give
    three equal channels, Bayer mosaics (``video.bayer``) are demosaiced."""
    import av

    from vskd.frames import VideoError, resized_shape

    folder = Path(folder)
    files = frame_files(folder)
    if not files:
        raise VideoError(f"{folder}: no .pgm frames. Restore the recording from the archive.")
    bayer = _video_cfg(block)["bayer"]
    fmt = "gray" if bayer == "none" else f"bayer_{bayer}8"
    frames, first = [], None
    for path in files:
        image = read_pgm(path)
        if first is None:
            first = image.shape
            out_h, out_w = resized_shape(first[0], first[1], short_side)
        elif image.shape != first:
            raise VideoError(f"{path}: {image.shape[1]} x {image.shape[0]} pixels, but the "
                             f"recording's first frame is {first[1]} x {first[0]}")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format=fmt)
        frames.append(frame.reformat(width=out_w, height=out_h, format="rgb24",
                                     interpolation="AREA").to_ndarray())
    return np.stack(frames)


# --- params ---------------------------------------------------------------------------------
def check_params(block: dict) -> list[tuple[str, str]]:
    problems = []
    video, sensor = block.get("video"), block.get("sensor")
    if not isinstance(video, dict):
        return [("video", "must be a mapping (cluster, camera, bayer)")]
    if not isinstance(sensor, dict):
        return [("sensor", "must be a mapping (shimmer, rate_hz)")]
    for key, lo, hi in (("cluster", 1, 4), ("camera", 1, 4)):
        value = video.get(key)
        if not (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi):
            problems.append((f"video.{key}", f"must be an integer in {lo}..{hi}, got {value!r}"))
    if video.get("bayer", "none") not in BAYER:
        problems.append(("video.bayer", f"must be one of {', '.join(BAYER)}, got {video.get('bayer')!r}"))
    shimmer = sensor.get("shimmer")
    if not (isinstance(shimmer, int) and not isinstance(shimmer, bool) and shimmer in SHIMMERS):
        problems.append(("sensor.shimmer", f"must be an integer in 1..6 (Shimmer01..06), got {shimmer!r}"))
    rate = sensor.get("rate_hz")
    if not (isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate >= 0):
        problems.append(("sensor.rate_hz", f"must be a number >= 0 (0: no resampling), got {rate!r}"))
    unknown = sorted(set(video) - {"cluster", "camera", "bayer"}) + sorted(set(sensor) - {"shimmer", "rate_hz"})
    if unknown:
        problems.append(("video/sensor", f"unknown key(s) {unknown}"))
    return problems
