"""The paper presets: every run validates against params.yaml, carries the authors' settings,
and its `dvc exp run -S` overrides parse (Hydra's grammar, as DVC reads them) to the values
the preset means."""

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from tests.conftest import REPO
from vskd.__main__ import main
from vskd.params import ParamsError
from vskd.preset import (check_runs, hydra_value, override_args, parse_overrides, preset_names, preset_runs,
                         run_preset, table_presets)

PARAMS = REPO / "params.yaml"
SOURCES = {"table1": {}, "table2": {"berkeley_mhad.source": "/data/BerkeleyMHAD"},
           "table3": {"mmact.source": "/data/MMAct"}, "table4": {}}


def test_every_table_has_a_preset():
    assert preset_names() == ["paper", "real_motion", "table1", "table2", "table3", "table4"]
    assert table_presets() == ["table1", "table2", "table3", "table4"]


@pytest.mark.parametrize("table", sorted(SOURCES))
def test_every_run_validates(table):
    check_runs(table, preset_runs(table, SOURCES[table]), PARAMS)


def test_the_authors_settings():
    (run,) = preset_runs("table1")
    o = run.overrides
    assert (o["frames.short_side"], o["teacher.input_size"], o["gaf.image_size"]) == (256, 224, 224)
    assert (o["teacher.optimizer"], o["teacher.lr"], o["teacher.momentum"], o["teacher.weight_decay"]) == \
        ("sgd", 0.001, 0.9, 0.0005)
    assert (o["teacher.epochs"], o["teacher.lr_steps"], o["teacher.batch_size"], o["teacher.partial_bn"]) == \
        (100, [50], 16, True)
    assert o["teacher.pretrained"].endswith("bn_inception-9f5701afb96c8044.pth")
    assert (o["student.pretrained"], o["student.lr"], o["student.weight_decay"], o["student.epochs"],
            o["student.batch_size"], o["student.schedule"]) == ("IMAGENET1K_V1", 0.0002, 0.00001, 100, 16, "constant")
    assert (o["alpha"], o["beta"], o["gamma"], o["temperature"]) == (0.01, 1.0, 1.0, 4.0)
    assert (o["datasets"], o["utd_mhad.split.name"]) == (["utd_mhad"], "subject_specific")


def test_row_families():
    assert [r.overrides["berkeley_mhad.sensor.shimmer"] for r in preset_runs("table2")] == [1, 2, 3, 4, 5, 6]
    assert {(r.overrides["mmact.split.name"], r.overrides["mmact.sensor.device"]) for r in preset_runs("table3")} == \
        {(s, d) for s in ("cross_subject", "cross_session") for d in ("phone", "watch")}
    assert [r.name for r in preset_runs("table4")][:4] == ["table4-dask", "table4-st", "table4-at", "table4-sp"]
    assert preset_runs("table4")[0].overrides["teacher.lr"] == 0.001  # table1's base, hence paper's


def test_user_overrides_come_last():
    (run,) = preset_runs("table1", {"teacher.epochs": 1, "seeds": [0, 1, 2]})
    assert run.overrides["teacher.epochs"] == 1 and list(run.overrides)[-1] == "seeds"


@pytest.mark.parametrize("table", sorted(SOURCES))
def test_overrides_parse_as_dvc_reads_them(table):
    extra = {**SOURCES[table], "seeds": [0, 1, 2], "teacher.pretrained": "/w/it's here.pth"}
    for run in preset_runs(table, extra):
        command = run.command()
        sets = command[command.index("-S") + 1::2]
        for override in OverridesParser.create().parse_overrides(sets):
            want = run.overrides[override.key_or_group]
            assert override.value() == want and type(override.value()) is type(want), override


@pytest.mark.parametrize("value, text", [(True, "true"), (None, "null"), ([1.0, 0.5], "[1.0,0.5]"),
                                         ("sgd", "sgd"), ("true", "'true'"), ("1e-3", "'1e-3'"),
                                         ("/data/UTD-MHAD", "/data/UTD-MHAD"), ("a b", "'a b'")])
def test_hydra_value(value, text):
    assert hydra_value(value) == text


def test_queue_flag():
    assert preset_runs("table1")[0].command(queue=True)[:6] == ["dvc", "exp", "run", "--queue", "-n", "table1-utd"]


def test_a_missing_local_copy_is_named():
    with pytest.raises(ParamsError, match=r"berkeley_mhad.source is empty; pass a local copy"):
        check_runs("table2", preset_runs("table2"), PARAMS)


