"""Where a training stage's models live on disk, and how they are written and read back.

A checkpoint is one ``torch.save`` of plain data (tensors, numbers, strings: readable with
``weights_only=True``), written whole or not at all (:func:`vskd.h5store.atomic_path`).
"""

from __future__ import annotations

from pathlib import Path

import torch

from vskd.h5store import atomic_path


def save_checkpoint(path: str | Path, **payload) -> None:
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def seed_checkpoints(model_path: str | Path, seeds: list[int]) -> dict[int, Path]:
    """Where the model of each training seed (params.yaml ``seeds``) lives.

    The first seed's is ``model_path`` itself (``models/<ds>/student.pt``, read by export and
    predict); every other seed's is ``models/<ds>/<stem>_seeds/<stem>_s<seed>.pt``, a folder
    that is one DVC output of the stage (empty with one seed)."""
    model_path = Path(model_path)
    folder = seeds_folder(model_path)
    return {seed: model_path if i == 0 else folder / f"{model_path.stem}_s{seed}.pt"
            for i, seed in enumerate(seeds)}


def seeds_folder(model_path: str | Path) -> Path:
    model_path = Path(model_path)
    return model_path.with_name(f"{model_path.stem}_seeds")


def load_checkpoint(path: str | Path, stage: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found. Run `dvc repro {stage}` to build it.")
    return torch.load(path, map_location="cpu", weights_only=True)

