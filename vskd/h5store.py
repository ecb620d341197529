"""HDF5 stores keyed by sample id, written atomically.

Every store holds the sample index under ``/index`` (ids, labels, subjects, trials) and its
metadata (class names, the settings that made it) as attributes. Writers go to a hidden
temporary file next to the target and rename it at the end: a stage killed mid-write leaves
no file that DVC or a later stage could take as complete.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

STR = h5py.string_dtype("utf-8")


@contextmanager
def atomic_path(final: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename onto it only if the block succeeds."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    _remove(tmp)
    _remove_stale(final)
    try:
        yield tmp
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        raise


def _remove_stale(final: Path) -> None:
    """Temporaries of ``final`` left by a writer that was killed (SIGKILL, power loss): its
    process is gone, the file was never renamed and never will be."""
    for stale in final.parent.glob(f".{glob.escape(final.name)}.tmp-*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            _remove(stale)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def write_index(h5: h5py.File, columns: dict[str, np.ndarray]) -> None:
    group = h5.create_group("index")
    for name, values in columns.items():
        if values.dtype == object:
            group.create_dataset(name, data=np.array(values, dtype=object), dtype=STR)
        else:
            group.create_dataset(name, data=values)


def read_index(h5: h5py.File) -> dict[str, np.ndarray]:
    group = h5["index"]
    out = {}
    for name in group:
        data = group[name][()]
        if group[name].dtype.kind in ("O", "S"):
            data = np.array([v.decode() if isinstance(v, bytes) else v for v in data], dtype=object)
        out[name] = data
    return out


def set_meta(h5: h5py.File, **meta) -> None:
    """Metadata as JSON strings: readable by any HDF5 tool, round-trips lists and dicts."""
    for key, value in meta.items():
        h5.attrs[key] = json.dumps(value)


def get_meta(h5: h5py.File, key: str):
    if key not in h5.attrs:
        raise KeyError(f"{h5.filename}: attribute '{key}' missing; rebuild it with its stage")
    return json.loads(h5.attrs[key])


def open_store(path: str | Path, stage: str) -> h5py.File:
    """Open a stage output for reading; a missing file names the stage that makes it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found. Run `dvc repro {stage}` to build it.")
    return h5py.File(path, "r")
