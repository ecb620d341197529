"""benchmarks.paper_scale at a tiny size (32 px, 3 segments): every stage builds, takes one
training step with and without runtime.amp, and reports its memory and time. Never a timing
or memory bound: the figures depend on the machine."""

import json
import math

import pytest

from benchmarks.paper_scale import format_table, main
from vskd.cost import torch_threads


@pytest.fixture(autouse=True)
def one_thread():
    with torch_threads(1):
        yield


def _check(result, stage, amp):
    assert result["stage"] == stage and result["amp"] is amp and result["size"] == 32
    assert result["segments"] == (3 if stage == "teacher" else None)
    assert math.isfinite(result["loss"]) and result["loss"] > 0
    assert len(result["step_s"]) == 1 and result["step_s"][0] > 0
    assert 0 < result["start_rss_mib"] <= result["build_rss_mib"] <= result["peak_rss_mib"]
    assert result["step_rss_mib"] == result["peak_rss_mib"] - result["build_rss_mib"]


def test_every_stage_takes_one_amp_step_in_process(capsys):
    assert main(["--size", "32", "--segments", "3", "--in-process", "--json", "--amp"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["stage"] for r in results] == ["teacher", "student", "distill"]
    for r in results:
        _check(r, r["stage"], True)
    table = format_table(results)
    assert table.splitlines()[2].startswith("| teacher | 32 | 3 | 2 | on | cpu | 10.87 | ")


def test_one_stage_child_mode_prints_one_json_line(capsys):
    """What each fresh process of the default (isolated) run prints for its parent."""
    assert main(["--size", "32", "--only", "student"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    _check(json.loads(lines[-1]), "student", False)


def test_bad_options_are_refused():
    with pytest.raises(SystemExit):
        main(["--stages", "teacher,decoder"])
    with pytest.raises(SystemExit):
        main(["--size", "16"])
