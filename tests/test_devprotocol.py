"""The development protocol's bookkeeping: folds, and what a changed setting rebuilds."""

import copy
import json

import numpy as np
import pytest

import vskd.train_teacher
from vskd import devprotocol
from vskd.params import dataset_block, load_params

from tests.conftest import REPO


@pytest.fixture
def params():
    p = load_params(REPO / "params.yaml")
    p["datasets"] = ["utd_mhad"]
    return p


def keys_after(params, change, split=None):
    changed = copy.deepcopy(params)
    change(changed)
    block = dataset_block(changed, "utd_mhad")
    return devprotocol.product_keys(changed, block, split or devprotocol.fold_split(block["split"], [1, 3, 5, 7], 3))


def test_fold_split_holds_out_one_subject():
    split = devprotocol.fold_split({"name": "subject_specific", "val_fraction": 0.0}, [1, 3, 5, 7], 5)
    assert split == {"name": "cross_subject", "val_fraction": 0.0, "train_subjects": [1, 3, 7],
                     "test_subjects": [5]}


def test_student_and_distill_settings_leave_every_teacher_key_alone(params):
    same = keys_after(params, lambda p: None)

    def tune(p):
        p["student"]["lr"] = 0.01
        p["gaf"]["image_size"] = 64
        p["beta"] = 0.5
        p["seeds"] = [0, 1, 2]
        p["minirocket"]["n_kernels"] = 84

    tuned = keys_after(params, tune)
    assert tuned["teacher"] == same["teacher"] and tuned["frames"] == same["frames"]
    assert tuned["gaf"] != same["gaf"]  # image_size
    assert tuned["raw"] == same["raw"]


@pytest.mark.parametrize("change", [
    lambda p: p["teacher"].__setitem__("epochs", 3),
    lambda p: p["frames"].__setitem__("short_side", 32),
    lambda p: p["utd_mhad"]["download"]["skeleton_video"].__setitem__("yaw_deg", 0.0),
    lambda p: p["utd_mhad"].__setitem__("segments", 4),
    lambda p: p.__setitem__("seed", 1),
])
def test_a_teacher_input_changes_the_teacher_key(params, change):
    assert keys_after(params, change)["teacher"] != keys_after(params, lambda p: None)["teacher"]


def test_how_often_the_resume_file_is_written_retrains_nothing(params):
    same = keys_after(params, lambda p: None)
    often = keys_after(params, lambda p: p["runtime"].__setitem__("resume_every_s", 0))
    assert often["teacher"] == same["teacher"] and often["student"] == same["student"]
    amp = keys_after(params, lambda p: p["runtime"].__setitem__("amp", True))
    assert amp["teacher"] != same["teacher"] and amp["student"] != same["student"]


def test_loader_processes_retrain_nothing(params):
    same = keys_after(params, lambda p: None)
    for section in ("teacher", "student"):
        for workers in (0, 1, 4):
            changed = keys_after(params, lambda p: p[section].__setitem__("num_workers", workers))
            assert changed["teacher"] == same["teacher"] and changed["student"] == same["student"]
    assert same["teacher"]["teacher"]["num_workers"] == 1  # as the existing work folders were built


def test_view_jitter_off_keeps_the_teachers_built_before_it_existed(params):
    same = keys_after(params, lambda p: None)
    absent = keys_after(params, lambda p: p["teacher"].pop("view_jitter"))
    assert absent["teacher"] == same["teacher"]
    on = keys_after(params, lambda p: p["teacher"].__setitem__("view_jitter", {"yaw_deg": 20, "pitch_deg": 0}))
    assert on["teacher"] != same["teacher"] and on["student"] == same["student"]


def test_mixup_off_keeps_the_students_built_before_it_existed(params):
    same = keys_after(params, lambda p: None)
    assert keys_after(params, lambda p: p["student"].pop("mixup"))["student"] == same["student"]
    on = keys_after(params, lambda p: p["student"].__setitem__("mixup", 0.2))
    assert on["student"] != same["student"] and on["teacher"] == same["teacher"]
    assert keys_after(params, lambda p: p["teacher"].pop("mixup"))["teacher"] == same["teacher"]
    on = keys_after(params, lambda p: p["teacher"].__setitem__("mixup", 0.2))
    assert on["teacher"] != same["teacher"] and on["student"] == same["student"]


