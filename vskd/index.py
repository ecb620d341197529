"""The sample index: one row per recording, the same type for every dataset.

Splits are functions of the index (subjects, trials, labels), never file lists copied by
hand. The index travels with the data: ``frames.h5`` and ``gaf.h5`` store its columns, so a
training stage reads its samples and splits from the file it trains on.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vskd.choices import SPLITS


@dataclass(frozen=True)
class Sample:
    """One recording. ``label`` is 0-based; ``trial`` is the trial (or session) number.

    ``video`` is a video file, or a folder of frame images (Berkeley-MHAD); ``sensor`` is
    None when the recording has no usable file for the sensor chosen in params.yaml (such a
    recording can still train the video teacher; the GAF stage leaves it out and counts it).
    """

    id: str
    label: int
    subject: int
    trial: int
    video: Path
    sensor: Path | None


def id_listing(ids, limit: int = 6) -> int | str:
    """0, or 'N (id1, id2, ...)' for stage summaries: counted and named, never silent."""
    ids = list(ids)
    if not ids:
        return 0
    shown = ", ".join(map(str, ids[:limit]))
    return f"{len(ids)} ({shown}{', ...' if len(ids) > limit else ''})"


def index_columns(samples: list[Sample]) -> dict[str, np.ndarray]:
    """The columns stored beside the data in every HDF5 file."""
    return {
        "ids": np.array([s.id for s in samples], dtype=object),
        "labels": np.array([s.label for s in samples], dtype=np.int64),
        "subjects": np.array([s.subject for s in samples], dtype=np.int64),
        "trials": np.array([s.trial for s in samples], dtype=np.int64),
    }


def _carve_validation(train: np.ndarray, labels: np.ndarray, fraction: float, seed: int):
    """Stratified by class, deterministic given the seed: the same samples every run."""
    if fraction <= 0:
        return train, train[:0]
    rng = np.random.default_rng(seed)
    val = []
    for label in np.unique(labels[train]):
        members = train[labels[train] == label]
        n_val = int(round(len(members) * fraction))
        n_val = min(n_val, len(members) - 1)  # never empty a class out of training
        val.extend(rng.permutation(members)[:n_val].tolist())
    val = np.array(sorted(val), dtype=np.int64)
    return np.setdiff1d(train, val), val


def make_split(
    subjects: np.ndarray, trials: np.ndarray, labels: np.ndarray, cfg: dict, seed: int
) -> dict[str, np.ndarray]:
    """Row indices of the train, val and test parts.

    cfg is a dataset's ``split`` block in params.yaml:
      name: cross_subject     train on ``train_subjects``, test on every other subject
                              (only ``test_subjects`` where given: a development fold)
      name: subject_specific  train on ``train_trials`` of every subject, test on the rest
                              (the authors' UTD-MHAD protocol: trials 1-2 / 3-4)
      name: cross_session     train on ``train_sessions``, test on the other sessions; the
                              ``trials`` column holds the session (MMAct: sessions 1-4 / 5)
      val_fraction: f         this fraction of the training samples, stratified by class,
                              is held out as validation; the test part is never touched.
    """
    name = cfg.get("name")
    subjects, trials, labels = map(np.asarray, (subjects, trials, labels))
    rows = np.arange(len(subjects))
    if name == "cross_subject":
        train_subjects = cfg.get("train_subjects")
        if not train_subjects:
            raise ValueError("split 'cross_subject' needs a non-empty 'train_subjects' list")
        is_train = np.isin(subjects, train_subjects)
        if cfg.get("test_subjects"):  # a leave-one-subject-out fold tests one subject only
            rows = rows[is_train | np.isin(subjects, cfg["test_subjects"])]
            is_train = is_train[rows]
    elif name == "subject_specific":
        train_trials = cfg.get("train_trials")
        if not train_trials:
            raise ValueError("split 'subject_specific' needs a non-empty 'train_trials' list")
        is_train = np.isin(trials, train_trials)
    elif name == "cross_session":
        train_sessions = cfg.get("train_sessions")
        if not train_sessions:
            raise ValueError("split 'cross_session' needs a non-empty 'train_sessions' list")
        is_train = np.isin(trials, train_sessions)
    else:
        raise ValueError(f"unknown split name {name!r}; expected one of {', '.join(SPLITS)}")
    train, test = rows[is_train], rows[~is_train]
    if len(train) == 0 or len(test) == 0:
        raise ValueError(
            f"split {name!r} leaves {len(train)} training and {len(test)} test samples; "
            "check train_subjects / train_trials / train_sessions against the dataset"
        )
    train, val = _carve_validation(train, labels, float(cfg.get("val_fraction", 0)), seed)
    return {"train": train, "val": val, "test": test}
