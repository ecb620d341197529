"""The frozen teacher's outputs, computed once per sample, and their pairing with GAF inputs.

The teacher is evaluated deterministically (segment centres, centre crop, fixed relations),
so its logits and its semantic feature H^T are a pure function of the sample. The teacher
stage stores them in ``teacher_outputs.h5``; distillation looks them up by sample id and
never decodes video or runs BN-Inception. This also fixes the authors' pairing defect
(independently shuffled teacher and student loaders): sample i of a student batch is
paired with the teacher output of the same recording, whatever the batch order.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import torch

from vskd.h5store import atomic_path, get_meta, open_store, read_index, set_meta, write_index


def write(path: str | Path, columns: dict[str, np.ndarray], logits: np.ndarray,
          features: np.ndarray, attention: dict[str, np.ndarray] | None = None, **meta) -> None:
    """``attention``: block name -> (N, h, w) segment-averaged attention maps (``vskd.attention``),
    stored as ``attention/<block>``, their order (shallow to deep) in the meta ``attention_blocks``."""
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        write_index(h5, columns)
        h5.create_dataset("logits", data=logits.astype(np.float32))
        h5.create_dataset("features", data=features.astype(np.float32))
        if attention:
            for name, maps in attention.items():
                if len(maps) != len(logits):
                    raise ValueError(f"attention/{name}: {len(maps)} maps for {len(logits)} samples")
                h5.create_dataset(f"attention/{name}", data=np.asarray(maps, dtype=np.float32))
            meta = {**meta, "attention_blocks": list(attention)}
        set_meta(h5, **meta)


class TeacherOutputs:
    """All teacher logits and features in memory (N x (C + D) floats: small)."""

    def __init__(self, path: str | Path, stage: str = "teacher"):
        self.path = Path(path)
        with open_store(self.path, stage) as h5:
            index = read_index(h5)
            self.logits = h5["logits"][()]
            self.features = h5["features"][()]
            self.class_names = get_meta(h5, "class_names")
            self.selection = get_meta(h5, "selection")
            # id -> reason for the samples the frames or teacher stage left out
            # (runtime.on_bad_sample: skip); absent from stores written before that setting.
            self.skipped = get_meta(h5, "skipped") if "skipped" in h5.attrs else {}
            # Attention maps for AT, shallow to deep; absent from stores written before them.
            self.attention_blocks = get_meta(h5, "attention_blocks") if "attention_blocks" in h5.attrs else []
            self.attention = [h5[f"attention/{name}"][()] for name in self.attention_blocks]
        self.ids, self.labels = index["ids"], index["labels"]
        self.row_of = {sample_id: i for i, sample_id in enumerate(self.ids)}

    def rows_for(self, ids, labels=None) -> np.ndarray:
        missing = [i for i in ids if i not in self.row_of]
        if missing:
            raise KeyError(
                f"{self.path}: no teacher output for {len(missing)} sample(s) "
                f"({', '.join(map(str, missing[:5]))}{' ...' if len(missing) > 5 else ''}). "
                "It was built from another sample index: rerun the teacher stage."
            )
        rows = np.array([self.row_of[i] for i in ids], dtype=np.int64)
        if labels is not None and not np.array_equal(self.labels[rows], np.asarray(labels)):
            raise ValueError(f"{self.path}: labels disagree with the GAF store for the same ids; "
                             "rebuild both with `dvc repro`")
        return rows


class PairedDataset(torch.utils.data.Dataset):
    """(gaf, label, teacher_logits, teacher_feature, row), matched by sample id; with
    ``attention=True`` (attention transfer), (gaf, label, teacher_logits, teacher_feature,
    map_1, ..., map_k, row) with the teacher's k attention maps, shallow to deep."""

    def __init__(self, gaf_dataset, gaf_ids: np.ndarray, teacher: TeacherOutputs, attention: bool = False):
        self.gaf = gaf_dataset
        rows = gaf_dataset.rows
        self.teacher_rows = teacher.rows_for(gaf_ids[rows], gaf_dataset.labels[rows])
        self.logits = torch.from_numpy(teacher.logits)
        self.features = torch.from_numpy(teacher.features)
        self.attention = []
        if attention:
            if not teacher.attention:
                raise ValueError(f"{teacher.path}: has no attention maps (written before attention "
                                 "transfer existed): rerun the teacher stage (dvc repro teacher)")
            self.attention = [torch.from_numpy(m) for m in teacher.attention]

    def set_epoch(self, epoch: int) -> None:
        """Passed on, so an augmented GAF dataset draws a fresh variant every epoch."""
        if hasattr(self.gaf, "set_epoch"):
            self.gaf.set_epoch(epoch)

    def __len__(self):
        return len(self.gaf)

    def __getitem__(self, i):
        image, label, row = self.gaf[i]
        t = int(self.teacher_rows[i])
        return (image, label, self.logits[t], self.features[t], *(m[t] for m in self.attention), row)
