"""Dataset adapters. Each turns a dataset's native files into the common sample index.

An adapter knows four things about its dataset: how to put the raw recordings on disk
(``prepare_raw``, the download stage), how to list them (``scan``), the class names, and how
to read one accelerometer recording. Everything downstream is dataset-agnostic.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from vskd.datasets import utd_mhad
from vskd.index import Sample


@dataclass(frozen=True)
class Adapter:
    name: str
    prepare_raw: Callable[[dict, Path], dict]
    scan: Callable[[Path, dict], list[Sample]]
    class_names: Callable[[dict], list[str]]
    read_accelerometer: Callable[[Path], np.ndarray]


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


def _synthetic_classes(block: dict) -> list[str]:
    from vskd.datasets import synthetic

    return list(synthetic.ACTIONS[: block["download"]["actions"]])


ADAPTERS: dict[str, Adapter] = {
    "synthetic": Adapter(
        name="synthetic",
        prepare_raw=_synthetic_prepare,
        scan=lambda raw, block: utd_mhad.scan(raw, num_actions=block["download"]["actions"]),
        class_names=_synthetic_classes,
        read_accelerometer=utd_mhad.read_accelerometer,
    ),
}


def get_adapter(name: str) -> Adapter:
    if name not in ADAPTERS:
        raise ValueError(f"unknown dataset '{name}'. Known datasets: {', '.join(sorted(ADAPTERS))}.")
    return ADAPTERS[name]
