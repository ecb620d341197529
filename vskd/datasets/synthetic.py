"""Deterministic synthetic multimodal HAR dataset in UTD-MHAD's native file layout.

Why this exists
---------------
The VSKD pipeline (a video teacher distilling into a wrist-accelerometer student)
needs paired video + inertial recordings.  This module fabricates such a data set
from scratch, so that the pipeline and its tests run without the real UTD-MHAD
archives, and writes it in exactly the layout the real archives unpack into::

    out_dir/RGB/a{A}_s{S}_t{T}_color.avi         RGB video (mpeg4 in AVI, yuv420p)
    out_dir/Inertial/a{A}_s{S}_t{T}_inertial.mat  MATLAB 5 file, variable ``d_iner``

``A``, ``S``, ``T`` are 1-based action, subject and trial numbers.  ``d_iner`` is a
float64 ``N x 6`` array ``[acc x, y, z in g | gyro x, y, z in deg/s]`` sampled at
``sensor_rate`` (50 Hz by default), like the real files.

One body motion drives both modalities
--------------------------------------
Every recording is a 2-D (frontal-plane) articulated stick figure -- pelvis root,
torso, head, upper arms, forearms, thighs, shins -- whose joint angles (and root
translation) are smooth, closed-form functions of time.  Limbs may also pitch out of
the image plane (towards the camera: arms held forward, knee raises), so each limb
segment has a full 3-D orientation.  From that *single* trajectory we

* render the video at ``fps`` (anti-aliased capsules drawn with a numpy distance
  field, depth-sorted, on a gently textured background with a floor), and
* compute the inertial signal at ``sensor_rate``: the sensor point (right wrist, or
  the middle of the right thigh for :data:`THIGH_ACTIONS`, as in UTD-MHAD actions
  22-27) is differentiated twice on a 4x finer time grid; the accelerometer reads
  specific force ``a - g`` (so +1 g *upwards* at rest) rotated into the frame of the
  limb segment the sensor is strapped to, then through a small per-subject mounting
  tilt, plus white noise.  The gyroscope reads the segment's body-frame angular
  velocity (``R^T dR/dt``), which for in-plane motion lives on the out-of-plane
  axis.

Why the figure looks the way it does: the teacher learns from scratch, on CPU, from
140 clips shrunk to 64 px, and must generalise to unseen subjects, so limbs are drawn
2.2x life-size, with long dark sleeves and bare hands, in dark clothes on a light
backdrop, and the march lifts the knees high enough to show in a frontal view
(docs/design.md gives the measured effect of each choice).

Sensor frame convention: x points *distally along the segment* (towards the hand
for the forearm, towards the knee for the thigh), y is the in-plane perpendicular
and z points out of the image plane (towards the camera when the limb hangs down).
With the arm hanging, gravity's reaction (+9.81 m/s^2 upwards) projects onto x as
-1 g, which matches the real UTD-MHAD wrist files (x ~ -1 g at rest).

Actions (label index i <-> file action number i+1)
--------------------------------------------------
 1 wave                     right hand waves, forearm oscillating above the elbow
 2 wave_kick_left           same wave, while the LEFT leg kicks out sideways
 3 raise_right_arm          right arm raised sideways overhead, held, lowered
 4 raise_both_arms          both arms raised overhead together
 5 draw_circle              right hand draws circles in the frontal plane
 6 draw_circle_marching     same circles, while marching on the spot
 7 clap                     both hands clap repeatedly in front of the chest
 8 squat                    deep squat with both arms stretched forward
 9 knee_raise_right         right knee raised forward twice     (thigh sensor)
10 side_step                step to the right and back          (thigh sensor)
11 jumping_jacks            arms and legs spread while hopping
12 punch                    boxing: alternating forward punches from a guard

Wrist-confusable pairs (the reason the video teacher has something to teach):
(1, 2), (3, 4) and (5, 6).  Within a pair the right arm performs the *same*
movement (same amplitude/speed distribution); the difference is elsewhere (left
leg, left arm, both legs) and is obvious in the video.  It reaches the wrist the way
whole-body motion reaches a real wrist, with magnitudes of real bodies:

* wave_kick_left: standing on one leg, the pelvis shifts ~5 cm onto the stance leg and
  the torso leans ~8 deg away from the kick, in time with each kick;
* raise_right_arm vs raise_both_arms: one raised arm makes the torso lean ~3 deg to
  the opposite side for balance, while two raised arms keep it upright but lift the
  body ~2 cm onto the toes;
* draw_circle_marching: the pelvis rises and falls ~3.5 cm with every step and the
  torso sways ~2 deg over the stance leg, so the wrist bounces with the march.

The wrist sees these as a change of the signal's low-frequency content and a step-rate
bounce (~0.2 g), against between-subject variation (body size +-15 %, speed +-25 %,
amplitude +-20 %, mounting tilt, noise 0.01-0.05 g).  No pair differs only by a
left/right mirror image.

Determinism: everything is drawn from ``numpy.random.default_rng`` seeded with
``[seed, 0, subject]`` (subject traits) and ``[seed, action, subject, trial]``
(trial traits and noise), so the same arguments give byte-identical ``.mat`` files
(the MAT header's timestamp is replaced by a fixed text) and identical decoded video
frames, and changing ``actions``/``subjects``/``trials`` never changes the other
recordings.
"""

from __future__ import annotations

import io
import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "ACTIONS",
    "THIGH_ACTIONS",
    "CONFUSABLE_PAIRS",
    "GRAVITY",
    "generate",
    "recording_name",
    "simulate_recording",
    "second_derivative",
    "body_angular_velocity",
    "segment_rotation",
]

