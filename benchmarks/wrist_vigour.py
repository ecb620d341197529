"""How much more or less vigorously one subject moves than the others, at the wrist.

    python -m benchmarks.wrist_vigour --source ../shared/data/utd_mhad_odd_subjects

Per trial, the RMS of the accelerometer about its 1 s moving average (the motion, less the
slowly turning gravity). Per action, each subject's median over its trials is divided by the
mean of the subjects' medians; the script prints, per subject, the median and interquartile
range of that ratio over the actions, and the trial-to-trial spread within one subject and
action (coefficient of variation, median over the pairs). This is what the student's
``student.augment.gain`` stands for (vskd/augment.py). Only the inertial files are read.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from vskd.datasets.utd_mhad import read_accelerometer

RATE_HZ = 50  # UTD-MHAD's inertial sensor


def motion_rms(acc: np.ndarray, window: int = RATE_HZ) -> float:
    """RMS of |acc - moving average of ``window`` samples| (edges padded with the end values)."""
    padded = np.pad(acc, ((window // 2, window - 1 - window // 2), (0, 0)), mode="edge")
    kernel = np.ones(window) / window
    slow = np.stack([np.convolve(padded[:, c], kernel, mode="valid") for c in range(acc.shape[1])], axis=1)
    return float(np.sqrt(((acc - slow) ** 2).sum(axis=1).mean()))


def subject_ratios(rms: dict[int, dict[int, list[float]]]) -> dict[int, list[float]]:
    """{action: {subject: [trial RMS]}} -> {subject: [its median / the subjects' mean, per action]}."""
    ratios = defaultdict(list)
    for by_subject in rms.values():
        medians = {s: float(np.median(v)) for s, v in by_subject.items()}
        mean = np.mean(list(medians.values()))
        for s, m in medians.items():
            ratios[s].append(m / mean)
    return dict(ratios)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--source", type=Path, required=True, help="a folder with UTD-MHAD's Inertial/")
    args = ap.parse_args(argv)
    rms = defaultdict(lambda: defaultdict(list))
    for path in sorted((args.source / "Inertial").glob("a*_s*_t*_inertial.mat")):
        action, subject, _ = map(int, re.findall(r"a(\d+)_s(\d+)_t(\d+)", path.name)[0])
        rms[action][subject].append(motion_rms(read_accelerometer(path)))
    for subject, r in sorted(subject_ratios(rms).items()):
        q1, q3 = np.percentile(r, [25, 75])
        print(f"subject {subject}: motion / the subjects' mean, over {len(r)} actions: median {np.median(r):.2f}, "
              f"interquartile {q1:.2f}-{q3:.2f}")
    cv = [np.std(v) / np.mean(v) for by_subject in rms.values() for v in by_subject.values() if len(v) > 1]
    print(f"one subject's trials of one action: coefficient of variation, median {np.median(cv):.3f}")


if __name__ == "__main__":
    main()
