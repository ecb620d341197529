"""UTD-MHAD's Kinect skeleton drawn as a video: a real-motion teacher input that runs on CPU.

``Skeleton/a{A}_s{S}_t{T}_skeleton.mat`` holds ``d_skel``, 20 joints x 3 (x, y, z in metres,
camera frame: x right, y up, z away from the camera) x T frames, about 19.5 frames per second
over the same span as the inertial trial. Each trial becomes
``SkeletonVideo/a{A}_s{S}_t{T}_skeleton.avi`` (lossless FFV1), decoded by the frames stage
like any video.

What a from-scratch CNN needs to read at 56-64 px, and why each choice is made:

* **The view is normalised per trial**: the figure is centred on the trial's median hip and
  scaled by its median body height (head to feet), so subjects of different height and
  distance from the camera look alike (the cross-subject problem is motion, not framing).
* **Limb colours**: right arm red, left arm blue, right leg yellow, left leg green, torso
  white. Many UTD-MHAD actions differ only in which side moves (swipe left/right is the
  same arm in mirrored directions; a right-hand wave vs a two-hand clap).
* **A depth cue**: a bone's brightness falls with its depth relative to the hip (nearer is
  brighter), because pushes, punches and throws move mostly along the camera axis, which a
  frontal projection flattens away.
* **Motion trails**: hands and feet leave a fading trace of their last ``trail_s`` seconds,
  so one frame shows where a limb came from (clockwise vs counter-clockwise circles draw the
  same figure; only the direction of travel tells them apart).
* **One view or several**: ``yaw_deg`` a list draws one panel per camera angle side by side
  (``[0, 90]``: front and right side, all three axes at once); measured in docs/real-motion.md.
"""

from __future__ import annotations

import functools
import re
from fractions import Fraction
from pathlib import Path

import numpy as np

from vskd.index import id_listing

NUM_JOINTS = 20
# Kinect v1 joint indices (0-based; Skeleton_joint_order.txt numbers them from 1).
HEAD, SHOULDER_C, SPINE, HIP_C = 0, 1, 2, 3
L_SHOULDER, L_ELBOW, L_WRIST, L_HAND = 4, 5, 6, 7
R_SHOULDER, R_ELBOW, R_WRIST, R_HAND = 8, 9, 10, 11
L_HIP, L_KNEE, L_ANKLE, L_FOOT = 12, 13, 14, 15
R_HIP, R_KNEE, R_ANKLE, R_FOOT = 16, 17, 18, 19

COLOURS = {"torso": (235, 235, 235), "right_arm": (255, 50, 50), "left_arm": (60, 120, 255),
           "right_leg": (255, 210, 0), "left_leg": (0, 220, 110)}
BONES = (
    ("torso", HEAD, SHOULDER_C), ("torso", SHOULDER_C, SPINE), ("torso", SPINE, HIP_C),
    ("torso", SHOULDER_C, L_SHOULDER), ("torso", SHOULDER_C, R_SHOULDER),
    ("torso", HIP_C, L_HIP), ("torso", HIP_C, R_HIP),
    ("left_arm", L_SHOULDER, L_ELBOW), ("left_arm", L_ELBOW, L_WRIST), ("left_arm", L_WRIST, L_HAND),
    ("right_arm", R_SHOULDER, R_ELBOW), ("right_arm", R_ELBOW, R_WRIST), ("right_arm", R_WRIST, R_HAND),
    ("left_leg", L_HIP, L_KNEE), ("left_leg", L_KNEE, L_ANKLE), ("left_leg", L_ANKLE, L_FOOT),
    ("right_leg", R_HIP, R_KNEE), ("right_leg", R_KNEE, R_ANKLE), ("right_leg", R_ANKLE, R_FOOT),
)
TRAILS = (("right_arm", R_HAND), ("left_arm", L_HAND), ("right_leg", R_FOOT), ("left_leg", L_FOOT))

DEFAULTS = {"size": 128, "trail_s": 3.0, "depth_cue": True, "body_fraction": 0.75,
            "yaw_deg": -45.0, "pitch_deg": 20.0, "trail_floor": 0.35, "hip_at": [0.5, 0.58], "lead_s": 0.0}