def test_gain_off_keeps_the_students_built_before_it_existed(params):
    same = keys_after(params, lambda p: None)
    assert keys_after(params, lambda p: p["student"]["augment"].pop("gain"))["student"] == same["student"]
    on = keys_after(params, lambda p: p["student"]["augment"].__setitem__("gain", 0.2))
    assert on["student"] != same["student"] and on["teacher"] == same["teacher"]
    assert on["student"]["student"]["augment"]["gain"] == 0.2


def test_redrawing_the_skeleton_keeps_the_gaf_store_and_the_students(params):
    redrawn = keys_after(params, lambda p: p["utd_mhad"]["download"]["skeleton_video"].__setitem__("yaw_deg", [0, 90]))
    same = keys_after(params, lambda p: None)
    assert redrawn["raw"] != same["raw"] and redrawn["frames"] != same["frames"]
    assert redrawn["gaf"] == same["gaf"] and redrawn["student"] == same["student"]
    resourced = keys_after(params, lambda p: p["utd_mhad"].__setitem__("source", "elsewhere"))
    assert resourced["gaf"] != same["gaf"]  # other recordings: a new store


def test_drawing_settings_at_their_earlier_value_keep_the_folders_drawn_before_them(params):
    drawing = lambda p: p["utd_mhad"]["download"]["skeleton_video"]  # noqa: E731
    same = keys_after(params, lambda p: None)
    absent = keys_after(params, lambda p: [drawing(p).pop(k) for k in ("hip_at", "lead_s")])
    assert absent["raw"] == same["raw"] and absent["teacher"] == same["teacher"]
    for key, value in (("hip_at", [0.43, 0.42]), ("lead_s", 3.0)):
        on = keys_after(params, lambda p: drawing(p).__setitem__(key, value))
        assert on["raw"] != same["raw"] and on["teacher"] != same["teacher"] and on["gaf"] == same["gaf"]
    assert keys_after(params, lambda p: drawing(p).__setitem__("lead_s", 0))["raw"] == same["raw"]


def test_each_fold_has_its_own_teacher_key(params):
    block = dataset_block(params, "utd_mhad")
    one, other = (devprotocol.product_keys(params, block, devprotocol.fold_split(block["split"], [1, 3, 5, 7], s))
                  for s in (1, 3))
    assert one["teacher"] != other["teacher"] and one["gaf"] == other["gaf"]


def test_is_current_needs_the_product_its_outputs_and_the_same_key(tmp_path):
    product, other = tmp_path / "teacher.pt", tmp_path / "teacher_outputs.h5"
    key = {"teacher": {"lr": 0.001}, "split": [1, 3]}
    assert not devprotocol.is_current(product, key)  # nothing there
    product.write_bytes(b"x")
    assert not devprotocol.is_current(product, key)  # no record of what built it
    devprotocol.record_key(product, key, summary={"train_accuracy": 0.5})
    assert devprotocol.is_current(product, {"split": [1, 3], "teacher": {"lr": 0.001}})  # key order is irrelevant
    assert not devprotocol.is_current(product, {**key, "teacher": {"lr": 0.002}})
    assert not devprotocol.is_current(product, key, other)  # its outputs are missing
    other.write_bytes(b"y")
    assert devprotocol.is_current(product, key, other)
    assert devprotocol.saved_extra(product, "summary") == {"train_accuracy": 0.5}
    assert json.loads((tmp_path / "teacher.pt.key.json").read_text())["key"]["split"] == [1, 3]


def test_fold_teacher_trains_once_then_only_when_its_settings_change(params, tmp_path, monkeypatch):
    calls = []

    def fake_train(frames, model, outputs, live, *, cfg, **kw):
        calls.append(cfg["lr"])
        model.write_bytes(b"model")
        outputs.write_bytes(b"outputs")
        return {"train_accuracy": 0.9, "lr": cfg["lr"]}

    monkeypatch.setattr(vskd.train_teacher, "train_teacher", fake_train)
    block = dataset_block(params, "utd_mhad")
    split = devprotocol.fold_split(block["split"], [1, 3, 5, 7], 7)
    fold = tmp_path / "fold_s7"
    fold.mkdir()
    first, _ = devprotocol.fold_teacher(params, block, tmp_path, split, fold)
    params["student"]["epochs"] = 1  # a student setting: the teacher is reused
    again, seconds = devprotocol.fold_teacher(params, block, tmp_path, split, fold)
    assert calls == [params["teacher"]["lr"]] and again == first and seconds >= 0
    params["teacher"]["lr"] = 0.01
    devprotocol.fold_teacher(params, block, tmp_path, split, fold)
    assert calls == [0.001, 0.01]


