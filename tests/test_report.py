"""`python -m vskd report`: Tables 1-4 from real `dvc exp show --json` output.

tests/data/exp_show_tiny.json is the output of tests/data/make_exp_show.py: the tiny
configuration with seeds [0, 1], `dvc repro`, three Table 4 experiments run through
`dvc exp run --queue` + `dvc queue start`, and three more queued but never run. Expected
values below are read from that file's metrics, never typed in.
"""

from __future__ import annotations

import copy
import json

import pytest

from tests.conftest import REPO
from vskd.__main__ import main as cli
from vskd.report import NA, Run, method_key, parse_exp_show, render

SAMPLE = REPO / "tests" / "data" / "exp_show_tiny.json"


@pytest.fixture
def records():
    return json.loads(SAMPLE.read_text())


def _run(records, name) -> Run:
    return next(r for r in parse_exp_show(records) if r.name == name)


def _section(text: str, title: str) -> str:
    start = text.index(title)
    end = text.find("\n## ", start + 1)
    return text[start:end if end > 0 else None]


def _row(section: str, label: str) -> list[str]:
    line = next(line for line in section.splitlines() if line.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")]


def pct(x) -> str:
    return f"{100 * x:.2f}"


def test_finished_runs_are_read_and_queued_ones_left_out(records):
    runs = parse_exp_show(records)
    assert sorted(r.name for r in runs) == ["master", "t4-no-d", "t4-no-s", "t4-st", "workspace"]
    queued = [e["name"] for rec in records for g in rec.get("experiments") or [] for e in g["revs"]
              if g["executor"] and g["executor"]["state"] == "queued"]
    assert len(queued) == 3 and not set(queued) & {r.name for r in runs}
    st = _run(records, "t4-st")
    assert st.param("distill.method") == "st" and st.seeds == [0, 1]
    assert "metrics/synthetic.json" in st.metrics


def test_table4_rows_come_from_the_matching_experiments(records):
    text = render(parse_exp_show(records))
    t4 = _section(text, "## Table 4")
    for label, name in (("ST", "t4-st"), ("DASK-ResNet18", "workspace"), ("ASK (W/O D)-ResNet18", "t4-no-d"),
                        ("DAK (W/O S)-ResNet18", "t4-no-s")):
        m = _run(records, name).metrics["metrics/synthetic.json"]
        row = _row(t4, label)
        assert row[2] == f"{pct(m['vskd']['accuracy'])} ± {pct(m['vskd']['accuracy_std'])}", label
        assert row[4] == f"{pct(m['vskd']['macro_f1'])} ± {pct(m['vskd']['macro_f1_std'])}", label
        assert row[-1] == f"`{name}`"
        ci = m["paired"]["vskd_vs_student"]["bootstrap"]
        assert f"[{100 * ci['ci_low']:+.2f}, {100 * ci['ci_high']:+.2f}]" in row[6]
    # the paper's numbers beside ours
    assert _row(t4, "DASK-ResNet18")[3] == "96.97" and _row(t4, "ST")[5] == "96.15"
    for label in ("AT", "SP", "DASK-VGG16", "DSK (W/O A)-ResNet18", "SK (W/O D and A)-ResNet18"):
        assert _row(t4, label)[2] == NA and _row(t4, label)[-1] == NA      # not run (or only queued)
    m = _run(records, "workspace").metrics["metrics/synthetic.json"]
    assert _row(t4, "MiniRocket (reference, no teacher)")[2].startswith(pct(m["minirocket"]["accuracy"]))
    assert "split `cross_subject` (train/val/test 6/0/6), seeds 0, 1 (2), model kept: last epoch" in t4


def test_every_table_has_the_minirocket_row_and_na_where_nothing_ran(records):
    text = render(parse_exp_show(records))
    for title in ("## Table 1", "## Table 2", "## Table 3", "## Table 4"):
        assert "| MiniRocket (reference" in _section(text, title), title
    t1 = _section(text, "## Table 1")
    assert _row(t1, "VSKD model")[2:4] == [NA, "96.97"]
    assert _row(t1, "Student baseline")[2:4] == [NA, "94.87"]
    assert _row(_section(text, "## Table 2"), "VSKD model")[2:6] == [NA, "90.18", NA, "91.58"]


def _as_dataset(record: dict, dataset: str, **params) -> dict:
    """The real workspace record, relabelled as a run on another dataset (the tables place
    runs by their params and metrics file names; the values stay the measured ones)."""
    rec = copy.deepcopy(record)
    data = rec["data"]
    p = data["params"]["params.yaml"]["data"]
    p["datasets"] = [dataset]
    for dotted, value in params.items():
        node = p
        *parents, last = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    data["metrics"][f"metrics/{dataset}.json"] = data["metrics"].pop("metrics/synthetic.json")
    rec["experiments"] = None
    return rec


def test_tables_1_to_3_place_runs_by_dataset_sensor_and_split(records):
    ws = records[0]
    m = ws["data"]["metrics"]["metrics/synthetic.json"]["data"]
    runs = parse_exp_show([
        _as_dataset(ws, "utd_mhad"),
        _as_dataset(ws, "berkeley_mhad", **{"berkeley_mhad.sensor.shimmer": 5}),
        _as_dataset(ws, "mmact", **{"mmact.split.name": "cross_session", "mmact.sensor.device": "watch"}),
    ])
    text = render(runs)
    expected_acc = f"{pct(m['vskd']['accuracy'])} ± {pct(m['vskd']['accuracy_std'])}"
    expected_f1 = f"{pct(m['vskd']['macro_f1'])} ± {pct(m['vskd']['macro_f1_std'])}"
    assert _row(_section(text, "## Table 1"), "VSKD model")[2] == expected_acc
    t2 = _section(text, "## Table 2")
    left_ankle = [line for line in t2.splitlines() if "(Left Ankle)" in line and line.startswith("| VSKD model")]
    assert expected_acc in left_ankle[0] and "65.82" in left_ankle[0]
    right_wrist = [line for line in t2.splitlines() if "(Right Wrist)" in line and line.startswith("| VSKD model")]
    assert f"| {NA} |" in right_wrist[0]                                  # shimmer 2: no run
    t3 = _section(text, "## Table 3")
    watch = [line for line in t3.splitlines() if line.startswith("| VSKD model | Acc. (Watch)")][0]
    cells = [c.strip() for c in watch.strip("|").split("|")]
    assert cells[2:] == [NA, "60.14", expected_f1, "40.82"]               # cross subject not run
    # an MMAct run is no Table 4 row of another dataset: one Table 4 per dataset run
    assert "## Table 4: losses and ablations on `mmact`" in text


def test_a_student_that_loses_to_minirocket_is_said_so(records):
    ws = copy.deepcopy(records[0])
    m = ws["data"]["metrics"]["metrics/synthetic.json"]["data"]
    m["minirocket"]["accuracy"] = m["vskd"]["accuracy"] + 0.25
    ws["experiments"] = None
    text = render(parse_exp_show([ws]))
    assert "**Below MiniRocket** (accuracy, same split and seeds): DASK-ResNet18." in text
    same = copy.deepcopy(records[0])
    same["experiments"] = None
    assert "Below MiniRocket" not in render(parse_exp_show([same]))       # a tie is no loss


@pytest.mark.parametrize("params, key", [
    ({}, "dask"),
    ({"distill": {"method": "st"}}, "st"),
    ({"distill": {"method": "at"}}, "at"),
    ({"distill": {"method": "sp"}, "student": {"arch": "resnet18"}}, "sp"),
    ({"student": {"arch": "vgg16"}}, "dask_vgg16"),
    ({"distill": {"distance_weight": 0}}, "no_d"),
    ({"distill": {"angle_weight": 0}}, "no_a"),
    ({"distill": {"distance_weight": 0, "angle_weight": 0}}, "no_da"),
    ({"beta": 0}, "no_da"),
    ({"gamma": 0}, "no_s"),
    ({"gamma": 0, "beta": 0}, None),                      # no row of the paper's
    ({"student": {"arch": "vgg16"}, "gamma": 0}, None),
])
def test_method_key(params, key):
    assert method_key(Run("r", "r", "", params)) == key


def test_cli_renders_the_stored_sample(tmp_path, capsys):
    assert cli(["report", "--from-json", str(SAMPLE)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# VSKD: the paper's tables, reproduced") and "## Table 4" in out
    target = tmp_path / "tables.md"
    assert cli(["report", "--from-json", str(SAMPLE), "--out", str(target)]) == 0
    assert target.read_text() == out


def test_cli_outside_a_dvc_repository_is_one_error_line(tmp_path, capsys):
    assert cli(["report", "--repo", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("report: error: dvc exp show --json failed")


def test_a_run_whose_metrics_were_written_for_other_seeds_is_not_reported():
    # a running experiment's workspace still holds the metrics it started from (the
    # baseline's, one seed) while its params already say three seeds: not this run's numbers
    from vskd.report import Run

    metrics = {"metrics/synthetic.json": {"student": {"accuracy": 0.7, "per_seed": {"s0": {"accuracy": 0.7}}},
                                          "vskd": {"accuracy": 0.73}}}
    stale = Run(name="running", rev="abc", timestamp="1", params={"seeds": [0, 1, 2]}, metrics=metrics)
    assert stale.dataset_metrics("synthetic") is None
    done = Run(name="done", rev="abd", timestamp="1", params={"seeds": [0]}, metrics=metrics)
    assert done.dataset_metrics("synthetic")["vskd"]["accuracy"] == 0.73