SKELETON_FILE = re.compile(r"^a(\d+)_s(\d+)_t(\d+)_skeleton\.mat$")
VIDEO_FOLDER = "SkeletonVideo"


class SkeletonError(ValueError):
    """A skeleton file that cannot be drawn; the message names the file and what to do."""


def read_skeleton(path: str | Path) -> np.ndarray:
    """``d_skel`` as a (T, 20, 3) float64 array (frames first); errors name the file."""
    from vskd.datasets.utd_mhad import load_mat_variable

    path = Path(path)
    d = load_mat_variable(path, "d_skel", "skeleton", SkeletonError, "Re-download Skeleton.zip.")
    if d.ndim != 3 or d.shape[:2] != (NUM_JOINTS, 3) or d.shape[2] < 2:
        raise SkeletonError(f"{path}: 'd_skel' has shape {d.shape}, expected (20, 3, T >= 2)")
    if not np.isfinite(d).all():
        raise SkeletonError(f"{path}: 'd_skel' has NaN or inf; repair or remove the recording")
    return d.transpose(2, 0, 1)


def camera_view(joints: np.ndarray, yaw_deg: float, pitch_deg: float) -> np.ndarray:
    """(T, 20, 3) joints seen by a camera turned ``yaw_deg`` about the vertical through the
    trial's median hip and raised ``pitch_deg`` to look down on it; the same camera frame
    (x right, y up, z away): x' = x cos(yaw) + z sin(yaw), then y'' = y cos(pitch) + z' sin(pitch).

    Why: Kinect films from the front, which flattens every motion along the camera axis
    (push, punch, catch, knock, arm curl) onto a nearly still point. Turned, that motion
    moves sideways in the picture; raised, it also moves up and down. A negative yaw moves
    what comes towards the camera to the image's right, the side UTD-MHAD's right arm is
    drawn on: the acting arm's reach then points away from the torso instead of across it."""
    if not yaw_deg and not pitch_deg:
        return joints
    centre = np.median(joints[:, HIP_C], axis=0)
    rel = joints - centre
    yaw, pitch = np.radians(yaw_deg), np.radians(pitch_deg)
    x = rel[..., 0] * np.cos(yaw) + rel[..., 2] * np.sin(yaw)
    z = -rel[..., 0] * np.sin(yaw) + rel[..., 2] * np.cos(yaw)
    y = rel[..., 1] * np.cos(pitch) + z * np.sin(pitch)      # far points rise when seen from above
    z = -rel[..., 1] * np.sin(pitch) + z * np.cos(pitch)
    return np.stack([x, y, z], axis=-1) + centre


def body_height(joints: np.ndarray) -> float:
    """The trial's median head-to-feet height (metres, the y axis): the drawing's scale."""
    feet = joints[:, [L_FOOT, R_FOOT], 1].mean(axis=1)
    height = float(np.median(joints[:, HEAD, 1] - feet))
    if height <= 1e-3:
        raise SkeletonError(f"body height {height:.3g} m: the skeleton is degenerate")
    return height


def image_coordinates(joints: np.ndarray, size: int, body_fraction: float,
                      hip_at=DEFAULTS["hip_at"]) -> np.ndarray:
    """(T, 20, 3) metres -> (T, 20, 2) pixel (column, row), the trial's view normalised.

    Scale: the median head-to-feet height fills ``body_fraction`` of the frame; the median hip
    centre is drawn at ``hip_at`` (column, row) as fractions of the frame. Kinect's hip centre
    sits high: in the default view of UTD-MHAD subjects 1/3/5/7 the joints span 0.67 body
    heights below it (feet, 0.5th percentile) to 0.44 above (raised hands, 99.5th), and 0.19
    to its left to 0.37 to its right, over every joint and frame (``python -m
    benchmarks.skeleton_framing``). The default, the hip at the centre column and 58 % of the
    height, gives the arms the upper frame and leaves the feet below it; [0.43, 0.42] centres
    the whole box in the teacher's crop, and measured no better (docs/real-motion.md).
    """
    height = body_height(joints)
    centre = np.median(joints[:, HIP_C, :2], axis=0)
    px_per_m = body_fraction * size / height
    col = hip_at[0] * size + (joints[..., 0] - centre[0]) * px_per_m
    row = hip_at[1] * size - (joints[..., 1] - centre[1]) * px_per_m  # image rows grow downwards
    return np.stack([col, row], axis=-1)