def test_distillation_settings_leave_the_baseline_student_key_alone(params):
    same = keys_after(params, lambda p: None)

    def distill(p):
        p["beta"], p["alpha"] = 0.5, 0.1
        p["distill"]["method"] = "st"

    tuned = keys_after(params, distill)
    assert tuned["student"] == same["student"] and tuned["teacher"] == same["teacher"]
    assert keys_after(params, lambda p: p.__setitem__("seeds", [0, 1]))["student"] != same["student"]
    assert keys_after(params, lambda p: p["student"].__setitem__("epochs", 2))["student"] != same["student"]


def test_complementarity_counts_where_only_one_model_is_right():
    import numpy as np

    y = np.array([0, 1, 2, 3])
    found = {"y_true": y, "seeds": [0, 1],
             "predictions": {"teacher": np.array([0, 1, 0, 0]),  # right on trials 0, 1
                             "student": {0: np.array([0, 0, 2, 0]),  # right on 0, 2
                                         1: np.array([1, 1, 2, 3])}}}  # right on 1, 2, 3
    c = devprotocol.complementarity(found)
    assert c["per_seed"]["teacher_right_student_wrong"] == [0.25, 0.25]  # trial 1; trial 0
    assert c["per_seed"]["student_right_teacher_wrong"] == [0.25, 0.5]  # trial 2; trials 2, 3
    assert c["teacher_right_student_wrong"] == 0.25 and c["student_right_teacher_wrong"] == 0.375


def _students_run(preds: dict, y=(0, 1, 2, 1), ids=("a", "b", "c", "d")) -> dict:
    found = {"s1": {"test_ids": list(ids), "y_true": list(y), "student": preds, "seconds": 1.0}}
    return {"seeds": [int(s) for s in preds], "predictions": found, **devprotocol.students_summary(found)}


def _write_index(path, ids, labels, subjects, **arrays):
    import h5py

    with h5py.File(path, "w") as h5:
        h5["index/ids"] = np.array(ids, dtype=object).astype("S")
        h5["index/labels"], h5["index/subjects"] = np.array(labels), np.array(subjects)
        h5["index/trials"] = np.ones(len(ids), dtype=np.int64)
        for name, value in arrays.items():
            h5[name] = value


def test_teachers_only_reads_the_held_out_predictions_in_the_gaf_order(params, tmp_path, monkeypatch):
    ids, labels, subjects = ["a1_s1_t1", "a2_s7_t1", "a1_s7_t1", "a3_s7_t1"], [0, 1, 0, 2], [1, 7, 7, 7]
    _write_index(tmp_path / "gaf.h5", ids, labels, subjects)

    def fake_train(frames, model, outputs, live, **kw):
        model.write_bytes(b"model")
        logits = np.eye(3)[[0, 1, 2]]          # a1_s1_t1 -> 0, a1_s7_t1 -> 1 (wrong), a2_s7_t1 -> 2 (wrong)
        _write_index(outputs, ["a1_s1_t1", "a1_s7_t1", "a2_s7_t1"], [0, 0, 1], [1, 7, 7], logits=logits)
        return {"train_accuracy": 0.9}

    monkeypatch.setattr(vskd.train_teacher, "train_teacher", fake_train)
    block = dataset_block(params, "utd_mhad")
    split = devprotocol.fold_split(block["split"], [1, 7], 7)
    (tmp_path / "fold_s7").mkdir()
    fold = devprotocol.fold_teacher_only(params, block, tmp_path, split, tmp_path / "fold_s7")
    # a3_s7_t1 has no teacher output: -1, counted wrong
    assert fold["test_ids"] == ["a2_s7_t1", "a1_s7_t1", "a3_s7_t1"] and fold["y_true"] == [1, 0, 2]
    assert fold["teacher"] == {"0": [2, 1, -1]} and fold["train_accuracy"] == 0.9
    run = {"seeds": [0], "predictions": {"s7": fold}, **devprotocol.students_summary({"s7": fold}, "teacher")}
    assert run["folds"]["s7"]["mean"] == 0.0 and devprotocol.format_students(run, "teacher").count("±") == 1
    # against a protocol file, whose teacher per fold is one list: right on the first two trials
    protocol = {"seeds": [0, 1, 2], "predictions": {"s7": {**fold, "teacher": [1, 0, 0]}}}
    paired = devprotocol.compare_teachers(run, protocol, "protocol.json")
    assert paired["bootstrap"]["accuracy_diff"] == pytest.approx(-2 / 3)
    with pytest.raises(ValueError, match="protocol.json: no teacher predictions"):
        devprotocol.compare_teachers(run, _students_run({"0": [0, 1, 2, 1]}), "protocol.json")


