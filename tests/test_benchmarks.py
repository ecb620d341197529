"""Smoke test of the benchmark command: `python -m benchmarks.run --quick` on the tiny dataset it
builds itself. Checks the files and their keys, never a timing."""

import importlib.util
import json
import math
import shutil
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

RATIO_ROWS = {"gaf_vs_pyts", "gaf_vs_pyts_full", "decode_vs_ffmpeg", "decode_vs_ffmpeg_per_video",
              "teacher_loop", "student_loop", "dask_vs_ce", "distill_stored_vs_recompute", "distill_loop",
              "gpu_teacher_amp", "gpu_student_amp"}
ROW_KEYS = {"key", "figure", "value", "unit", "kind", "target", "met", "status", "note", "details", "section"}
# Rows that need a benchmark-only dependency (pip install -e '.[bench]') or a GPU.
OPTIONAL = {"gaf_vs_pyts": "pyts", "gaf_vs_pyts_full": "pyts", "decode_vs_ffmpeg": "ffmpeg",
            "decode_vs_ffmpeg_per_video": "ffmpeg", "gpu_teacher_amp": "gpu", "gpu_student_amp": "gpu"}


def _have(dep):
    if dep == "gpu":
        return torch.cuda.is_available()
    if dep == "pyts":
        return importlib.util.find_spec("pyts") is not None
    return shutil.which("ffmpeg") is not None or importlib.util.find_spec("imageio_ffmpeg") is not None


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    # --quick builds its own tiny dataset in a temporary folder: no pipeline data needed (fresh clone, CI).
    out = tmp_path_factory.mktemp("bench")
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--out-dir", str(out),
           "--repro-figures", "542,1.32"]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, f"{' '.join(cmd)} failed:\n{result.stdout}\n{result.stderr}"
    return out, result


def test_quick_run_writes_both_tables(quick):
    out, result = quick
    data = json.loads((out / "results.json").read_text())
    assert {"command", "generated", "quick", "dataset", "machine", "runs", "rows", "candidates"} <= set(data)
    assert data["quick"] is True
    assert data["command"].startswith("python -m benchmarks.run --quick")
    rows = {row["key"]: row for row in data["rows"]}
    assert RATIO_ROWS | {"repro"} <= set(rows)
    for row in data["rows"] + data["candidates"]:
        assert set(row) == ROW_KEYS, row["key"]
    md = (out / "results.md").read_text()
    assert data["command"] in md
    for row in data["rows"]:
        assert row["figure"] in md


def test_ratios_are_positive_and_finite_where_measured(quick):
    out, _ = quick
    data = json.loads((out / "results.json").read_text())
    rows = {row["key"]: row for row in data["rows"]}
    for key in RATIO_ROWS:
        row = rows[key]
        if key in OPTIONAL and not _have(OPTIONAL[key]):
            assert row["status"].startswith("not measured") and row["value"] is None, key
            continue
        assert row["status"] == "measured", (key, row["status"])
        assert row["kind"] == "ratio"
        assert isinstance(row["value"], float) and math.isfinite(row["value"]) and row["value"] > 0, key
        if row["target"] is not None:
            assert isinstance(row["met"], bool), key
    for row in data["candidates"]:
        assert math.isfinite(row["value"]) and row["value"] > 0, row["key"]


def test_targets_and_repro_figures(quick):
    out, _ = quick
    data = json.loads((out / "results.json").read_text())
    rows = {row["key"]: row for row in data["rows"]}
    assert rows["gaf_vs_pyts"]["target"] == ">= 1.5"
    assert rows["decode_vs_ffmpeg"]["target"] == "<= 1.25"
    assert rows["teacher_loop"]["target"] == rows["student_loop"]["target"] == "<= 1.15"
    assert rows["dask_vs_ce"]["target"] == "<= 1.1"
    repro = rows["repro"]
    assert repro["kind"] == "absolute" and repro["details"]["wall_s"] == 542.0
    assert repro["details"]["peak_gb"] == 1.32
    if not torch.cuda.is_available():
        assert rows["gpu_teacher_amp"]["status"] == "not measured: no GPU"
    # A missed target names its figure in the Markdown summary line.
    md = (out / "results.md").read_text()
    for row in data["rows"]:
        if row["met"] is False:
            assert f"`{row['key']}`" in md.splitlines()[-1]


def test_a_later_run_of_some_sections_keeps_the_other_rows(quick, tmp_path):
    out, _ = quick
    shutil.copy(out / "results.json", tmp_path / "results.json")
    cmd = [sys.executable, "-m", "benchmarks.run", "--quick", "--sections", "repro", "--repro-figures", "600,1.5",
           "--out-dir", str(tmp_path)]
    result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    before = json.loads((out / "results.json").read_text())
    after = json.loads((tmp_path / "results.json").read_text())
    assert [r["key"] for r in after["rows"]] == [r["key"] for r in before["rows"]]
    repro = next(r for r in after["rows"] if r["key"] == "repro")
    assert repro["details"]["wall_s"] == 600.0 and repro["section"] == "repro"
    assert [run["sections"] for run in after["runs"]] == [
        [s for s in before["runs"][0]["sections"] if s != "repro"], ["repro"]]
    md = (tmp_path / "results.md").read_text()
    assert before["command"] in md and after["command"] in md


def test_sections_option_rejects_unknown_names():
    result = subprocess.run([sys.executable, "-m", "benchmarks.run", "--sections", "gaf,nope"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "nope" in result.stderr


def test_gpu_throughput_code_path_runs_on_cpu():
    """The GPU section's measuring function, on the CPU at a tiny size (no GPU needed)."""
    from benchmarks.gpu import gpu_throughput

    results = gpu_throughput(torch.device("cpu"), image_size=64, segments=2, teacher_batch=2,
                             student_batch=2, steps=1, warmup=1)
    assert [(r["model"], r["amp"]) for r in results] == [("teacher", False), ("teacher", True),
                                                         ("student", False), ("student", True)]
    assert all(math.isfinite(r["samples_per_s"]) and r["samples_per_s"] > 0 for r in results)


def test_missing_benchmark_dependencies_are_reported_not_measured(monkeypatch):
    """Without pyts or ffmpeg the sections say so instead of failing (they stop before any data
    is read)."""
    import benchmarks.run as bench

    monkeypatch.setitem(sys.modules, "pyts", None)
    monkeypatch.setitem(sys.modules, "pyts.image", None)
    rows, candidates = bench.bench_gaf(None, 1)
    assert [r.key for r in rows] == ["gaf_vs_pyts", "gaf_vs_pyts_full"] and candidates == []
    assert all(r.value is None and "pyts is not installed" in r.status for r in rows)

    monkeypatch.setattr(shutil, "which", lambda name: None)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    rows, candidates = bench.bench_decode(None, 1)
    assert [r.key for r in rows] == ["decode_vs_ffmpeg", "decode_vs_ffmpeg_per_video"] and candidates == []
    assert all(r.value is None and r.status.startswith("not measured: no ffmpeg") for r in rows)
