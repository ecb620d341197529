"""Leave-one-fold-out choice between development runs (vskd/selection.py), on hand-made files."""

import json

import pytest

from vskd.__main__ import main
from vskd.selection import choose, load_runs, nested_selection

Y = [0, 1, 2, 3]


def _preds(right: int) -> list[int]:
    """The first ``right`` of the four trials right, the rest wrong."""
    return [y if i < right else (y + 1) % 4 for i, y in enumerate(Y)]


def _run(path, vskd_right: dict, student_right: int = 2, seeds=("0",)):
    folds = {f: {"test_ids": [f"a{i}_{f}" for i in range(4)], "y_true": Y,
                 "vskd": {s: _preds(r) for s in seeds}, "student": {s: _preds(student_right) for s in seeds}}
             for f, r in vskd_right.items()}
    path.write_text(json.dumps({"predictions": folds}))
    return path


@pytest.fixture
def two(tmp_path):
    # default: 4/4, 2/4, 2/4; other: 1/4, 3/4, 3/4; the baseline student 2/4 everywhere
    return [_run(tmp_path / "default.json", {"s1": 4, "s3": 2, "s5": 2}),
            _run(tmp_path / "other.json", {"s1": 1, "s3": 3, "s5": 3})]


def test_nested_choice_by_hand(two):
    result = nested_selection(load_runs(two, "vskd"))
    nested = result["nested"]
    # s1 held out: on s3 + s5 default 4/8, other 6/8 -> other, which scores 1/4 on s1;
    # s3 held out: on s1 + s5 default 6/8, other 4/8 -> default (2/4); s5 likewise (2/4)
    assert nested["chosen"] == {"s1": "other", "s3": "default", "s5": "default"}
    assert nested["per_fold"] == {"s1": 0.25, "s3": 0.5, "s5": 0.5}
    assert nested["pooled_accuracy"] == pytest.approx(5 / 12)
    assert nested["minus_first"]["accuracy_diff"] == pytest.approx(5 / 12 - 8 / 12)
    assert nested["minus_baseline"]["accuracy_diff"] == pytest.approx(5 / 12 - 6 / 12)
    assert result["chosen_on_all_folds"] == "default"          # 8/12 against 7/12
    assert result["table"]["other"] == {"s1": 0.25, "s3": 0.75, "s5": 0.75}


def test_a_tie_goes_to_the_first_listed(tmp_path):
    a = _run(tmp_path / "a.json", {"s1": 2, "s3": 2})
    b = _run(tmp_path / "b.json", {"s1": 3, "s3": 1})
    runs = load_runs([a, b], "vskd")
    assert choose(runs, "vskd", ["s1", "s3"]) == "a"
    assert choose(dict(reversed(list(runs.items()))), "vskd", ["s1", "s3"]) == "b"


def test_seeds_pool_per_trial(tmp_path):
    # two seeds: 4/4 and 0/4 on s1 average to 0.5
    a = _run(tmp_path / "a.json", {"s1": 4, "s3": 4}, seeds=("0", "1"))
    data = json.loads(a.read_text())
    data["predictions"]["s1"]["vskd"]["1"] = _preds(0)
    a.write_text(json.dumps(data))
    b = _run(tmp_path / "b.json", {"s1": 3, "s3": 3}, seeds=("0", "1"))
    assert nested_selection(load_runs([a, b], "vskd"))["table"]["a"] == {"s1": 0.5, "s3": 1.0}


def test_misaligned_runs_are_refused(tmp_path, two):
    other = json.loads(two[1].read_text())
    other["predictions"]["s3"]["test_ids"][0] = "a9_s3"
    two[1].write_text(json.dumps(other))
    with pytest.raises(ValueError, match="other: fold s3 holds other test trials than default"):
        load_runs(two, "vskd")
    with pytest.raises(ValueError, match="no 'minirocket' predictions"):
        load_runs([two[0], _run(tmp_path / "c.json", {"s1": 4, "s3": 2, "s5": 2})], "minirocket")
    with pytest.raises(ValueError, match="at least two runs"):
        load_runs(two[:1], "vskd")
    seeds = _run(tmp_path / "d.json", {"s1": 4, "s3": 2, "s5": 2}, seeds=("0", "1"))
    with pytest.raises(ValueError, match="run every candidate with the same --seeds"):
        load_runs([two[0], seeds], "vskd")


def test_command_prints_and_writes(two, tmp_path, capsys):
    out = tmp_path / "choice.json"
    assert main(["choose", *map(str, two), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "chosen on the other folds" in text and "(chosen: s1 other, s3 default, s5 default)" in text
    assert "nested choice minus the baseline student: -8.3 points" in text
    assert json.loads(out.read_text())["chosen_on_all_folds"] == "default"
    assert main(["choose", str(two[0]), str(tmp_path / "missing.json")]) == 1
    assert "missing.json: not found" in capsys.readouterr().err


def test_seeds_option_keeps_those_seeds(tmp_path, capsys):
    three = _run(tmp_path / "three.json", {"s1": 4, "s3": 2}, seeds=("0", "1", "2"))
    one = _run(tmp_path / "one.json", {"s1": 1, "s3": 3})
    runs = load_runs([three, one], "vskd", seeds=[0])
    assert list(runs["three"]["s1"]["vskd"]) == ["0"] and list(runs["three"]["s1"]["student"]) == ["0"]
    with pytest.raises(ValueError, match="one.json: fold s1 has no vskd seed 1"):
        load_runs([three, one], "vskd", seeds=[1])
    assert main(["choose", str(three), str(one), "--seeds", "0"]) == 0
    assert "chosen on all folds: three" in capsys.readouterr().out