def depth_shade(joints: np.ndarray, depth_cue: bool) -> np.ndarray:
    """(T, 20) brightness factor in [0.35, 1]: 1 at 0.4 m in front of the hip, 0.35 at 0.4 m
    behind it (linear between); all ones without the cue."""
    if not depth_cue:
        return np.ones(joints.shape[:2])
    rel = joints[..., 2] - joints[:, HIP_C:HIP_C + 1, 2]  # + : further from the camera
    return np.clip(0.675 - 0.8125 * rel, 0.35, 1.0)


def _scaled(colour, factor: float) -> tuple[int, int, int]:
    return tuple(int(round(c * factor)) for c in colour)


def trail_brightness(age: float, floor: float) -> float:
    """A trail point's share of its limb's colour: 0.8 now (age 0), fading to 0.8 * floor."""
    return 0.8 * (floor + (1 - floor) * (1 - age))


def draw_frames(joints: np.ndarray, fps: float, *, size: int = DEFAULTS["size"],
                trail_s: float = DEFAULTS["trail_s"], depth_cue: bool = DEFAULTS["depth_cue"],
                body_fraction: float = DEFAULTS["body_fraction"], yaw_deg=DEFAULTS["yaw_deg"],
                pitch_deg: float = DEFAULTS["pitch_deg"], trail_floor: float = DEFAULTS["trail_floor"],
                hip_at=DEFAULTS["hip_at"], lead_s: float = DEFAULTS["lead_s"], only=None) -> np.ndarray:
    """(T, 20, 3) joints -> (T, size, size, 3) uint8 RGB frames, deterministic. Trails fade
    by :func:`trail_brightness`: with a floor the oldest part of the path stays visible, its
    direction still told by the fade. ``only``: draw just these frame indices (in that order).

    ``yaw_deg`` is one angle (one view fills the frame) or a list of angles: one panel per
    view, side by side, each ``size / len(yaw_deg)`` wide at the same scale (:func:`panel_views`);
    ``hip_at``: where the trial's median hip is drawn (:func:`image_coordinates`). ``lead_s``:
    the hands' and feet's path of the next seconds drawn too, at the brightness the trail fades
    to (under the trail, so the fade still tells the direction): every frame shows the path whole."""
    single = not isinstance(yaw_deg, (list, tuple))
    yaws = [float(yaw_deg)] if single else [float(y) for y in yaw_deg]
    width = max(1, round(size / 20))  # 6 px at 128: 3 px after the frames stage's 64-px resize
    trail, lead = (max(0, int(round(seconds * fps))) for seconds in (trail_s, lead_s))
    views = panel_views(joints, yaws, pitch_deg, size, body_fraction, depth_cue, single=single, hip_at=hip_at)
    panel_w = size // len(views)
    times = range(len(joints)) if only is None else [int(t) for t in only]
    frames = np.zeros((len(times), size, size, 3), np.uint8)
    for i, t in enumerate(times):
        for k, view in enumerate(views):
            frames[i, :, k * panel_w:(k + 1) * panel_w] = _draw_view(view, t, panel_w, size, width,
                                                                     (trail, lead), trail_floor)
    return frames


# A reach goes forward about twice as far as back: 99th percentiles 0.35 and 0.15 body heights
# from the median hip over every joint and frame of UTD-MHAD subjects 1/3/5/7. In a panel (half the frame's width or less) the hip
# therefore sits this many body heights behind the panel's centre, times the share of the
# forward axis the view shows (sin of minus its yaw: 1 for the side view, 0 for the front).
REACH_SHIFT = 0.1


