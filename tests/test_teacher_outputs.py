import h5py
import numpy as np
import pytest
import torch

from vskd import teacher_outputs
from vskd.gaf import GAFDataset
from vskd.h5store import write_index
from vskd.teacher_outputs import PairedDataset, TeacherOutputs
from vskd.training import make_loader

N = 12


def columns(order):
    ids = np.array([f"a{i % 3 + 1}_s{i}_t1" for i in order], dtype=object)
    return {"ids": ids, "labels": np.array([i % 3 for i in order]), "subjects": np.array(order),
            "trials": np.ones(len(order), dtype=np.int64)}


@pytest.fixture
def stores(tmp_path):
    """A GAF store whose image of sample i is filled with i, and teacher outputs written in
    another order whose feature of sample i is filled with i too."""
    gaf = tmp_path / "gaf.h5"
    with h5py.File(gaf, "w") as h5:
        write_index(h5, columns(list(range(N))))
        h5["gaf"] = np.arange(N, dtype=np.float32)[:, None, None, None] * np.ones((1, 3, 4, 4), np.float32)
    order = list(np.random.default_rng(0).permutation(N))
    logits = np.zeros((N, 3), np.float32)
    feats = np.array(order, dtype=np.float32)[:, None] * np.ones((1, 5), np.float32)
    out = tmp_path / "teacher_outputs.h5"
    teacher_outputs.write(out, columns(order), logits, feats, class_names=["a", "b", "c"],
                          selection="last", epoch=1)
    return gaf, out


def test_pairing_survives_shuffling(stores):
    gaf, out = stores
    rows = np.arange(N)
    base = GAFDataset(gaf, rows)
    with h5py.File(gaf) as h5:
        ids = np.array([v.decode() for v in h5["index/ids"][()]], dtype=object)
    paired = PairedDataset(base, ids, TeacherOutputs(out))
    for seed in (0, 1):
        for image, label, t_logits, t_feat, row in make_loader(paired, 5, shuffle=True, seed=seed):
            # the teacher feature and the GAF image both carry the sample number
            torch.testing.assert_close(t_feat[:, 0], image[:, 0, 0, 0])
            torch.testing.assert_close(label, row % 3)


def test_missing_teacher_output_is_an_error(stores, tmp_path):
    gaf, out = stores
    teacher = TeacherOutputs(out)
    with pytest.raises(KeyError, match="no teacher output for 1 sample.*a1_s99_t1.*rerun the teacher stage"):
        teacher.rows_for(np.array(["a1_s99_t1"], dtype=object))


def test_disagreeing_labels_are_an_error(stores):
    _, out = stores
    teacher = TeacherOutputs(out)
    with pytest.raises(ValueError, match="labels disagree"):
        teacher.rows_for(teacher.ids[:2], labels=np.array([2, 2]))