ACTIONS: tuple[str, ...] = (
    "wave",
    "wave_kick_left",
    "raise_right_arm",
    "raise_both_arms",
    "draw_circle",
    "draw_circle_marching",
    "clap",
    "squat",
    "knee_raise_right",
    "side_step",
    "jumping_jacks",
    "punch",
)

#: 1-based action numbers whose sensor is strapped to the right thigh (mid-point).
THIGH_ACTIONS: frozenset[int] = frozenset({9, 10})
LIMB_WIDTH = 2.2

#: 1-based action pairs that are nearly identical for the wrist sensor but obvious
#: in the video (see module docstring).
CONFUSABLE_PAIRS: tuple[tuple[int, int], ...] = ((1, 2), (3, 4), (5, 6))

GRAVITY = 9.81  # m/s^2; also the g used to convert the accelerometer to g units

_ACC_RANGE = 8.0  # g
_GYRO_RANGE = 1000.0  # deg/s
_FINE = 4  # the sensor point is differentiated on a grid 4x finer than sensor_rate
_DEG = math.pi / 180.0


def recording_name(action: int, subject: int, trial: int) -> str:
    """UTD-MHAD stem for a recording, e.g. ``a1_s2_t3`` (all numbers 1-based)."""
    return f"a{action}_s{subject}_t{trial}"


# ---------------------------------------------------------------------------
# Small maths helpers (public ones are tested directly)
# ---------------------------------------------------------------------------
def second_derivative(x: np.ndarray, h: float) -> np.ndarray:
    """Central second difference along axis 0: ``(x[i+1] - 2 x[i] + x[i-1]) / h^2``.

    Returns ``len(x) - 2`` rows, the i-th belonging to ``x[i+1]``.  Exact for
    quadratics, O(h^2) otherwise; with h = 1/(4*50 Hz) the error on the body
    motions here is far below the sensor noise.
    """
    x = np.asarray(x, dtype=np.float64)
    return (x[2:] - 2.0 * x[1:-1] + x[:-2]) / (h * h)


