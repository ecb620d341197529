"""What each product of the development protocol was built from, so a rerun rebuilds exactly
what a changed setting affects (as DVC does for the stages) and reuses the rest.

Every product gets a ``<product>.key.json`` beside it holding the settings it depends on:

* ``raw/``: the dataset block's source, download, video and sensor settings;
* ``frames.h5``: raw's, plus ``frames``;
* ``gaf.h5``: raw's, plus ``gaf``;
* a fold's teacher (``teacher.pt`` + ``teacher_outputs.h5``): frames', plus ``teacher``, the
  segments, ``seed``, the fold's split and ``runtime``;
* a fold's baseline students (``student.pt`` and the other seeds'): gaf's, plus ``student``,
  ``seeds``, the teacher's ``feature_dim`` (fc0's width), ``seed``, the split and ``runtime``.

A student or distillation setting therefore never retrains a teacher, and a distillation
setting (``alpha``, ``beta``, ``gamma``, ``distill.*``) retrains the distilled students alone.

A product without a key file (built before keys existed, or interrupted) counts as stale.
"""

from __future__ import annotations

import json
from pathlib import Path

from vskd.h5store import atomic_path

RAW_KEYS = ("source", "download", "video", "sensor")


def product_keys(params: dict, block: dict, split: dict | None = None) -> dict:
    """The settings each product depends on (module docstring); a fold's (``teacher``,
    ``student``) only with its ``split``."""
    raw = {k: block.get(k) for k in RAW_KEYS}
    keys = {"raw": raw, "frames": {"raw": raw, "frames": params["frames"]},
            "gaf": {"raw": raw, "gaf": params["gaf"]}}
    if split is not None:
        fold = {"seed": params["seed"], "split": split, "runtime": params.get("runtime", {})}
        keys["teacher"] = {"frames": keys["frames"], "teacher": params["teacher"],
                           "segments": block["segments"], **fold}
        keys["student"] = {"gaf": keys["gaf"], "student": params["student"], "seeds": params["seeds"],
                           "feature_dim": params["teacher"]["feature_dim"], **fold}
    return keys


def key_path(product: Path) -> Path:
    return product.with_name(product.name + ".key.json")


def _canonical(key: dict) -> str:
    return json.dumps(key, sort_keys=True, default=str)


def is_current(product: Path, key: dict, *also: Path) -> bool:
    """``product`` (and every path in ``also``) exists and was built from ``key``."""
    record = key_path(product)
    if not product.exists() or not record.is_file() or not all(p.exists() for p in also):
        return False
    saved = json.loads(record.read_text())
    return _canonical(saved.get("key")) == _canonical(key)


def record_key(product: Path, key: dict, **extra) -> None:
    """Say that ``product`` was built from ``key`` (after it is complete); ``extra`` is kept
    beside the key (the teacher's training summary)."""
    with atomic_path(key_path(product)) as tmp:
        tmp.write_text(json.dumps({"key": json.loads(_canonical(key)), **extra}, indent=1, sort_keys=True,
                                  default=_number) + "\n")


def _number(value):
    """numpy scalars in a training summary, as JSON numbers."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON: {type(value)}")


def saved_extra(product: Path, name: str):
    return json.loads(key_path(product).read_text()).get(name)
