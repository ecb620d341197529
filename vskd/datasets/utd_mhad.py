"""Reader for the UTD-MHAD file layout (Chen, Jafari & Kehtarnavaz, ICIP 2015).

Per recording: ``a{A}_s{S}_t{T}_inertial.mat`` (variable ``d_iner``, N x 6 float64:
accelerometer x, y, z in g, then gyroscope x, y, z in deg/s, 50 Hz) and
``a{A}_s{S}_t{T}_color.avi`` (640 x 480 RGB). The official archives unpack into
``Inertial/`` and ``RGB/``; the reader searches the whole tree, so either layout works.
The synthetic dataset is written in this same layout and read by this same code.

27 actions x 8 subjects x 4 trials, less three recordings the dataset never had
(``KNOWN_MISSING``): 861. The download stage counts them, never substitutes another.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import scipy.io

from vskd.download import RawSpec
from vskd.index import Sample, id_listing

FILE_PATTERN = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_(inertial\.mat|color\.avi|skeleton\.avi)$")
# utd_mhad.video.source -> the video file the frames stage decodes: the RGB camera, or the
# Kinect skeleton drawn by the download stage (vskd/datasets/skeleton_video.py).
VIDEO_SOURCES = {"rgb": "color.avi", "skeleton": "skeleton.avi"}

# UTD-MHAD's 27 actions in file order (a1 .. a27). Labels are a{A} - 1: the numeric order,
# never the alphabetical order ImageFolder would give (a1, a10, a11, ...).
ACTIONS = (
    "right arm swipe to the left", "right arm swipe to the right", "right hand wave",
    "two hand front clap", "right arm throw", "cross arms in the chest",
    "basketball shoot", "right hand draw x", "right hand draw circle (clockwise)",
    "right hand draw circle (counter clockwise)", "draw triangle", "bowling (right hand)",
    "front boxing", "baseball swing from right", "tennis right hand forehand swing",
    "arm curl (two arms)", "tennis serve", "two hand push", "right hand knock on door",
    "right hand catch an object", "right hand pick up and throw", "jogging in place",
    "walking in place", "sit to stand", "stand to sit", "forward lunge (left foot forward)",
    "squat (two arms stretch out)",
)
# The inertial sensor is on the right wrist for actions 1-21 and on the right thigh for 22-27.
THIGH_ACTIONS = frozenset(range(22, 28))
SUBJECTS = range(1, 9)
TRIALS = range(1, 5)
# (action, subject, trial) absent from the official release (864 - 3 = 861 sequences).
KNOWN_MISSING = frozenset({(8, 1, 4), (23, 6, 4), (27, 8, 4)})

PAGE = "https://personal.utdallas.edu/~kehtar/UTD-MHAD.html"
# The host spells the folder UTD-MAD. RGB.zip is 1,106,885,499 bytes and has been reported to
# arrive truncated without an error: the size and zip checks catch that.
URLS = ("https://www.utdallas.edu/~kehtar/UTD-MAD/Inertial.zip",
        "https://www.utdallas.edu/~kehtar/UTD-MAD/RGB.zip",
        "https://www.utdallas.edu/~kehtar/UTD-MAD/Skeleton.zip")
SPEC = RawSpec(
    dataset="utd_mhad",
    page=PAGE,
    instructions=(f"UTD-MHAD is public: list {URLS[0]} and {URLS[1]} (video.source: rgb) or "
                  f"{URLS[2]} (video.source: skeleton) under 'utd_mhad.download.urls', or download "
                  f"them from {PAGE} and set 'utd_mhad.source' to the folder holding Inertial.zip "
                  "and RGB.zip or Skeleton.zip (or their extracted Inertial/, RGB/, Skeleton/ folders)."),
)


def recording_id(action: int, subject: int, trial: int) -> str:
    return f"a{action}_s{subject}_t{trial}"


def sensor_location(action: int) -> str:
    """Where the single inertial unit was worn for this action."""
    return "right thigh" if action in THIGH_ACTIONS else "right wrist"


class LayoutError(ValueError):
    """The raw folder does not hold a usable UTD-MHAD layout."""


def scan(raw_dir: str | Path, num_actions: int | None = None,
         known_missing: frozenset = frozenset(), video: str = "color.avi") -> list[Sample]:
    """Pair every ``_inertial.mat`` with its video (``_color.avi``, or ``_skeleton.avi``: one of
    ``VIDEO_SOURCES``); sorted by (action, subject, trial).

    A recording that has only one of its two files is an error listing them all, never a
    silent drop: the user must know their copy is incomplete. The exception is a recording
    in ``known_missing`` (the dataset's documented gaps): it is left out, and ``census``
    counts it.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise LayoutError(f"{raw_dir}: not a folder. Run the download stage first.")
    found: dict[tuple[int, int, int], dict[str, Path]] = {}
    for path in sorted(raw_dir.rglob("a*_s*_t*_*")):
        m = FILE_PATTERN.match(path.name)
        if not m or not path.is_file():
            continue
        if m[4] not in ("inertial.mat", video):
            continue
        key = (int(m[1]), int(m[2]), int(m[3]))
        kind = "sensor" if m[4] == "inertial.mat" else "video"
        found.setdefault(key, {})[kind] = path
    if not found:
        raise LayoutError(
            f"{raw_dir}: no a{{A}}_s{{S}}_t{{T}}_inertial.mat / _{video} files found. "
            "Expected UTD-MHAD's layout (Inertial/ and RGB/ folders, or Skeleton/ drawn into "
            "SkeletonVideo/ by the download stage)."
        )
    found = {key: v for key, v in found.items() if len(v) == 2 or key not in known_missing}
    orphans = [
        f"a{a}_s{s}_t{t} has no {f'video (_{video})' if 'video' not in v else 'sensor (_inertial.mat)'}"
        for (a, s, t), v in sorted(found.items())
        if len(v) != 2
    ]
    if orphans:
        raise LayoutError(
            f"{raw_dir}: {len(orphans)} recording(s) are missing one modality: "
            + "; ".join(orphans[:10])
            + (" ..." if len(orphans) > 10 else "")
            + ". Restore the missing files or remove the incomplete recordings."
        )
    samples = []
    for (a, s, t), v in sorted(found.items()):
        if num_actions is not None and not 1 <= a <= num_actions:
            raise LayoutError(f"{v['sensor']}: action a{a} outside 1..{num_actions}")
        samples.append(Sample(f"a{a}_s{s}_t{t}", a - 1, s, t, v["video"], v["sensor"]))
    return samples


def load_mat_variable(path: str | Path, name: str, kind: str, error=None, hint: str = "Re-download it.") -> np.ndarray:
    """Variable ``name`` of a MATLAB file as float64; ``kind`` names the file type in the
    error (``error``, default :class:`LayoutError`) when it is unreadable or lacks ``name``."""
    error = error or LayoutError
    path = Path(path)
    try:
        mat = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises several types for corrupt files
        raise error(f"{path}: not a readable MATLAB file ({exc}). {hint}") from exc
    if name not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise error(f"{path}: no variable '{name}' (found: {keys}); not a UTD-MHAD {kind} file")
    return np.asarray(mat[name], dtype=np.float64)


def read_inertial(path: str | Path) -> np.ndarray:
    """``d_iner`` as an (N, 6) float64 array; errors name the file and what is wrong."""
    path = Path(path)
    data = load_mat_variable(path, "d_iner", "inertial")
    if data.ndim != 2 or data.shape[1] != 6 or data.shape[0] < 2:
        raise LayoutError(f"{path}: 'd_iner' has shape {data.shape}, expected (N >= 2, 6)")
    if not np.isfinite(data).all():
        bad = int((~np.isfinite(data)).any(axis=1).sum())
        raise LayoutError(f"{path}: 'd_iner' has {bad} row(s) with NaN or inf; repair or remove the recording")
    return data


def read_accelerometer(path: str | Path) -> np.ndarray:
    """The tri-axial accelerometer, (N, 3) in g: the student's only input."""
    return read_inertial(path)[:, :3]


def census(samples: list[Sample]) -> dict:
    """What the stage summaries print: the documented gaps, what else this copy lacks, and
    how many trials come from each sensor placement."""
    found = {(s.label + 1, s.subject, s.trial) for s in samples}
    grid = {(a, s, t) for a in range(1, len(ACTIONS) + 1) for s in SUBJECTS for t in TRIALS}
    known = sorted(KNOWN_MISSING - found)
    absent = sorted(grid - found - KNOWN_MISSING)
    thigh = sum(1 for s in samples if s.label + 1 in THIGH_ACTIONS)
    return {"known_missing": id_listing([recording_id(*k) for k in known]),
            "absent": id_listing([recording_id(*k) for k in absent]),
            "wrist": len(samples) - thigh, "thigh": thigh}