def segment_rotation(psi: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Orientation of a limb segment, shape ``(..., 3, 3)``; columns = sensor axes.

    World frame: X to the image right, Y up, Z towards the camera.  ``psi`` is the
    in-plane angle of the segment measured counter-clockwise from "hanging straight
    down"; ``beta`` tilts the segment out of the plane towards the camera.  Column 0
    (sensor x) is the distal direction ``(sin psi cos beta, -cos psi cos beta,
    sin beta)``; column 1 is the in-plane perpendicular ``(cos psi, sin psi, 0)``;
    column 2 = x cross y (out of plane).  A hanging segment therefore has x = -Y,
    which makes the resting accelerometer read x = -1 g.
    """
    psi = np.asarray(psi, dtype=np.float64)
    beta = np.asarray(beta, dtype=np.float64)
    sp, cp, sb, cb = np.sin(psi), np.cos(psi), np.sin(beta), np.cos(beta)
    ex = np.stack([sp * cb, -cp * cb, sb], axis=-1)
    ey = np.stack([cp, sp, np.zeros_like(sp)], axis=-1)
    ez = np.cross(ex, ey)
    return np.stack([ex, ey, ez], axis=-1)


def body_angular_velocity(r_prev: np.ndarray, r_mid: np.ndarray, r_next: np.ndarray, h: float) -> np.ndarray:
    """Body-frame angular velocity (rad/s) from rotations at t-h, t, t+h.

    A gyroscope measures omega in its own frame: ``[omega]_x = R^T dR/dt``.  The
    derivative is a central difference; the skew part is taken so numerical noise
    in the symmetric part is discarded.
    """
    rdot = (r_next - r_prev) / (2.0 * h)
    w = np.swapaxes(r_mid, -1, -2) @ rdot
    return 0.5 * np.stack(
        [w[..., 2, 1] - w[..., 1, 2], w[..., 0, 2] - w[..., 2, 0], w[..., 1, 0] - w[..., 0, 1]], axis=-1
    )


def _rotvec_matrix(v: np.ndarray) -> np.ndarray:
    """Rodrigues: rotation matrix for rotation vector ``v`` (rad)."""
    th = float(np.linalg.norm(v))
    if th < 1e-12:
        return np.eye(3)
    k = v / th
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(th) * kx + (1 - math.cos(th)) * kx @ kx


def _ss(x):
    """Smootherstep 6x^5-15x^4+10x^3 clipped to [0, 1]: C2, so accelerations stay finite."""
    x = np.clip(x, 0.0, 1.0)
    return x * x * x * (x * (6.0 * x - 15.0) + 10.0)


def _ss_int(x):
    """Integral of smootherstep from 0 to x (continues linearly beyond 1)."""
    xc = np.clip(x, 0.0, 1.0)
    poly = xc**4 * (xc * (xc - 3.0) + 2.5)
    return poly + np.maximum(np.asarray(x) - 1.0, 0.0)


def _bump(s, a, b, c, d):
    """0 -> 1 between a and b, stays 1, 1 -> 0 between c and d (smootherstep edges)."""
    return _ss((s - a) / (b - a)) - _ss((s - c) / (d - c))


def _dir(psi):
    """Unit vector of in-plane direction psi (0 = down, CCW positive)."""
    return np.sin(psi), -np.cos(psi)


def _two_link_ik(tx, ty, l1, l2, bend):
    """Planar 2-link inverse kinematics: segment angles (psi1, psi2) reaching (tx, ty).

    ``bend`` = +1/-1 chooses on which side the middle joint (elbow/knee) goes.
    The reach is clipped into the feasible annulus so the solution always exists.
    """
    d = np.hypot(tx, ty)
    d = np.clip(d, abs(l1 - l2) + 1e-3, l1 + l2 - 1e-4)
    psi_t = np.arctan2(tx, -ty)
    cos_a = np.clip((l1 * l1 + d * d - l2 * l2) / (2 * l1 * d), -1.0, 1.0)
    psi1 = psi_t + bend * np.arccos(cos_a)
    ex, ey = _dir(psi1)
    psi2 = np.arctan2(tx - l1 * ex, -(ty - l1 * ey))
    # keep psi2 on the same branch as psi1 (avoid the +-pi jump of arctan2)
    psi2 = psi1 + (psi2 - psi1 + np.pi) % (2 * np.pi) - np.pi
    return psi1, psi2


# ---------------------------------------------------------------------------
# Subjects and trials
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class _Subject:
    torso: float
    neck: float
    head_r: float
    shoulder_w: float
    upper_arm: float
    forearm: float
    hip_w: float
    thigh: float
    shin: float
    speed: float  # movement speed factor (+-25 %)
    amp: float  # movement amplitude factor (+-20 %)
    rest_abd: float  # rad, how far the arms hang away from the body at rest
    acc_noise: float  # g
    gyro_noise: float  # deg/s
    gyro_bias: np.ndarray  # deg/s, (3,)
    tilt_wrist: np.ndarray  # (3, 3) mounting rotation, segment -> sensor
    tilt_thigh: np.ndarray
    # appearance
    shirt: np.ndarray
    trousers: np.ndarray
    skin: np.ndarray
    hair: np.ndarray
    bg_top: np.ndarray
    bg_bottom: np.ndarray
    floor: np.ndarray
    tex_phase: np.ndarray
    px_per_m_rel: float  # figure scale relative to frame height
    x_offset_rel: float  # figure position (fraction of frame width)

    @property
    def leg(self) -> float:
        return self.thigh + self.shin


def _make_subject(seed: int, subject: int) -> _Subject:
    rng = np.random.default_rng([seed, 0, subject])
    size = rng.uniform(0.87, 1.13)  # overall body size; with the per-segment factor: +-15 %

    def seg(base):
        return base * size * rng.uniform(0.97, 1.03)

    def colour(lo, hi):
        return rng.uniform(lo, hi, size=3).astype(np.float32)

    bg = colour(0.72, 0.95)  # light backdrop: the dark-clothed figure stands out
    return _Subject(
        torso=seg(0.52),
        neck=seg(0.10),
        head_r=seg(0.105),
        shoulder_w=seg(0.18),
        upper_arm=seg(0.30),
        forearm=seg(0.28),
        hip_w=seg(0.095),
        thigh=seg(0.43),
        shin=seg(0.44),
        speed=rng.uniform(0.75, 1.25),
        amp=rng.uniform(0.8, 1.2),
        rest_abd=rng.uniform(4.0, 10.0) * _DEG,
        acc_noise=rng.uniform(0.01, 0.05),
        gyro_noise=rng.uniform(0.5, 2.5),
        gyro_bias=rng.normal(0.0, 1.0, size=3),
        tilt_wrist=_rotvec_matrix(rng.normal(0.0, 3.0 * _DEG, size=3)),
        tilt_thigh=_rotvec_matrix(rng.normal(0.0, 3.0 * _DEG, size=3)),
        shirt=colour(0.05, 0.5),
        trousers=colour(0.03, 0.3),
        skin=np.array([0.93, 0.76, 0.62], np.float32) * rng.uniform(0.55, 1.0),
        hair=colour(0.05, 0.3),
        bg_top=bg,
        bg_bottom=np.clip(bg * rng.uniform(0.8, 1.05), 0, 1).astype(np.float32),
        floor=colour(0.35, 0.65),
        tex_phase=rng.uniform(0, 2 * np.pi, size=4),
        px_per_m_rel=rng.uniform(0.40, 0.44),
        x_offset_rel=rng.uniform(-0.08, 0.08),
    )


@dataclass(frozen=True)
class _Trial:
    action: int
    duration: float  # s, whole recording
    onset: float  # s, movement start
    move: float  # s, movement window length
    speed: float  # subject speed x trial jitter
    amp: float  # subject amplitude x trial jitter
    phase: float  # rad, phase offset of the oscillatory parts
    sway_phase: float
    sway_amp: float  # rad, tiny natural postural sway


# Nominal movement-window length (s) at speed 1; the whole trial adds idle time.
_NOMINAL_MOVE = {1: 2.4, 2: 2.4, 3: 2.5, 4: 2.5, 5: 2.6, 6: 2.6, 7: 2.2, 8: 2.6, 9: 2.6, 10: 2.6, 11: 2.6, 12: 2.4}
_RAMP = 0.3  # s, smooth ramp in/out of every movement


def _make_trial(seed: int, action: int, subject: int, trial: int, subj: _Subject, rng) -> _Trial:
    speed = subj.speed * rng.uniform(0.95, 1.05)
    amp = subj.amp * rng.uniform(0.95, 1.05)
    onset = rng.uniform(0.25, 0.6)
    tail = rng.uniform(0.25, 0.5)
    duration = float(np.clip(onset + _NOMINAL_MOVE[action] / speed + tail, 2.5, 4.0))
    return _Trial(
        action=action,
        duration=duration,
        onset=onset,
        move=duration - onset - tail,
        speed=speed,
        amp=amp,
        phase=rng.uniform(-0.3, 0.3),
        sway_phase=rng.uniform(0, 2 * np.pi),
        sway_amp=rng.uniform(0.2, 0.6) * _DEG,
    )


# ---------------------------------------------------------------------------
# Action library: joint trajectories as closed-form functions of time
# ---------------------------------------------------------------------------
class _Clock:
    """Time bases shared by the action definitions, evaluated at times ``t``."""

    def __init__(self, t: np.ndarray, tr: _Trial):
        t0, d, r = tr.onset, tr.move, _RAMP
        self.s = np.clip((t - t0) / d, 0.0, 1.0)  # normalised progress through the movement
        # envelope: 0 at rest, 1 while moving (C2 ramps)
        self.env = _ss((t - t0) / r) - _ss((t - (t0 + d - r)) / r)
        # integral of the envelope, so periodic phases speed up/slow down smoothly
        self._w = r * _ss_int((t - t0) / r) - r * _ss_int((t - (t0 + d - r)) / r)
        self._wend = d - r
        self.tr = tr
        self.t = t

    def phase(self, freq: float) -> np.ndarray:
        """Warped phase completing an integer number of cycles (>= 1) at ``freq*speed`` Hz."""
        n = max(1, round(freq * self.tr.speed * self._wend))
        return 2 * np.pi * n * self._w / self._wend


def _rest_pose(t: np.ndarray, subj: _Subject, tr: _Trial) -> dict:
    """Standing still, arms hanging slightly away from the body, with a tiny sway."""
    z = np.zeros_like(t)
    a = subj.rest_abd
    return {
        "root": np.stack([z, z + subj.leg, z], axis=-1),
        "lean": tr.sway_amp * np.sin(2 * np.pi * 0.35 * t + tr.sway_phase),
        # arm angles in the torso frame (the torso lean is added on top)
        "r_ua": (z - a, z.copy()), "r_fa": (z - a, z.copy()),
        "l_ua": (z + a, z.copy()), "l_fa": (z + a, z.copy()),
        # leg angles in the world frame
        "r_th": (z.copy(), z.copy()), "r_sh": (z.copy(), z.copy()),
        "l_th": (z.copy(), z.copy()), "l_sh": (z.copy(), z.copy()),
    }


def _set_arm(p, side, abd, elbow, pitch=None, fpitch=None):
    """Arm by abduction/elbow angles; mirrored so positive = away from the body / upwards."""
    sgn = -1.0 if side == "r" else 1.0
    zero = np.zeros_like(abd)
    pitch = zero if pitch is None else pitch
    fpitch = pitch if fpitch is None else fpitch
    p[side + "_ua"] = (sgn * abd, pitch)
    p[side + "_fa"] = (sgn * (abd + elbow), fpitch)


def _wave(p, c, subj, tr):
    up = _bump(c.s, 0.0, 0.22, 0.8, 1.0)
    ph = c.phase(1.5) + tr.phase
    abd = subj.rest_abd + up * (80 * _DEG * tr.amp - subj.rest_abd)
    elbow = up * (85 * _DEG + 25 * _DEG * tr.amp * np.sin(ph))
    _set_arm(p, "r", abd, elbow)
    return ph


def _a_wave(p, c, subj, tr):
    _wave(p, c, subj, tr)


def _a_wave_kick(p, c, subj, tr):
    _wave(p, c, subj, tr)
    # left leg kicks out sideways (twice or three times) -- obvious on video
    kick = c.env * (0.5 - 0.5 * np.cos(c.phase(0.9)))
    ang = 40 * _DEG * tr.amp * kick
    p["l_th"] = (ang, np.zeros_like(ang))
    p["l_sh"] = (ang * 0.85, np.zeros_like(ang))
    # balance: standing on one leg puts the centre of mass over the stance foot, so the
    # pelvis shifts ~5 cm onto the right leg and the torso leans ~8 degrees away from a
    # 40-degree kick; the whole upper body, wrist included, moves with it
    p["lean"] = p["lean"] + 0.2 * ang
    p["root"][:, 0] -= 0.05 * kick


def _raise_profile(c):
    return _bump(c.s, 0.05, 0.42, 0.6, 0.97)


def _raise_arm(p, c, subj, tr, side):
    up = _raise_profile(c)
    abd = subj.rest_abd + up * (min(165 * _DEG * tr.amp, 178 * _DEG) - subj.rest_abd)
    _set_arm(p, side, abd, up * 8 * _DEG)
    return up


def _a_raise_right(p, c, subj, tr):
    up = _raise_arm(p, c, subj, tr, "r")
    p["lean"] = p["lean"] - 3.0 * _DEG * up  # counter-balance the raised arm: lean to the left


def _a_raise_both(p, c, subj, tr):
    up = _raise_arm(p, c, subj, tr, "r")
    _raise_arm(p, c, subj, tr, "l")
    p["root"][:, 1] += 0.02 * _ss((c.s - 0.15) / 0.4) * up  # rise onto the toes


def _draw_circle(p, c, subj, tr):
    # right hand circles around a centre beside/below the shoulder (torso frame);
    # angles are blended from the rest pose with the envelope so start/end are at rest
    ph = c.phase(0.85) + 1.5 * np.pi
    rad = 0.17 * tr.amp * (subj.upper_arm + subj.forearm) / 0.58
    cx, cy = -0.22 * subj.upper_arm / 0.3, -0.22 * subj.upper_arm / 0.3
    tx, ty = cx + rad * np.cos(ph), cy + rad * np.sin(ph)
    # elbow bends out/up (bend=-1 puts it on the outer side for the right arm)
    p1, p2 = _two_link_ik(tx, ty, subj.upper_arm, subj.forearm, -1.0)
    ua0, fa0 = p["r_ua"][0], p["r_fa"][0]
    e = c.env
    p["r_ua"] = (ua0 + e * (p1 - ua0), p["r_ua"][1])
    p["r_fa"] = (fa0 + e * (p2 - fa0), p["r_fa"][1])


def _a_circle(p, c, subj, tr):
    _draw_circle(p, c, subj, tr)


def _a_circle_march(p, c, subj, tr):
    _draw_circle(p, c, subj, tr)
    ph = c.phase(0.8)
    lift_r = c.env * np.maximum(np.sin(ph), 0.0) ** 3
    lift_l = c.env * np.maximum(-np.sin(ph), 0.0) ** 3
    for side, lift in (("r", lift_r), ("l", lift_l)):
        th = min(85 * _DEG * tr.amp, 90 * _DEG) * lift  # high knees: the lifted foot shows on video
        p[side + "_th"] = (np.zeros_like(th), th)
        p[side + "_sh"] = (np.zeros_like(th), th * 0.05)  # shin hangs ~vertically
    # the body rides the steps: the pelvis rises and falls ~3.5 cm at the step frequency
    # (twice per stride; marching in place with high knees), and the torso sways ~2 degrees
    # over the stance leg once per stride, so the wrist bounces with every step
    p["root"][:, 1] += 0.035 * c.env * np.sin(ph) ** 2
    p["lean"] = p["lean"] + 2.0 * _DEG * c.env * np.sin(ph)


def _a_clap(p, c, subj, tr):
    up = _bump(c.s, 0.0, 0.2, 0.82, 1.0)
    ph = c.phase(2.0) + tr.phase
    abd = subj.rest_abd + up * (25 * _DEG - subj.rest_abd)
    # forearms swing inwards past horizontal so the hands meet at the midline
    elbow = -up * (112 * _DEG + 18 * _DEG * tr.amp * np.sin(ph))
    for side in ("r", "l"):
        _set_arm(p, side, abd, elbow, pitch=up * 25 * _DEG, fpitch=up * 20 * _DEG)


def _a_squat(p, c, subj, tr):
    down = _bump(c.s, 0.08, 0.45, 0.58, 0.95)
    drop = 0.24 * tr.amp * down * subj.leg / 0.87
    # knees splay outwards symmetrically so the feet stay under the hips
    a = np.arccos(np.clip((subj.leg - drop) / subj.leg, -1, 1))
    z = np.zeros_like(a)
    p["r_th"], p["r_sh"] = (-a, z), (a, z)
    p["l_th"], p["l_sh"] = (a, z), (-a, z)
    p["root"][:, 1] -= drop
    fwd = down * 80 * _DEG
    for side in ("r", "l"):
        _set_arm(p, side, subj.rest_abd * (1 - down), z, pitch=fwd)


def _a_knee_raise(p, c, subj, tr):
    lift = c.env * (0.5 - 0.5 * np.cos(c.phase(0.75)))
    th = 80 * _DEG * min(tr.amp, 1.1) * lift
    p["r_th"] = (-0.2 * th, th)  # forward, and a little outward so it reads on video
    p["r_sh"] = (-0.1 * th, th * 0.05)
    p["lean"] = p["lean"] - 1.0 * _DEG * lift  # weight onto the left leg
    p["l_ua"] = (p["l_ua"][0] + 10 * _DEG * lift, p["l_ua"][1])


def _a_side_step(p, c, subj, tr):
    s = c.s
    dist = 0.25 * tr.amp * subj.leg / 0.87
    hw = subj.hip_w
    # feet (x, lift): right leads out, left follows; left leads back, right follows
    rx = -hw - dist * (_ss((s - 0.08) / 0.2) - _ss((s - 0.68) / 0.2))
    lx = hw - dist * (_ss((s - 0.25) / 0.2) - _ss((s - 0.52) / 0.2))
    lift = lambda a: 0.07 * np.sin(np.pi * np.clip((s - a) / 0.2, 0, 1)) ** 4  # noqa: E731
    ry, ly = lift(0.08) + lift(0.68), lift(0.25) + lift(0.52)
    root_x = 0.5 * (rx + lx)
    # the subject stands with soft knees (pelvis 3 % lower) for the whole trial, so the
    # leg IK never reaches full extension (where it would have a derivative singularity)
    root_y = subj.leg * 0.97 + np.zeros_like(s)
    p["root"][:, 0] += root_x
    p["root"][:, 1] = root_y
    for side, fx, fy, hip, bend in (("r", rx, ry, -hw, -1.0), ("l", lx, ly, hw, 1.0)):
        t1, t2 = _two_link_ik(fx - (root_x + hip), fy - root_y, subj.thigh, subj.shin, bend)
        z = np.zeros_like(t1)
        p[side + "_th"], p[side + "_sh"] = (t1, z), (t2, z)
    # arms swing out a little for balance
    out = 12 * _DEG * (_bump(s, 0.05, 0.2, 0.4, 0.55) + _bump(s, 0.5, 0.65, 0.85, 0.98))
    for side in ("r", "l"):
        _set_arm(p, side, subj.rest_abd + out, 0 * out)


def _a_jacks(p, c, subj, tr):
    ph = c.phase(0.95)
    open_ = c.env * (0.5 - 0.5 * np.cos(ph))
    abd = subj.rest_abd + open_ * (min(160 * _DEG * tr.amp, 175 * _DEG) - subj.rest_abd)
    for side in ("r", "l"):
        _set_arm(p, side, abd, open_ * 10 * _DEG)
    spread = 14 * _DEG * open_
    z = np.zeros_like(spread)
    p["r_th"], p["r_sh"] = (-spread, z), (-spread, z)
    p["l_th"], p["l_sh"] = (spread, z), (spread, z)
    # hop twice per cycle (out and in); legs spread lowers the pelvis
    p["root"][:, 1] = subj.leg * np.cos(spread) + 0.06 * tr.amp * c.env * np.sin(ph) ** 2


def _a_punch(p, c, subj, tr):
    guard = _bump(c.s, 0.0, 0.15, 0.87, 1.0)
    ph = c.phase(0.8) + tr.phase
    pr = c.env * np.maximum(np.sin(ph), 0) ** 3
    pl = c.env * np.maximum(-np.sin(ph), 0) ** 3
    for side, pk in (("r", pr), ("l", pl)):
        # guard: elbows out, fists up by the chin; punch: arm straightens forward-sideways
        abd = subj.rest_abd + guard * (35 * _DEG - subj.rest_abd) + pk * 30 * _DEG * tr.amp
        elbow = -guard * 120 * _DEG * (1 - pk)
        pitch = guard * (15 * _DEG + pk * 30 * _DEG)
        _set_arm(p, side, abd, elbow, pitch=pitch, fpitch=pitch * (1 + 0.8 * (1 - pk)))


_ACTION_FUNCS = {
    1: _a_wave, 2: _a_wave_kick, 3: _a_raise_right, 4: _a_raise_both, 5: _a_circle, 6: _a_circle_march,
    7: _a_clap, 8: _a_squat, 9: _a_knee_raise, 10: _a_side_step, 11: _a_jacks, 12: _a_punch,
}
assert len(_ACTION_FUNCS) == len(ACTIONS)


def _pose(t: np.ndarray, subj: _Subject, tr: _Trial) -> dict:
    t = np.asarray(t, dtype=np.float64)
    p = _rest_pose(t, subj, tr)
    _ACTION_FUNCS[tr.action](p, _Clock(t, tr), subj, tr)
    return p


def _forward(p: dict, subj: _Subject) -> tuple[dict, dict]:
    """Forward kinematics: joint positions (T, 3) and segment rotations (T, 3, 3)."""
    root, lean = p["root"], p["lean"]
    z = np.zeros_like(lean)
    up = np.stack([-np.sin(lean), np.cos(lean), z], axis=-1)  # torso direction
    right = np.stack([-np.cos(lean), -np.sin(lean), z], axis=-1)  # subject's right = image left
    neck = root + subj.torso * up
    J = {"root": root, "neck": neck, "head": neck + (subj.neck + subj.head_r) * up}
    R = {}
    for side, sgn in (("r", 1.0), ("l", -1.0)):
        sh = neck - 0.04 * up + sgn * subj.shoulder_w * right
        R[side + "_ua"] = segment_rotation(lean + p[side + "_ua"][0], p[side + "_ua"][1])
        R[side + "_fa"] = segment_rotation(lean + p[side + "_fa"][0], p[side + "_fa"][1])
        el = sh + subj.upper_arm * R[side + "_ua"][..., 0]
        J[side + "_shoulder"], J[side + "_elbow"] = sh, el
        J[side + "_wrist"] = el + subj.forearm * R[side + "_fa"][..., 0]
        hip = root + np.array([-sgn * subj.hip_w, 0.0, 0.0])
        R[side + "_th"] = segment_rotation(*p[side + "_th"])
        R[side + "_sh"] = segment_rotation(*p[side + "_sh"])
        kn = hip + subj.thigh * R[side + "_th"][..., 0]
        J[side + "_hip"], J[side + "_knee"] = hip, kn
        J[side + "_ankle"] = kn + subj.shin * R[side + "_sh"][..., 0]
    return J, R


# ---------------------------------------------------------------------------
# Inertial sensor
# ---------------------------------------------------------------------------
def _sensor_state(t, subj, tr, thigh: bool):
    """Sensor position (T, 3) and segment orientation (T, 3, 3) at times t."""
    J, R = _forward(_pose(t, subj, tr), subj)
    if thigh:
        return 0.5 * (J["r_hip"] + J["r_knee"]), R["r_th"]
    return J["r_wrist"], R["r_fa"]


def _simulate_imu(subj: _Subject, tr: _Trial, sensor_rate: float, rng) -> np.ndarray:
    n = int(round(tr.duration * sensor_rate))
    h = 1.0 / (_FINE * sensor_rate)
    # fine grid with one extra sample either side so every sensor sample has neighbours
    tf = (np.arange(-1, _FINE * (n - 1) + 2) * h).astype(np.float64)
    thigh = tr.action in THIGH_ACTIONS
    pos, rot = _sensor_state(tf, subj, tr, thigh)
    acc = second_derivative(pos, h)[::_FINE]  # world-frame linear acceleration at sample times
    idx = 1 + _FINE * np.arange(n)  # fine-grid indices of the sensor samples
    # specific force: what an accelerometer measures (a - g, with g pointing down)
    f_world = acc - np.array([0.0, -GRAVITY, 0.0])
    tilt = subj.tilt_thigh if thigh else subj.tilt_wrist
    r_sensor = rot @ tilt  # segment frame, then mounting tilt
    r_mid = r_sensor[idx]
    f_sensor = np.einsum("nji,nj->ni", r_mid, f_world) / GRAVITY
    omega = body_angular_velocity(r_sensor[idx - 1], r_mid, r_sensor[idx + 1], h) / _DEG
    f_sensor += rng.normal(0.0, subj.acc_noise, size=f_sensor.shape)
    omega += subj.gyro_bias + rng.normal(0.0, subj.gyro_noise, size=omega.shape)
    # full-scale ranges of UTD-MHAD's sensor (+-8 g, +-1000 deg/s): saturate like it would
    np.clip(f_sensor, -_ACC_RANGE, _ACC_RANGE, out=f_sensor)
    np.clip(omega, -_GYRO_RANGE, _GYRO_RANGE, out=omega)
    return np.ascontiguousarray(np.concatenate([f_sensor, omega], axis=1), dtype=np.float64)


# ---------------------------------------------------------------------------
# Video rendering
# ---------------------------------------------------------------------------
def _background(subj: _Subject, width: int, height: int, ground_px: float) -> np.ndarray:
    """Vertical gradient + faint low-frequency texture + a floor below the ground line."""
    yy = np.arange(height, dtype=np.float32)[:, None, None] / max(height - 1, 1)
    xx = np.arange(width, dtype=np.float32)[None, :, None] / max(width - 1, 1)
    img = subj.bg_top * (1 - yy) + subj.bg_bottom * yy
    ph = subj.tex_phase
    tex = 0.025 * np.sin(2 * np.pi * (1.3 * xx + 0.4 * yy) + ph[0]) * np.sin(2 * np.pi * 1.7 * yy + ph[1])
    img = img + tex
    floor_alpha = np.clip(np.arange(height, dtype=np.float32) - ground_px + 0.5, 0, 1)[:, None, None]
    floor = subj.floor + 0.02 * np.sin(2 * np.pi * 3.0 * xx + ph[2])
    img = img * (1 - floor_alpha) + floor * floor_alpha
    return np.clip(img, 0, 1).astype(np.float32)


def _draw_capsule(img, ax, ay, bx, by, r, col):
    """Alpha-blend an anti-aliased capsule (segment ab, radius r px) into img in place.

    Only the bounding box is touched, which keeps the per-frame cost tiny.
    """
    h, w = img.shape[:2]
    x0 = max(int(math.floor(min(ax, bx) - r - 1)), 0)
    x1 = min(int(math.ceil(max(ax, bx) + r + 2)), w)
    y0 = max(int(math.floor(min(ay, by) - r - 1)), 0)
    y1 = min(int(math.ceil(max(ay, by) + r + 2)), h)
    if x0 >= x1 or y0 >= y1:
        return
    px = np.arange(x0, x1, dtype=np.float32)[None, :] - ax
    py = np.arange(y0, y1, dtype=np.float32)[:, None] - ay
    dx, dy = bx - ax, by - ay
    ll = dx * dx + dy * dy
    if ll > 1e-9:
        tt = np.clip((px * dx + py * dy) * (1.0 / ll), 0.0, 1.0)
        ex, ey = px - tt * dx, py - tt * dy
    else:
        ex, ey = px, py
    alpha = np.clip(r + 0.5 - np.sqrt(ex * ex + ey * ey), 0.0, 1.0)[..., None]
    sub = img[y0:y1, x0:x1]
    sub += alpha * (col - sub)


def _render(subj: _Subject, tr: _Trial, width: int, height: int, fps: float) -> np.ndarray:
    """Render the recording's frames, uint8 (F, H, W, 3)."""
    nf = int(round(tr.duration * fps))
    t = np.arange(nf) / fps
    J, _ = _forward(_pose(t, subj, tr), subj)
    k = subj.px_per_m_rel * min(height, width * 0.75)  # pixels per metre
    ground = height * 0.93
    cx = width * (0.5 + subj.x_offset_rel)

    def px(name):
        q = J[name]
        return cx + k * q[:, 0], ground - k * q[:, 1], q[:, 2]

    bg = _background(subj, width, height, ground + 0.06 * k)
    P = {name: px(name) for name in J}
    # (from, to, radius in metres, colour, depth bias): arms drawn over the torso, legs under
    segs = []
    # limbs drawn LIMB_WIDTH times thicker than life: a stylised figure whose limbs stay a few
    # pixels wide after the frames stage shrinks the video to 64 px
    for side in ("l", "r"):
        segs += [
            (side + "_hip", side + "_knee", 0.065, subj.trousers, -0.002),
            (side + "_knee", side + "_ankle", 0.055, subj.trousers * 0.9, -0.002),
            (side + "_shoulder", side + "_elbow", 0.052, subj.shirt * 0.92, 0.002),
            (side + "_elbow", side + "_wrist", 0.045, subj.shirt * 0.8, 0.003),  # long sleeves
        ]
    segs += [("root", "neck", 0.125, subj.shirt, 0.0), ("neck", "head", 0.04, subj.skin * 0.95, -0.001)]
    frames = np.empty((nf, height, width, 3), np.uint8)
    hr = subj.head_r * k
    for i in range(nf):
        img = bg.copy()
        # painter's algorithm: sort by mean depth (towards camera = larger z = later)
        order = sorted(segs, key=lambda s: 0.5 * (P[s[0]][2][i] + P[s[1]][2][i]) + s[4])
        for a, b, rad, col, _ in order:
            _draw_capsule(img, P[a][0][i], P[a][1][i], P[b][0][i], P[b][1][i], LIMB_WIDTH * rad * k, col)
        for side in ("l", "r"):  # bare hands at the end of the sleeves
            wx, wy = P[side + "_wrist"][0][i], P[side + "_wrist"][1][i]
            _draw_capsule(img, wx, wy, wx, wy, LIMB_WIDTH * 0.04 * k, subj.skin)
        hx, hy = P["head"][0][i], P["head"][1][i]
        _draw_capsule(img, hx, hy, hx, hy, hr, subj.skin)
        _draw_capsule(img, hx, hy - 0.45 * hr, hx, hy - 0.45 * hr, 0.62 * hr, subj.hair)  # hair cap
        _draw_capsule(img, hx, hy + 0.1 * hr, hx, hy + 0.1 * hr, 0.78 * hr, subj.skin)  # face
        frames[i] = (img * 255.0 + 0.5).astype(np.uint8)
    return frames


_MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: vskd.datasets.synthetic, Created on: (deterministic)"


def _write_mat(path: Path, d_iner: np.ndarray) -> None:
    """MATLAB 5 file like UTD-MHAD's; the header's timestamp is fixed for byte-identity."""
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, {"d_iner": d_iner}, do_compression=False, format="5")
    data = bytearray(buf.getvalue())
    data[:116] = _MAT_HEADER.ljust(116, b" ")
    path.write_bytes(bytes(data))


