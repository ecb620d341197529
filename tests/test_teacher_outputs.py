import h5py
import numpy as np
import pytest
import torch

from vskd import teacher_outputs
from vskd.gaf import GAFDataset
from vskd.h5store import write_index
from vskd.loaders import make_loader
from vskd.teacher_outputs import PairedDataset, TeacherOutputs

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
    # attention maps of sample i filled with i (3 x 3) and 10 i (2 x 2)
    attention = {"inception_3b": np.array(order, np.float32)[:, None, None] * np.ones((1, 3, 3), np.float32),
                 "inception_5b": 10 * np.array(order, np.float32)[:, None, None] * np.ones((1, 2, 2), np.float32)}
    teacher_outputs.write(out, columns(order), logits, feats, attention=attention, class_names=["a", "b", "c"],
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


def gaf_ids(gaf):
    with h5py.File(gaf) as h5:
        return np.array([v.decode() for v in h5["index/ids"][()]], dtype=object)


def test_attention_maps_are_stored_beside_the_unchanged_datasets(stores):
    _, out = stores
    with h5py.File(out) as h5:
        assert {"logits", "features", "index", "attention"} <= set(h5)
        assert h5["logits"].shape == (N, 3) and h5["features"].shape == (N, 5)
        assert set(h5["attention"]) == {"inception_3b", "inception_5b"}
    teacher = TeacherOutputs(out)
    assert teacher.attention_blocks == ["inception_3b", "inception_5b"]  # shallow to deep, as written
    assert [m.shape for m in teacher.attention] == [(N, 3, 3), (N, 2, 2)]
    # the map of a sample travels with its logits and features (row r holds sample order[r])
    np.testing.assert_array_equal(teacher.attention[1][:, 0, 0], 10 * teacher.features[:, 0])


def test_attention_maps_are_paired_by_sample_id(stores):
    gaf, out = stores
    paired = PairedDataset(GAFDataset(gaf, np.arange(N)), gaf_ids(gaf), TeacherOutputs(out), attention=True)
    for seed in (0, 1):
        for image, label, t_logits, t_feat, map_3b, map_5b, row in make_loader(paired, 5, shuffle=True, seed=seed):
            assert map_3b.shape[1:] == (3, 3) and map_5b.shape[1:] == (2, 2)
            torch.testing.assert_close(map_3b[:, 1, 2], image[:, 0, 0, 0])
            torch.testing.assert_close(map_5b[:, 0, 1], 10 * image[:, 0, 0, 0])
    assert len(PairedDataset(GAFDataset(gaf, np.arange(N)), gaf_ids(gaf), TeacherOutputs(out))[0]) == 5


def test_store_without_attention_maps_asks_for_the_teacher_stage(tmp_path, stores):
    gaf, _ = stores
    old = tmp_path / "old.h5"
    teacher_outputs.write(old, columns(list(range(N))), np.zeros((N, 3), np.float32), np.zeros((N, 5), np.float32),
                          class_names=["a", "b", "c"], selection="last", epoch=1)
    teacher = TeacherOutputs(old)
    assert teacher.attention == [] and teacher.attention_blocks == []
    PairedDataset(GAFDataset(gaf, np.arange(N)), gaf_ids(gaf), teacher)  # fine without AT
    with pytest.raises(ValueError, match="has no attention maps.*rerun the teacher stage"):
        PairedDataset(GAFDataset(gaf, np.arange(N)), gaf_ids(gaf), teacher, attention=True)


def test_teacher_attention_maps_are_segment_means_of_per_frame_maps():
    """What the teacher stage stores: TRNTeacher.features_and_attention gives features() bit for
    bit, and per block the channel mean of the squared activation, averaged over the segments."""
    from vskd.attention import TEACHER_BLOCKS
    from vskd.models.bninception import BNInception
    from vskd.models.trn import TRNTeacher

    torch.manual_seed(0)
    teacher = TRNTeacher(num_classes=3, num_segments=3, img_feature_dim=8).eval()
    frames = torch.rand(2, 3, 3, 32, 32) * 255
    with torch.no_grad():
        per_frame, maps = teacher.features_and_attention(frames)
        assert torch.equal(per_frame, teacher.features(frames))
        assert list(maps) == list(TEACHER_BLOCKS)
        # sample 1, frame by frame: (1, C, h, w) activations of every block
        acts = [teacher.backbone.feature_maps(BNInception.preprocess(frames[1, f:f + 1]), TEACHER_BLOCKS)[1]
                for f in range(3)]
        for name, size in zip(TEACHER_BLOCKS, [(4, 4), (2, 2), (1, 1)]):  # strides 8, 16, 32 of 32 px
            assert maps[name].shape == (2, *size)
            frame_maps = [(a[name][0] ** 2).sum(0) / a[name].shape[1] for a in acts]
            torch.testing.assert_close(maps[name][1], sum(frame_maps) / 3, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="unknown BN-Inception block"):
        teacher.backbone.feature_maps(torch.zeros(1, 3, 32, 32), ["inception_9z"])


def test_pairing_passes_the_epoch_to_an_augmented_dataset(stores):
    """set_loader_epoch reaches the GAF dataset through the pairing: without it a distilled
    student would see one fixed augmentation of every trial for all its epochs."""
    from vskd.loaders import set_loader_epoch

    gaf, out = stores

    class Recorder(GAFDataset):
        epoch = None

        def set_epoch(self, epoch):
            self.epoch = epoch

    inner = Recorder(gaf, np.arange(N))
    paired = PairedDataset(inner, columns(list(range(N)))["ids"], TeacherOutputs(out))
    set_loader_epoch(make_loader(paired, 4, shuffle=True, seed=0), seed=0, epoch=7)
    assert inner.epoch == 7
