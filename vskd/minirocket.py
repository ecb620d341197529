"""MiniRocket on the raw accelerometer: the reference row of every table.

A modern time-series classifier that needs no teacher, no GAF and no GPU (Dempster et al.,
MiniRocket, KDD 2021; aeon's ``MiniRocketClassifier``: random convolution kernels, PPV
features, standardisation and ``RidgeClassifierCV``). It is trained on exactly the student's
data:

* the recordings are those indexed in ``gaf.h5`` (so a recording the GAF stage skipped is
  skipped here too), read from ``data/<ds>/raw`` with the dataset adapter's
  ``read_accelerometer``, the reader the GAF stage uses (the three accelerometer axes, in g,
  after the dataset's own resampling, e.g. Berkeley-MHAD's ``sensor.rate_hz``);
* the split is :func:`vskd.index.make_split` with params.yaml's ``seed``, as for the students;
  it trains on the training part only (the validation subset is left out, as the students'
  training leaves it out; ``RidgeClassifierCV`` picks its regularisation by leave-one-out on
  the training part), and never sees the test part before predicting it;
* each recording is resampled to one length, ``minirocket.length`` samples (0: the longest
  training recording, so no training recording is shrunk), by linear interpolation that keeps
  its first and last samples: the whole trial, as the GAF image shows the whole trial.

One classifier per training seed (``seeds``): the seed draws MiniRocket's kernel biases.
The output, ``models/<ds>/minirocket.json``, holds the test predictions per seed by sample
id; the evaluate stage scores them beside the students.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from vskd.datasets.resample import resample_to_length
from vskd.h5store import atomic_path, get_meta, open_store, read_index
from vskd.index import make_split


def to_panel(recordings: list[np.ndarray], length: int) -> np.ndarray:
    """aeon's collection layout: (cases, channels, time points), float64."""
    return np.stack([resample_to_length(r, length).T for r in recordings]) if recordings else np.zeros((0, 3, length))


def read_recordings(dataset: str, raw_dir, block: dict, ids) -> list[np.ndarray]:
    """The accelerometer (N, 3) float64 of each sample id, through the dataset adapter (the GAF path).

    The one reader of raw recordings by gaf.h5 id (MiniRocket here, the export stage too), so
    that both fail alike: FileNotFoundError when an indexed recording has no sensor file in
    ``raw_dir`` (raw/ and gaf.h5 out of step), ValueError naming the file when it is not (N, 3).
    """
    from vskd.datasets import get_adapter

    adapter = get_adapter(dataset)
    by_id = {s.id: s for s in adapter.scan(Path(raw_dir), block)}
    missing = [str(i) for i in ids if i not in by_id or by_id[i].sensor is None]
    if missing:
        raise FileNotFoundError(f"{raw_dir}: {len(missing)} recording(s) indexed in gaf.h5 have no sensor "
                                f"file, e.g. {missing[:3]}; rerun the download and gaf stages")
    out = []
    for i in ids:
        acc = np.asarray(adapter.read_accelerometer(by_id[i].sensor, block), dtype=np.float64)
        if acc.ndim != 2 or acc.shape[1] < 3:
            raise ValueError(f"{by_id[i].sensor}: expected an (N, 3) accelerometer recording, got {acc.shape}")
        out.append(acc[:, :3])
    return out


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, seed: int,
                n_kernels: int, max_dilations_per_kernel: int) -> np.ndarray:
    """One MiniRocket classifier (aeon), fitted and applied: test predictions.

    aeon sets numba's thread count on its way out, and numba's OpenMP layer is the same
    libgomp torch runs on: after a fit, torch.get_num_threads() was 2 in a process started
    with OMP_NUM_THREADS=1, and two such processes on two cores trained their next students
    5x slower (15 s epochs instead of 3). Torch's thread count is put back."""
    import torch
    from aeon.classification.convolution_based import MiniRocketClassifier

    threads = torch.get_num_threads()
    try:
        clf = MiniRocketClassifier(n_kernels=n_kernels, max_dilations_per_kernel=max_dilations_per_kernel,
                                   n_jobs=1, random_state=seed)
        clf.fit(x_train, y_train)
        return np.asarray(clf.predict(x_test), dtype=np.int64)
    finally:
        torch.set_num_threads(threads)


def train_minirocket(dataset: str, gaf_path, raw_dir, block: dict, out_path, *, cfg: dict,
                     split_seed: int, seeds: list[int]) -> dict:
    """Train one MiniRocket per seed on the training part, write the test predictions."""
    with open_store(gaf_path, "gaf") as h5:
        index = read_index(h5)
        class_names = get_meta(h5, "class_names")
    split = make_split(index["subjects"], index["trials"], index["labels"], block["split"], split_seed)
    train, test = split["train"], split["test"]
    ids = index["ids"]
    recordings = read_recordings(dataset, raw_dir, block, [ids[r] for r in np.concatenate([train, test])])
    train_rec, test_rec = recordings[:len(train)], recordings[len(train):]
    length = int(cfg.get("length", 0)) or max(len(r) for r in train_rec)
    x_train, x_test = to_panel(train_rec, length), to_panel(test_rec, length)
    y_train = index["labels"][train]
    predictions, seconds = {}, []
    for seed in seeds:
        start = time.perf_counter()
        predictions[str(seed)] = fit_predict(
            x_train, y_train, x_test, seed=seed, n_kernels=int(cfg["n_kernels"]),
            max_dilations_per_kernel=int(cfg["max_dilations_per_kernel"])).tolist()
        seconds.append(time.perf_counter() - start)
    y_test = index["labels"][test]
    result = {
        "dataset": dataset, "model": "aeon MiniRocketClassifier", "class_names": list(class_names),
        "length": length, "n_kernels": int(cfg["n_kernels"]),
        "max_dilations_per_kernel": int(cfg["max_dilations_per_kernel"]),
        "split": {"name": block["split"]["name"], "train": len(train), "val": len(split["val"]),
                  "test": len(test)},
        "seeds": list(seeds), "test_ids": [str(ids[r]) for r in test],
        "test_labels": y_test.tolist(), "predictions": predictions,
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_path) as tmp:
        tmp.write_text(json.dumps(result) + "\n")
    accuracy = [float(np.mean(np.array(predictions[str(s)]) == y_test)) for s in seeds]
    return {"train": len(train), "test": len(test), "length": length,
            "test_accuracy": "/".join(f"{a:.3f}" for a in accuracy),
            "fit_s": "/".join(f"{s:.1f}" for s in seconds)}


def load_predictions(path) -> dict:
    """``models/<ds>/minirocket.json`` as written by :func:`train_minirocket`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found. Run `dvc repro minirocket` to build it.")
    return json.loads(path.read_text())