# ---------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------
def simulate_recording(
    action: int, subject: int, trial: int, *, seed: int = 0, width: int = 160, height: int = 120,
    fps: float = 15.0, sensor_rate: float = 50.0, render: bool = True,
) -> dict:
    """Simulate one recording in memory (no files).

    Returns ``{'d_iner': (N, 6) float64, 'frames': (F, H, W, 3) uint8 or None,
    'duration': seconds, 'onset': s, 'move': s, 'thigh': bool}``.  Exactly what
    :func:`generate` writes for the same arguments.
    """
    if not 1 <= action <= len(ACTIONS):
        raise ValueError(f"action must be in 1..{len(ACTIONS)}, got {action!r}")
    subj = _make_subject(seed, subject)
    rng = np.random.default_rng([seed, action, subject, trial])
    tr = _make_trial(seed, action, subject, trial, subj, rng)
    d_iner = _simulate_imu(subj, tr, sensor_rate, rng)
    frames = _render(subj, tr, width, height, fps) if render else None
    return {"d_iner": d_iner, "frames": frames, "duration": tr.duration, "onset": tr.onset,
            "move": tr.move, "thigh": action in THIGH_ACTIONS}


def _check_int(name, value, lo, hi=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"in {lo}..{hi}"
        raise ValueError(f"{name} must be {rng}, got {value!r}")


def _check_pos(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) \
            or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def generate(out_dir, *, seed: int = 0, actions: int = 10, subjects: int = 8, trials: int = 4,
             width: int = 160, height: int = 120, fps: float = 15.0, sensor_rate: float = 50.0,
             progress: bool = True) -> dict:
    """Write the synthetic data set in UTD-MHAD layout and return a summary.

    Files: ``out_dir/RGB/a{A}_s{S}_t{T}_color.avi`` and
    ``out_dir/Inertial/a{A}_s{S}_t{T}_inertial.mat`` for A in 1..actions,
    S in 1..subjects, T in 1..trials.  Deterministic in all arguments; each
    recording depends only on (seed, A, S, T) and the size/rate arguments.

    Returns a dict with ``out_dir``, ``seed``, ``actions``, ``subjects``, ``trials``,
    ``recordings`` (count), ``videos``, ``inertial``, ``frames`` (total),
    ``samples`` (total), ``total_bytes``, ``seconds`` (wall time) and ``items``
    (per recording: action, subject, trial, name, duration, frames, samples, thigh).

    Raises ValueError naming the offending argument for bad values.
    """
    from vskd.frames import write_video  # PyAV: only writing videos needs it
    _check_int("seed", seed, 0)
    _check_int("actions", actions, 1, len(ACTIONS))
    _check_int("subjects", subjects, 1)
    _check_int("trials", trials, 1)
    _check_int("width", width, 16)
    _check_int("height", height, 16)
    if width % 2 or height % 2:
        raise ValueError(f"width and height must be even (yuv420p), got {width}x{height}")
    _check_pos("fps", fps)
    _check_pos("sensor_rate", sensor_rate)
    if sensor_rate < 10:
        raise ValueError(f"sensor_rate must be >= 10 Hz, got {sensor_rate!r}")

    from tqdm import tqdm

    start = time.perf_counter()
    out = Path(out_dir)
    rgb_dir, iner_dir = out / "RGB", out / "Inertial"
    rgb_dir.mkdir(parents=True, exist_ok=True)
    iner_dir.mkdir(parents=True, exist_ok=True)
    jobs = [(a, s, t) for a in range(1, actions + 1) for s in range(1, subjects + 1) for t in range(1, trials + 1)]
    items, total_bytes = [], 0
    for a, s, t in tqdm(jobs, desc="synthetic UTD-MHAD", unit="rec", disable=not progress):
        rec = simulate_recording(a, s, t, seed=seed, width=width, height=height, fps=fps, sensor_rate=sensor_rate)
        name = recording_name(a, s, t)
        vpath, mpath = rgb_dir / f"{name}_color.avi", iner_dir / f"{name}_inertial.mat"
        write_video(vpath, rec["frames"], fps)
        _write_mat(mpath, rec["d_iner"])
        total_bytes += vpath.stat().st_size + mpath.stat().st_size
        items.append({"action": a, "subject": s, "trial": t, "name": name, "duration": rec["duration"],
                      "frames": int(rec["frames"].shape[0]), "samples": int(rec["d_iner"].shape[0]),
                      "thigh": rec["thigh"]})
    return {
        "out_dir": str(out), "seed": seed, "actions": actions, "subjects": subjects, "trials": trials,
        "recordings": len(items), "videos": len(items), "inertial": len(items),
        "frames": sum(i["frames"] for i in items), "samples": sum(i["samples"] for i in items),
        "total_bytes": total_bytes, "seconds": time.perf_counter() - start, "items": items,
    }