def test_students_summary_by_hand():
    run = _students_run({"0": [0, 1, 2, 0], "1": [0, 1, 0, 0]})  # 3/4 and 2/4 right
    fold = run["folds"]["s1"]
    assert fold["per_seed"] == {"0": 0.75, "1": 0.5}
    assert fold["mean"] == pytest.approx(0.625) and fold["std"] == pytest.approx(0.25 / 2 ** 0.5)
    assert run["across_folds"]["mean"] == pytest.approx(0.625) and run["across_folds"]["std"] is None


def test_compare_students_pairs_the_same_trials_and_seeds():
    reference = _students_run({"0": [0, 1, 2, 0], "1": [0, 1, 0, 0]})
    better = _students_run({"0": [0, 1, 2, 1], "1": [0, 1, 2, 1]})  # right on every trial
    paired = devprotocol.compare_students(better, reference)
    assert paired["bootstrap"]["accuracy_diff"] == pytest.approx(1.0 - 0.625)
    # seed 0: only the new run is right on d (b = 0, c = 1); seed 1: on c and d (0, 2)
    assert [(t["b"], t["c"]) for t in paired["mcnemar"].values()] == [(0, 1), (0, 2)]
    with pytest.raises(ValueError, match="other trials"):
        devprotocol.compare_students(_students_run({"0": [0] * 4, "1": [0] * 4}, ids="abce"), reference)
    one_seed = devprotocol.compare_students(_students_run({"0": [0, 1, 2, 1]}), reference)
    assert list(one_seed["mcnemar"]) == ["s0"] and one_seed["bootstrap"]["accuracy_diff"] == pytest.approx(0.25)
    with pytest.raises(ValueError, match="a seed in common"):
        devprotocol.compare_students(_students_run({"2": [0] * 4}), reference)


def test_format_summary_of_one_fold_has_no_spread():
    models = devprotocol.FOLD_MODELS + ("gain",)
    ci = {"bootstrap": {"accuracy_diff": 0.03, "ci_low": 0.0, "ci_high": 0.07}}
    result = {"folds": {"s1": {m: {"accuracy": 0.5} for m in models}},
              "across_folds": {m: {"accuracy": 0.5, "accuracy_std": None} for m in models},
              "pooled": {"paired": {"vskd_vs_student": ci, "vskd_vs_minirocket": ci}, "split": {"test": 107}},
              "seeds": [0, 1, 2]}
    table = devprotocol.format_summary(result)
    assert "| teacher | 50.0 | 50.0 |" in table and "+3.0 points, paired bootstrap 95 % CI [+0.0, +7.0]" in table


def test_fold_predictions_keep_every_model_per_fold_and_compare_as_students_files_do():
    import numpy as np

    found = {"test_ids": np.array(["a", "b", "c", "d"], dtype=object), "y_true": np.array([0, 1, 2, 1]),
             "predictions": {"teacher": np.array([0, 1, 0, 0]), "student": {0: np.array([0, 1, 2, 0])},
                             "vskd": {0: np.array([0, 1, 2, 1])}, "minirocket": {0: np.array([1, 1, 2, 1])}}}
    run = {"seeds": [0], "predictions": devprotocol.fold_predictions({1: {"found": found}})}
    fold = run["predictions"]["s1"]
    assert fold == {"test_ids": ["a", "b", "c", "d"], "y_true": [0, 1, 2, 1], "teacher": [0, 1, 0, 0],
                    "student": {"0": [0, 1, 2, 0]}, "vskd": {"0": [0, 1, 2, 1]}, "minirocket": {"0": [1, 1, 2, 1]}}
    # against a students-only file whose student is right on a, b only
    reference = _students_run({"0": [0, 1, 0, 0]})
    assert devprotocol.compare_students(run, reference)["bootstrap"]["accuracy_diff"] == pytest.approx(0.25)
    # the teacher of one run against another's: 2/4 against 4/4 right
    other = {"seeds": [0], "predictions": {"s1": {**fold, "teacher": [0, 1, 2, 1]}}}
    teacher = devprotocol.compare_runs(other, run)["teacher"]
    assert teacher["bootstrap"]["accuracy_diff"] == pytest.approx(0.5)
    assert [(t["b"], t["c"]) for t in teacher["mcnemar"].values()] == [(0, 2)]