def panel_views(joints: np.ndarray, yaws: list[float], pitch_deg: float, size: int,
                body_fraction: float, depth_cue: bool, single: bool, hip_at=DEFAULTS["hip_at"]) -> list[tuple]:
    """(joints, xy, shade) per view; ``xy`` in the view's own panel (0 .. size / n columns).

    One view (``single``) fills the frame with the hip at ``hip_at``; with a list each panel
    puts it at ``hip_at`` of its own width and the frame's height, less the shift
    :data:`REACH_SHIFT` explains (one panel is the single view)."""
    views = []
    for k, yaw in enumerate(yaws):
        seen = camera_view(joints, yaw, pitch_deg)
        xy = image_coordinates(seen, size, body_fraction, hip_at)
        if not single:
            panel_w = size / len(yaws)
            body_px = body_fraction * size
            centre = hip_at[0] * panel_w - REACH_SHIFT * np.sin(np.radians(-yaw)) * body_px
            xy[..., 0] += centre - hip_at[0] * size   # image_coordinates put the hip there
        views.append((seen, xy, depth_shade(seen, depth_cue)))
    return views


@functools.lru_cache(maxsize=64)
def _trail_colours(part: str, trail: int, trail_floor: float) -> tuple:
    """The trail's colour ``d`` frames into the past, for d = 0 .. trail."""
    return tuple(_scaled(COLOURS[part], trail_brightness(d / (trail + 1), trail_floor)) for d in range(trail + 1))


def _draw_view(view: tuple, t: int, panel_w: int, size: int, width: int, path: tuple[int, int],
               trail_floor: float) -> np.ndarray:
    """Frame ``t`` of one view as a (size, panel_w, 3) image: the path ahead, trails, bones far
    to near, head. ``path``: frames of trail behind and of lead ahead."""
    from PIL import Image, ImageDraw

    joints, xy, shade = view
    points = xy.tolist()  # plain floats: PIL takes them several times faster than numpy scalars
    img = Image.new("RGB", (panel_w, size))
    draw = ImageDraw.Draw(img)
    trail, lead = path
    for part, joint in TRAILS:  # the path ahead, under everything, at the trail's faded end
        ahead = _scaled(COLOURS[part], trail_brightness(1.0, trail_floor))
        for k in range(t, min(len(points) - 1, t + lead)):
            draw.line([tuple(points[k][joint]), tuple(points[k + 1][joint])], fill=ahead, width=max(1, width - 1))
    for part, joint in TRAILS:  # under the figure, fading into the past
        colours = _trail_colours(part, trail, trail_floor)
        for k in range(max(0, t - trail), t):
            draw.line([tuple(points[k][joint]), tuple(points[k + 1][joint])], fill=colours[t - k],
                      width=max(1, width - 1))
    # far bones first, so a nearer limb is drawn over what it hides
    for part, a, b in sorted(BONES, key=lambda bone: -(joints[t, bone[1], 2] + joints[t, bone[2], 2])):
        factor = 0.5 * (shade[t, a] + shade[t, b])
        draw.line([tuple(xy[t, a]), tuple(xy[t, b])], fill=_scaled(COLOURS[part], factor), width=width)
    r = 1.5 * width
    hx, hy = xy[t, HEAD]
    draw.ellipse([hx - r, hy - r, hx + r, hy + r], fill=_scaled(COLOURS["torso"], shade[t, HEAD]))
    return np.asarray(img)


def video_path(raw_dir: Path, skeleton_path: Path) -> Path:
    return raw_dir / VIDEO_FOLDER / skeleton_path.name.replace("_skeleton.mat", "_skeleton.avi")


def trial_fps(num_frames: int, inertial_path: Path | None, inertial_rate: float = 50.0) -> float:
    """The skeleton's frame rate: frames / (inertial samples / 50 Hz), since the skeleton spans
    the inertial recording start to end; Kinect's nominal 20 fps without the inertial file
    (the rate only labels the video and sets the trail's length in frames)."""
    from vskd.datasets.utd_mhad import read_inertial

    if inertial_path is None:
        return 20.0
    seconds = len(read_inertial(inertial_path)) / inertial_rate
    return float(Fraction(num_frames / seconds).limit_denominator(100))


def _draw_trial(job: tuple) -> None:
    """One trial drawn and written (a worker's job: joints, frame rate, settings, video path)."""
    from vskd.frames import write_video

    joints, fps, cfg, out = job
    write_video(out, draw_frames(joints, fps, **cfg), fps, lossless=True)