def test_a_typo_is_caught_before_anything_runs():
    with pytest.raises(ParamsError, match="missing key 'teacher.epoch'"):
        check_runs("table1", preset_runs("table1", {"teacher.epoch": 3}), PARAMS)
    with pytest.raises(ParamsError, match="table1-utd: .*teacher.epochs"):
        check_runs("table1", preset_runs("table1", {"teacher.epochs": 0}), PARAMS)


def test_unknown_and_base_presets():
    with pytest.raises(ParamsError, match="unknown preset 'table9'"):
        preset_runs("table9")
    with pytest.raises(ParamsError, match="no runs: it is a base"):
        preset_runs("paper")


def test_run_preset_runs_in_turn_and_stops_at_a_failure(monkeypatch):
    calls = []
    monkeypatch.setattr("vskd.preset.subprocess.call", lambda cmd: calls.append(cmd[4]) or (1 if len(calls) == 2 else 0))
    lines = []
    code = run_preset("table3", SOURCES["table3"], params_path=PARAMS, echo=lines.append)
    assert code == 1 and calls == ["table3-cross_subject-phone", "table3-cross_subject-watch"]
    assert lines[0].startswith("# Table 3") and len(lines) == 3


def test_cli_dry_run(capsys):
    assert main(["preset", "table2", "--dry-run", "--params", str(PARAMS), "-S", "berkeley_mhad.source=/d"]) == 0
    out = capsys.readouterr().out
    assert out.count("dvc exp run -n table2-berkeley-h") == 6 and "-S berkeley_mhad.source=/d" in out
    assert main(["preset", "table2", "--dry-run", "--params", str(PARAMS)]) == 1
    assert "preset: error: preset table2: berkeley_mhad.source is empty" in capsys.readouterr().err


def test_parse_overrides():
    from vskd.preset import parse_overrides

    assert parse_overrides(["a.b=1", "c=[1, 2]", " d =x", "e=/p/q"]) == {"a.b": 1, "c": [1, 2], "d": "x", "e": "/p/q"}
    with pytest.raises(ParamsError, match="expected KEY=VALUE"):
        parse_overrides(["teacher.epochs"])


def test_override_args_read_back_to_the_same_values():
    values = {"a": [1, "x"], "b": True, "c": 0.15, "d": "../data/utd", "e": "true", "f": "0.5", "g": None}
    args = override_args(values)
    assert args[:4] == ["a=[1, \"x\"]", "b=true", "c=0.15", "d=../data/utd"]
    assert args[4:] == ["e=\"true\"", "f=\"0.5\"", "g=null"]
    assert parse_overrides(args) == values


def test_the_real_motion_recipe():
    from vskd.preset import preset_overrides
    from vskd.devprotocol import load_with_overrides

    params = load_with_overrides(PARAMS, preset_overrides("real_motion") + ["student.mixup=0.1"])
    assert params["datasets"] == ["utd_mhad"] and params["utd_mhad"]["video"]["source"] == "skeleton"
    assert (params["teacher"]["affine"]["rotate_deg"], params["teacher"]["affine"]["stretch"]) == (10, 0.15)
    assert (params["student"]["epochs"], params["runtime"]["amp"]) == (60, False)  # bfloat16: the user's -S
    assert params["student"]["mixup"] == 0.1  # the user's -S after the preset
    assert preset_overrides(None) == []


def test_dev_names_an_unknown_preset(capsys):
    assert main(["dev", "--preset", "nope", "--params", str(PARAMS)]) == 1
    assert "dev: error: unknown preset 'nope': choose one of paper, real_motion, table1" in capsys.readouterr().err


def test_dev_applies_the_preset_before_the_user_overrides(monkeypatch, capsys):
    from vskd.preset import preset_overrides

    seen = {}
    monkeypatch.setattr("vskd.devprotocol.run_dev", lambda *a, **kw: seen.update(kw) or {})
    monkeypatch.setattr("vskd.devprotocol.format_summary", lambda result: "table")
    assert main(["dev", "--preset", "real_motion", "-S", "student.mixup=0.1", "--params", str(PARAMS),
                 "--out", "/dev/null"]) == 0
    assert seen["overrides"] == preset_overrides("real_motion") + ["student.mixup=0.1"]
    assert seen["overrides"][:2] == ['datasets=["utd_mhad"]', "utd_mhad.video.source=skeleton"]