def test_compare_runs_needs_the_reference_predictions():
    with pytest.raises(ValueError, match="no per-trial predictions"):
        devprotocol.compare_runs({"predictions": {}}, {"folds": {}})


def test_an_int_override_and_the_same_float_in_params_give_one_key(tmp_path):
    product = tmp_path / "teacher.pt"
    product.write_bytes(b"x")
    devprotocol.record_key(product, {"teacher": {"affine": {"rotate_deg": 10, "stretch": 0.15}}})
    assert devprotocol.is_current(product, {"teacher": {"affine": {"rotate_deg": 10.0, "stretch": 0.15}}})
    assert not devprotocol.is_current(product, {"teacher": {"affine": {"rotate_deg": 10.5, "stretch": 0.15}}})


def _one_then_two_seeds(params, tmp_path, held_out, fold_models):
    """``fold_models`` (fold_baseline or fold_distilled) with seeds [0], then [0, 1]."""
    block = dataset_block(params, "utd_mhad")
    split = devprotocol.fold_split(block["split"], [1, 3, 5, 7], held_out)
    fold = tmp_path / f"fold_s{held_out}"
    params["seeds"] = [0]
    first, _ = fold_models(params, block, tmp_path, split, fold)
    params["seeds"] = [0, 1]
    again, _ = fold_models(params, block, tmp_path, split, fold)
    return block, split, fold, first, again


def test_baseline_students_are_kept_per_seed_so_a_new_seed_trains_alone(params, tmp_path, monkeypatch):
    """seeds [0] then [0, 1]: seed 0 is reused and seed 1 trained alone, into the first
    seed's path and the seeds folder; a student setting retrains both."""
    import vskd.train_student

    calls = []

    def fake_train(gaf, model, live, *, seed, cfg, **kw):
        calls.append((seed, cfg["epochs"]))
        model.write_bytes(b"student")
        return {"epoch": cfg["epochs"], "seed": seed}

    monkeypatch.setattr(vskd.train_student, "train_student", fake_train)
    block, split, fold, first, again = _one_then_two_seeds(params, tmp_path, 5, devprotocol.fold_baseline)
    assert calls == [(0, params["student"]["epochs"]), (1, params["student"]["epochs"])]
    assert again == first == {"epoch": params["student"]["epochs"], "seed": 0}
    assert (fold / "student.pt").is_file() and (fold / "student_seeds" / "student_s1.pt").is_file()
    params["student"]["epochs"] = 3
    devprotocol.fold_baseline(params, block, tmp_path, split, fold)
    assert calls[2:] == [(0, 3), (1, 3)]


def test_distilled_students_are_kept_per_seed_and_retrain_on_a_distillation_setting(params, tmp_path, monkeypatch):
    """seeds [0] then [0, 1]: seed 0's distilled student is reused, seed 1 trained alone; a
    distillation weight retrains both, and so would another teacher."""
    import vskd.train_student

    calls = []

    def fake_train(gaf, model, live, *, seed, loss, teacher_path, **kw):
        calls.append((seed, params["beta"]))
        assert teacher_path == fold / "teacher_outputs.h5" and loss is not None
        model.write_bytes(b"vskd")
        return {"final_train_ce": 0.1, "seed": seed}

    monkeypatch.setattr(vskd.train_student, "train_student", fake_train)
    fold = tmp_path / "fold_s3"
    block, split, fold, first, again = _one_then_two_seeds(params, tmp_path, 3, devprotocol.fold_distilled)
    assert calls == [(0, params["beta"]), (1, params["beta"])]
    assert again == first == {"final_train_ce": 0.1, "seed": 0}
    assert (fold / "vskd.pt").is_file() and (fold / "vskd_seeds" / "vskd_s1.pt").is_file()
    params["beta"] = 0.5
    devprotocol.fold_distilled(params, block, tmp_path, split, fold)
    assert calls[2:] == [(0, 0.5), (1, 0.5)]
    params["teacher"]["lr"] = 0.01
    devprotocol.fold_distilled(params, block, tmp_path, split, fold)
    assert len(calls) == 6