def _drawing_workers() -> int:
    """One drawing process per CPU this process may use (PIL draws in one thread)."""
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def render_videos(raw_dir: str | Path, inertial_rate: float = 50.0, progress=lambda it, **kw: it,
                  workers: int | None = None, **draw_kw) -> dict:
    """Draw every ``*_skeleton.mat`` under ``raw_dir`` into ``SkeletonVideo/``, and write
    ``SkeletonVideo/drawing.json`` (the drawing's settings, each trial's frame rate and
    skeleton file): what the frames stage needs to store the joints for a redraw from
    another camera (``teacher.view_jitter``). ``workers`` processes draw (default: one per
    usable CPU); each video is the same whatever their number."""
    from concurrent.futures import ProcessPoolExecutor

    raw_dir = Path(raw_dir)
    skeletons = sorted(p for p in raw_dir.rglob("*_skeleton.mat") if SKELETON_FILE.match(p.name))
    if not skeletons:
        return {"skeleton_videos": 0}
    inertial = {p.name.replace("_inertial.mat", ""): p for p in raw_dir.rglob("*_inertial.mat")}
    out_dir = raw_dir / VIDEO_FOLDER
    out_dir.mkdir(exist_ok=True)
    cfg = {**DEFAULTS, **draw_kw}
    trials, jobs = {}, []
    for path in skeletons:  # read here, so a bad file stops the stage before any drawing
        joints = read_skeleton(path)
        trial = path.name.replace("_skeleton.mat", "")
        fps = trial_fps(len(joints), inertial.get(trial), inertial_rate)
        jobs.append((joints, fps, cfg, video_path(raw_dir, path)))
        trials[trial] = {"fps": fps, "skeleton": path.relative_to(raw_dir).as_posix()}
    workers = min(workers or _drawing_workers(), len(jobs))
    drawn = progress(range(len(jobs)), desc="draw skeleton video", unit="trial")
    if workers <= 1:
        for job, _ in zip(jobs, drawn):
            _draw_trial(job)
    else:
        with ProcessPoolExecutor(workers) as pool:
            for _ in zip(pool.map(_draw_trial, jobs, chunksize=8), drawn):
                pass
    write_drawing(out_dir / DRAWING_FILE, cfg, trials)
    summary = {"skeleton_videos": len(skeletons)}
    no_inertial = sorted(t for t in trials if t not in inertial)
    if no_inertial:
        summary["skeleton_without_inertial"] = id_listing(no_inertial)
    return summary


DRAWING_FILE = "drawing.json"


def write_drawing(path: Path, cfg: dict, trials: dict) -> None:
    import json

    from vskd.h5store import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps({"drawing": cfg, "trials": trials}, indent=1, sort_keys=True))


def read_drawing(raw_dir: str | Path) -> dict | None:
    """``SkeletonVideo/drawing.json`` of a raw folder, or None where nothing was drawn."""
    import json

    path = Path(raw_dir) / VIDEO_FOLDER / DRAWING_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def redraw_clip(joints: np.ndarray, fps: float, drawing: dict, times, yaw_offset: float,
                pitch_offset: float, out_hw: tuple[int, int]) -> np.ndarray:
    """Frames ``times`` of a trial drawn as the download stage drew them, from a camera turned a
    further ``yaw_offset`` and raised ``pitch_offset`` degrees, resized to ``out_hw`` as the
    frames stage resizes a decoded video (libswscale, area): at offsets 0 the stored frames.

    Why: a subject stands a little turned to the Kinect and another distance below it; a real
    camera elsewhere sees another projection (foreshortened reaches, another depth order and
    shading), which no 2-D warp of the drawn picture can make."""
    import av
    from av.video.reformatter import VideoReformatter

    cfg = dict(drawing)
    yaw = cfg["yaw_deg"]
    cfg["yaw_deg"] = [y + yaw_offset for y in yaw] if isinstance(yaw, list) else yaw + yaw_offset
    cfg["pitch_deg"] = cfg["pitch_deg"] + pitch_offset
    drawn = draw_frames(joints, fps, only=times, **cfg)
    reformatter = VideoReformatter()
    return np.stack([reformatter.reformat(av.VideoFrame.from_ndarray(img, format="rgb24"), width=out_hw[1],
                                          height=out_hw[0], format="rgb24", interpolation="AREA").to_ndarray()
                     for img in drawn])
