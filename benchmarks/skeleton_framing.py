"""Where the drawn skeleton lies in the frame: the box the joints span, and the framing that fits it.

    python -m benchmarks.skeleton_framing --source ../shared/data/utd_mhad_odd_subjects

For the drawing's view (``yaw_deg``, ``pitch_deg``), every joint of every frame of every trial,
in body heights from the trial's median hip (x right, y up; the drawing's own normalisation),
the low and high percentiles of x and y: the box the figure fills. It prints the ``hip_at``
that centres that box in the frame, where a ``body_fraction`` puts the box's edges (they
should lie inside the teacher's centre crop, 56 of 64 px), and the largest ``body_fraction``
whose box fits in that crop with a margin for the lines. Only the joints are read, no label.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from vskd.datasets.skeleton_video import DEFAULTS, HIP_C, body_height, camera_view, read_skeleton

CROP = 56 / 64      # the teacher's centre crop (teacher.input_size of frames.short_side)
MARGIN = 2 / 64     # half a drawn line (3 px at 64) and the head's disc, either side


def body_box(trials: list[np.ndarray], yaw_deg: float, pitch_deg: float, low: float = 0.5,
             high: float = 99.5) -> dict:
    """The ``low``-``high`` percentile box of every joint of every frame, in body heights from
    each trial's median hip, as the drawing's camera sees it: {x: (lo, hi), y: (lo, hi)}."""
    xs, ys = [], []
    for joints in trials:
        seen = camera_view(joints, yaw_deg, pitch_deg)
        hip = np.median(seen[:, HIP_C, :2], axis=0)
        rel = (seen[..., :2] - hip) / body_height(seen)
        xs.append(rel[..., 0].ravel())
        ys.append(rel[..., 1].ravel())
    x, y = np.concatenate(xs), np.concatenate(ys)
    return {"x": tuple(np.percentile(x, [low, high])), "y": tuple(np.percentile(y, [low, high]))}


def framing(box: dict, body_fraction: float) -> dict:
    """The hip position that centres ``box`` in the frame, the box's edges there (fractions of
    the frame: columns left/right, rows top/bottom) and the largest body fraction that keeps the
    box inside the centre crop with :data:`MARGIN`."""
    (x0, x1), (y0, y1) = box["x"], box["y"]
    hip_col = 0.5 - body_fraction * (x0 + x1) / 2
    hip_row = 0.5 + body_fraction * (y0 + y1) / 2       # y up, rows down
    edges = {"left": hip_col + body_fraction * x0, "right": hip_col + body_fraction * x1,
             "top": hip_row - body_fraction * y1, "bottom": hip_row - body_fraction * y0}
    largest = (CROP - 2 * MARGIN) / max(x1 - x0, y1 - y0)
    return {"hip_at": [round(float(hip_col), 3), round(float(hip_row), 3)], "edges": edges,
            "largest_body_fraction": largest}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, required=True, help="folder holding Skeleton/*_skeleton.mat")
    ap.add_argument("--yaw", type=float, default=DEFAULTS["yaw_deg"])
    ap.add_argument("--pitch", type=float, default=DEFAULTS["pitch_deg"])
    ap.add_argument("--body-fraction", type=float, default=DEFAULTS["body_fraction"])
    args = ap.parse_args(argv)
    paths = sorted((args.source / "Skeleton").glob("*_skeleton.mat"))
    if not paths:
        raise SystemExit(f"{args.source / 'Skeleton'}: no *_skeleton.mat files; point --source at a "
                         "folder holding UTD-MHAD's Skeleton/")
    box = body_box([read_skeleton(p) for p in paths], args.yaw, args.pitch)
    fit = framing(box, args.body_fraction)
    print(f"{len(paths)} trials, yaw {args.yaw} deg, pitch {args.pitch} deg; body heights from the hip "
          f"(0.5-99.5th percentiles): x {box['x'][0]:+.3f} .. {box['x'][1]:+.3f}, "
          f"y {box['y'][0]:+.3f} .. {box['y'][1]:+.3f}")
    edges = ", ".join(f"{k} {v:.3f}" for k, v in fit["edges"].items())
    print(f"hip_at {fit['hip_at']} centres it; at body_fraction {args.body_fraction}: {edges} of the frame "
          f"(centre crop {(1 - CROP) / 2:.4f} .. {(1 + CROP) / 2:.4f}); largest body_fraction inside the "
          f"crop: {fit['largest_body_fraction']:.3f}")


if __name__ == "__main__":
    main()
