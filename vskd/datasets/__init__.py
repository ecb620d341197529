"""Dataset adapters. Each turns a dataset's native files into the common sample index.

An adapter knows how to put the raw recordings on disk (``prepare_raw``, the download
stage), how to list them (``scan``), the class names, how to read one accelerometer
recording and one video (a video file, or a folder of frame images), what to count about
gaps in the data (``census``, printed by the stages) and which dataset-specific params are
valid. Everything downstream is dataset-agnostic.

Each dataset's block in params.yaml has ``video`` (what the frames stage reads: camera...)
and ``sensor`` (what the GAF stage reads: which accelerometer, resampling); dvc.yaml lists
them as those stages' params, so choosing another sensor reruns the GAF stage and what
follows it, never the frame decoding or the teacher.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vskd import download
from vskd.datasets import berkeley_mhad, mmact, utd_mhad
from vskd.index import Sample


def _decode_video(path: Path, short_side: int, block: dict) -> np.ndarray:
    from vskd.frames import decode_video

    return decode_video(path, short_side)


def _no_census(raw_dir: Path, block: dict, samples: list[Sample]) -> dict:
    return {}


def _no_checks(block: dict) -> list[tuple[str, str]]:
    return []


def _no_skeletons(raw_dir: Path, block: dict):
    return None


@dataclass(frozen=True)
class Adapter:
    name: str
    prepare_raw: Callable[[dict, Path], dict]
    scan: Callable[[Path, dict], list[Sample]]
    class_names: Callable[[Path, dict], list[str]]
    read_accelerometer: Callable[..., np.ndarray]  # (path, block=None): block None = defaults
    read_video: Callable[[Path, int, dict], np.ndarray] = _decode_video
    census: Callable[[Path, dict, list[Sample]], dict] = _no_census
    check_params: Callable[[dict], list[tuple[str, str]]] = _no_checks
    skeletons: Callable[[Path, dict], object] = _no_skeletons  # a drawn video's joints (frames.SkeletonSource)


def _copy_local_source(source: str, out_dir: Path) -> dict:
    src = Path(source).expanduser()
    if not src.is_dir():
        raise FileNotFoundError(f"source {src}: not a folder. Set '<dataset>.source' to a local copy.")
    shutil.copytree(src, out_dir)
    return {"source": str(src)}


def _synthetic_prepare(block: dict, out_dir: Path) -> dict:
    from vskd.datasets import synthetic

    if block.get("source"):
        return _copy_local_source(block["source"], out_dir)
    return synthetic.generate(out_dir, **block["download"])


def _synthetic_classes(raw_dir: Path, block: dict) -> list[str]:
    from vskd.datasets import synthetic

    return list(synthetic.ACTIONS[: block["download"]["actions"]])


def _empty_mapping(key: str):
    def check(block: dict) -> list[tuple[str, str]]:
        value = block.get(key)
        return [] if value in ({}, None) else [(key, f"must be {{}}: nothing to choose here, got {value!r}")]
    return check


def _utd_video(block: dict) -> str:
    """The file suffix ``utd_mhad.video.source`` names (rgb: _color.avi, skeleton: _skeleton.avi)."""
    return utd_mhad.VIDEO_SOURCES[(block.get("video") or {}).get("source", "rgb")]


def _utd_prepare(block: dict, out_dir: Path) -> dict:
    """Stage Inertial/ and RGB/ or Skeleton/; draw every skeleton present into SkeletonVideo/."""
    from vskd.datasets import skeleton_video
    from vskd.progress import progress

    summary = download.prepare_raw(block, out_dir, utd_mhad.SPEC)
    drawing = (block.get("download") or {}).get("skeleton_video") or {}
    return {**summary, **skeleton_video.render_videos(out_dir, progress=progress, **drawing)}


def _utd_skeletons(raw_dir: Path, block: dict):
    """The joints behind ``SkeletonVideo/`` (``video.source: skeleton``), or None: RGB video, or
    a raw folder drawn before ``drawing.json`` was written (``teacher.view_jitter`` says so)."""
    from vskd.datasets import skeleton_video
    from vskd.frames import SkeletonSource

    if _utd_video(block) != utd_mhad.VIDEO_SOURCES["skeleton"]:
        return None
    found = skeleton_video.read_drawing(raw_dir)
    if found is None:
        return None
    trials = found["trials"]

    def read(sample):
        trial = trials[sample.id]
        return skeleton_video.read_skeleton(Path(raw_dir) / trial["skeleton"]), trial["fps"]

    return SkeletonSource(read, found["drawing"])


def _view_checks(drawing: dict) -> list[tuple[str, str]]:
    """``yaw_deg``: one angle, or a list of 1-3 (one panel each, side by side, ``size`` split evenly)."""
    yaw = drawing.get("yaw_deg", 0.0)
    angles = yaw if isinstance(yaw, list) else [yaw]
    if not 1 <= len(angles) <= 3 or not all(isinstance(a, (int, float)) and not isinstance(a, bool) for a in angles):
        return [("download.skeleton_video.yaw_deg", f"must be a number or a list of 1-3 numbers (one panel "
                                                    f"per view), got {yaw!r}")]
    size = drawing.get("size", 128)
    if isinstance(yaw, list) and (not isinstance(size, int) or size % len(angles)):
        return [("download.skeleton_video.size", f"must split into {len(angles)} equal panels (one per "
                                                 f"yaw_deg angle), got {size!r}")]
    return []


def _utd_checks(block: dict) -> list[tuple[str, str]]:
    problems = _empty_mapping("sensor")(block)
    video = block.get("video") or {}
    if set(video) - {"source"} or video.get("source", "rgb") not in utd_mhad.VIDEO_SOURCES:
        problems.append(("video", "must be {source: rgb} (the RGB camera) or {source: skeleton} "
                                  f"(the Kinect skeleton drawn as video), got {video!r}"))
    drawing = (block.get("download") or {}).get("skeleton_video") or {}
    from vskd.datasets.skeleton_video import DEFAULTS

    unknown = sorted(set(drawing) - set(DEFAULTS))
    if unknown:
        problems.append(("download.skeleton_video", f"unknown key(s) {unknown}; known: {sorted(DEFAULTS)}"))
    problems += _view_checks(drawing)
    floor = drawing.get("trail_floor", 0.0)
    if not isinstance(floor, (int, float)) or not 0 <= floor <= 1:
        problems.append(("download.skeleton_video.trail_floor", f"must be a number in [0, 1], got {floor!r}"))
    lead = drawing.get("lead_s", 0.0)
    if not isinstance(lead, (int, float)) or isinstance(lead, bool) or lead < 0:
        problems.append(("download.skeleton_video.lead_s", f"must be seconds >= 0 (0: no path ahead), got {lead!r}"))
    hip = drawing.get("hip_at", DEFAULTS["hip_at"])
    if not (isinstance(hip, list) and len(hip) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in hip)):
        problems.append(("download.skeleton_video.hip_at", "must be [column, row], two fractions of the "
                                                           f"frame in [0, 1], got {hip!r}"))
    name = (block.get("split") or {}).get("name")
    if name not in ("cross_subject", "subject_specific"):
        problems.append(("split.name", "must be 'subject_specific' (the authors' trials 1-2 / 3-4) "
                                       f"or 'cross_subject' for UTD-MHAD, got {name!r}"))
    return problems


ADAPTERS: dict[str, Adapter] = {
    "synthetic": Adapter(
        name="synthetic",
        prepare_raw=_synthetic_prepare,
        scan=lambda raw, block: utd_mhad.scan(raw, num_actions=block["download"]["actions"]),
        class_names=_synthetic_classes,
        read_accelerometer=lambda path, block=None: utd_mhad.read_accelerometer(path),
    ),
    "utd_mhad": Adapter(
        name="utd_mhad",
        prepare_raw=_utd_prepare,
        scan=lambda raw, block: utd_mhad.scan(raw, num_actions=len(utd_mhad.ACTIONS),
                                              known_missing=utd_mhad.KNOWN_MISSING,
                                              video=_utd_video(block)),
        class_names=lambda raw, block: list(utd_mhad.ACTIONS),
        read_accelerometer=lambda path, block=None: utd_mhad.read_accelerometer(path),
        census=lambda raw, block, samples: utd_mhad.census(samples),
        check_params=_utd_checks,
        skeletons=_utd_skeletons,
    ),
    "berkeley_mhad": Adapter(
        name="berkeley_mhad",
        prepare_raw=lambda block, out_dir: download.prepare_raw(block, out_dir, berkeley_mhad.SPEC),
        scan=berkeley_mhad.scan,
        class_names=lambda raw, block: list(berkeley_mhad.ACTIONS),
        read_accelerometer=berkeley_mhad.read_accelerometer,
        read_video=berkeley_mhad.read_video,
        census=berkeley_mhad.census,
        check_params=berkeley_mhad.check_params,
    ),
    "mmact": Adapter(
        name="mmact",
        prepare_raw=lambda block, out_dir: download.prepare_raw(block, out_dir, mmact.SPEC),
        scan=mmact.scan,
        class_names=lambda raw, block: mmact.class_names(raw),
        read_accelerometer=mmact.read_accelerometer,
        census=mmact.census,
        check_params=mmact.check_params,
    ),
}


def get_adapter(name: str) -> Adapter:
    if name not in ADAPTERS:
        raise ValueError(f"unknown dataset '{name}'. Known datasets: {', '.join(sorted(ADAPTERS))}.")
    return ADAPTERS[name]
