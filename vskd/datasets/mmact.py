"""Reader for MMAct (Kong et al., ICCV 2019): trimmed clips, one per action performance.

MMAct is licensed (signed request at https://mmact19.github.io/2019/) and may not be
redistributed, so the pipeline never downloads it: ``mmact.source`` must name a local copy.
The reader expects, anywhere under the raw folder:

* accelerometers from ``acc_phone_clip.tar.gz`` / ``acc_watch_clip.tar.gz``:
  ``acc_phone_clip/subject{X}/scene{Y}/session{Z}/{action}.csv`` (and ``acc_watch_clip/...``),
  lines ``timestamp,x,y,z`` at about 100 Hz (phone in the right trouser pocket, watch on
  the right wrist). Empty files exist in the release; they, and files named in an
  ``invalid_files.txt`` beside them, count as "no sensor";
* trimmed RGB videos ``subject{X}/cam{C}/scene{Y}/session{Z}/{action}.mp4`` (four fixed
  cameras, 1920 x 1080), under any top folder.

``sensor.device`` picks phone or watch, ``video.camera`` the camera. A sample is one
(subject, scene, session, action); its ``trial`` is the session, so ``cross_session`` splits
on it. Labels are the alphabetical order of the action names found in the raw folder (the
order MMAct's own class indices follow).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

import numpy as np

from vskd.datasets.resample import resample_uniform
from vskd.download import RawSpec
from vskd.index import Sample, id_listing

DEVICES = {"phone": "acc_phone_clip", "watch": "acc_watch_clip"}
VIDEO_SUFFIXES = (".mp4", ".avi")
SPLITS = ("cross_subject", "cross_session")
PAGE = "https://mmact19.github.io/2019/"

_SUBJECT, _SCENE, _SESSION, _CAM = (re.compile(rf"^{w}(\d+)$", re.IGNORECASE)
                                    for w in ("subject", "scene", "session", "cam"))

ACC_EXPECTED = ("an accelerometer set: acc_phone_clip/ or acc_phone_clip.tar.gz, and/or "
                "acc_watch_clip/ or acc_watch_clip.tar.gz, each laid out "
                "subject{X}/scene{Y}/session{Z}/{action}.csv")
VIDEO_EXPECTED = ("the trimmed RGB videos, as a folder or archive laid out "
                  "subject{X}/cam{C}/scene{Y}/session{Z}/{action}.mp4")


class LayoutError(ValueError):
    """The raw folder does not hold a usable MMAct layout."""


def _missing_components(raw: Path) -> list[str]:
    missing = []
    if not any(_find(raw, folder) for folder in DEVICES.values()):
        missing.append(ACC_EXPECTED)
    if not video_files(raw, None):
        missing.append(VIDEO_EXPECTED)
    return missing


SPEC = RawSpec(
    dataset="mmact",
    page=PAGE,
    instructions=("MMAct is licensed and is never downloaded by this pipeline: request it at "
                  f"{PAGE}, then set 'mmact.source' to a folder holding {ACC_EXPECTED}; "
                  f"and {VIDEO_EXPECTED}. Archives in that folder are checked and extracted, "
                  "folders are copied."),
    check=_missing_components,
)


def recording_id(subject: int, scene: int, session: int, action: str) -> str:
    return f"s{subject:02d}_sc{scene}_se{session}_{action}"


def _video_cfg(block: dict) -> dict:
    return {"camera": 1, **(block.get("video") or {})}


def _sensor_cfg(block: dict) -> dict:
    return {"device": "phone", "rate_hz": 0, **(block.get("sensor") or {})}


def _find(raw: Path, name: str, depth: int = 3) -> list[Path]:
    found = []
    for level in range(depth + 1):
        found += [p for p in raw.glob("/".join(["*"] * level + [name])) if p.is_dir()]
    return sorted(set(found))


def _number(pattern, part: str) -> int | None:
    m = pattern.match(part)
    return int(m[1]) if m else None


def sensor_files(raw: Path, device: str) -> tuple[dict, set]:
    """({(subject, scene, session, action): csv}, {keys listed as invalid}) for one device."""
    roots = _find(raw, DEVICES[device])
    files, invalid = {}, set()
    for root in roots:
        for path in root.glob("*/*/*/*.csv"):
            subject, scene, session = (_number(p, part) for p, part in
                                       zip((_SUBJECT, _SCENE, _SESSION), path.parts[-4:-1]))
            if None not in (subject, scene, session):
                files[(subject, scene, session, path.stem.lower())] = path
        listing = root / "invalid_files.txt"
        if listing.is_file():
            for line in listing.read_text(errors="replace").splitlines():
                parts = line.strip().replace("\\", "/").split("/")
                if len(parts) >= 4:
                    key = (_number(_SUBJECT, parts[-4]), _number(_SCENE, parts[-3]),
                           _number(_SESSION, parts[-2]), Path(parts[-1]).stem.lower())
                    invalid.add(key)
    return files, invalid


def video_files(raw: Path, camera: int | None) -> dict:
    """{(subject, scene, session, action): video} for one camera (None: any camera)."""
    found = {}
    for path in sorted(Path(raw).rglob("*")):
        if path.suffix.lower() not in VIDEO_SUFFIXES or len(path.parts) < 5:
            continue
        subject, cam, scene, session = (_number(p, part) for p, part in
                                        zip((_SUBJECT, _CAM, _SCENE, _SESSION), path.parts[-5:-1]))
        if None in (subject, cam, scene, session) or (camera is not None and cam != camera):
            continue
        found[(subject, scene, session, path.stem.lower())] = path
    return found


def class_names(raw_dir: str | Path) -> list[str]:
    """Every action name in the raw folder (any camera, any device), alphabetically."""
    raw = Path(raw_dir)
    names = {key[3] for key in video_files(raw, None)}
    for device in DEVICES:
        names |= {key[3] for key in sensor_files(raw, device)[0]}
    if not names:
        raise LayoutError(f"{raw}: no MMAct videos or accelerometer files. Expected "
                          f"{ACC_EXPECTED}; and {VIDEO_EXPECTED}.")
    return sorted(names)


def scan(raw_dir: str | Path, block: dict) -> list[Sample]:
    """Every clip with a video from the chosen camera; ``sensor`` is the chosen device's CSV,
    or None when it is absent, empty or listed as invalid."""
    raw = Path(raw_dir)
    if not raw.is_dir():
        raise LayoutError(f"{raw}: not a folder. Run the download stage first.")
    camera, device = _video_cfg(block)["camera"], _sensor_cfg(block)["device"]
    videos = video_files(raw, camera)
    if not videos:
        cams = sorted({int(p.parts[-4][3:]) for p in video_files(raw, None).values()})
        raise LayoutError(f"{raw}: no videos subject{{X}}/cam{camera}/scene{{Y}}/session{{Z}}/"
                          f"{{action}}.mp4. " + (f"Cameras present: {cams}; choose one with "
                                                 "mmact.video.camera." if cams else
                                                 "Add the trimmed RGB videos to mmact.source."))
    sensors, invalid = sensor_files(raw, device)
    classes = {name: i for i, name in enumerate(class_names(raw))}
    samples = []
    for key, video in sorted(videos.items()):
        subject, scene, session, action = key
        sensor = sensors.get(key)
        if sensor is not None and (key in invalid or sensor.stat().st_size == 0):
            sensor = None
        samples.append(Sample(recording_id(*key), classes[action], subject, session, video, sensor))
    return samples


def census(raw_dir: str | Path, block: dict, samples: list[Sample]) -> dict:
    raw = Path(raw_dir)
    device = _sensor_cfg(block)["device"]
    sensors, _ = sensor_files(raw, device)
    found = {s.id for s in samples}
    no_video = sorted(recording_id(*k) for k in sensors if recording_id(*k) not in found)
    return {"device": device,
            "no_sensor": id_listing([s.id for s in samples if s.sensor is None]),
            "no_video": id_listing(no_video)}


# --- accelerometer CSV ----------------------------------------------------------------------
def read_csv(path: str | Path) -> tuple[list[str], np.ndarray]:
    """(timestamps as written, xyz (N, 3)) from one clip CSV; a header line is skipped."""
    path = Path(path)
    stamps, rows = [], []
    with open(path, encoding="utf-8-sig", errors="replace") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            fields = [field.strip() for field in line.split(",")]
            if len(fields) < 4:
                raise LayoutError(f"{path}:{lineno}: {len(fields)} column(s); expected "
                                  "'timestamp,x,y,z'")
            try:
                rows.append([float(v) for v in fields[1:4]])
            except ValueError:
                if not rows and not stamps and lineno == 1:
                    continue  # a header line
                raise LayoutError(f"{path}:{lineno}: x, y, z are not numbers: {line!r}") from None
            stamps.append(fields[0])
    if len(rows) < 2:
        raise LayoutError(f"{path}: {len(rows)} sample(s); a clip needs at least 2. Remove the "
                          "file or list it in invalid_files.txt.")
    xyz = np.asarray(rows, dtype=np.float64)
    if not np.isfinite(xyz).all():
        raise LayoutError(f"{path}: NaN or inf samples; repair or remove the file")
    return stamps, xyz


def parse_timestamps(stamps: list[str]) -> np.ndarray:
    """Seconds since the first sample, from numbers (epoch seconds, or milliseconds above
    1e11) or date-time strings ('2018-11-09 10:59:30.123'; '/' also accepted in the date).
    Relative times keep microsecond precision that epoch floats would lose."""
    try:
        values = np.array([float(s) for s in stamps])
        scale = 1000.0 if np.nanmax(np.abs(values)) > 1e11 else 1.0
        return (values - values[0]) / scale
    except ValueError:
        pass
    try:
        times = [datetime.fromisoformat(s.replace("/", "-")) for s in stamps]
    except ValueError as exc:
        raise ValueError(f"timestamps are neither numbers nor date-times ({exc})") from None
    return np.array([(t - times[0]).total_seconds() for t in times])


def read_accelerometer(path: str | Path, block: dict | None = None) -> np.ndarray:
    """The clip's accelerometer (N, 3): as recorded (``sensor.rate_hz: 0``) or interpolated
    onto a uniform grid from its timestamps."""
    stamps, xyz = read_csv(path)
    rate = float(_sensor_cfg(block or {})["rate_hz"])
    if rate <= 0:
        return xyz
    try:
        return resample_uniform(parse_timestamps(stamps), xyz, rate)[1]
    except ValueError as exc:
        raise LayoutError(f"{path}: cannot resample to {rate} Hz: {exc}") from None


def check_params(block: dict) -> list[tuple[str, str]]:
    problems = []
    video, sensor = block.get("video"), block.get("sensor")
    if not isinstance(video, dict) or not isinstance(sensor, dict):
        return [("video" if not isinstance(video, dict) else "sensor", "must be a mapping")]
    camera = video.get("camera")
    if not (isinstance(camera, int) and not isinstance(camera, bool) and 1 <= camera <= 4):
        problems.append(("video.camera", f"must be an integer in 1..4, got {camera!r}"))
    if sensor.get("device") not in DEVICES:
        problems.append(("sensor.device", f"must be 'phone' or 'watch', got {sensor.get('device')!r}"))
    rate = sensor.get("rate_hz", 0)
    if not (isinstance(rate, (int, float)) and not isinstance(rate, bool) and rate >= 0):
        problems.append(("sensor.rate_hz", f"must be a number >= 0 (0: as recorded), got {rate!r}"))
    if (block.get("split") or {}).get("name") not in SPLITS:
        problems.append(("split.name", f"must be one of {', '.join(SPLITS)} for MMAct, got "
                                       f"{(block.get('split') or {}).get('name')!r}"))
    if (block.get("download") or {}).get("urls"):
        problems.append(("download.urls", "must be empty: MMAct is licensed and cannot be "
                                          f"downloaded; set mmact.source to your copy ({PAGE})"))
    return problems
