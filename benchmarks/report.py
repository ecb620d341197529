"""The results as Markdown, their sanity check, and the merge with an earlier run's sections."""

from __future__ import annotations

import json
import math
from pathlib import Path

from benchmarks.common import SECTIONS, Row


def cell(text: str) -> str:
    """Markdown table cell: a literal | would end the cell."""
    return str(text).replace("|", "\\|")


def fmt_value(row: Row) -> str:
    if row.value is None:
        return row.status
    if row.kind == "absolute":
        d = row.details
        return f"{d['wall_s']:.0f} s, {d['peak_gb']:.2f} GB"
    return f"{row.value:.2f}x"


def fmt_met(row: Row) -> str:
    if row.met is None:
        return ""
    return "yes" if row.met else "**no**"


def markdown(result: dict) -> str:
    lines = ["# VSKD benchmarks", ""]
    for run in result["runs"]:
        m = run["machine"]
        lines.append(
            f"`{run['command']}` ({', '.join(run['sections'])}): {run['generated']}, {m['cpu_count']} CPU cores, "
            f"torch {m['torch']} ({m['torch_threads']} threads), {m['gpu'] or 'no GPU'}; load average "
            f"{m['loadavg_start']:.2f} at the start, {m['loadavg_end']:.2f} at the end.  ")
    lines += [
        f"Dataset `{result['dataset']}`{' (--quick: tiny)' if result['quick'] else ''}. Each ratio is the "
        "median over interleaved rounds of two timings taken in the same run.", "",
        "| figure | measured | target | met | how, and why a target is missed |",
        "|---|---|---|---|---|",
    ]
    for row in map(lambda r: Row(**r), result["rows"]):
        lines.append(f"| {cell(row.figure)} | {cell(fmt_value(row))} | {row.target or ''} | {fmt_met(row)} "
                     f"| {cell(row.note)} |")
    if result["candidates"]:
        lines += ["", "Candidate speedups, measured in the same run (not in the pipeline):", "",
                  "| candidate | measured | notes |", "|---|---|---|"]
        for row in map(lambda r: Row(**r), result["candidates"]):
            lines.append(f"| {cell(row.figure)} | {cell(fmt_value(row))} | {cell(row.note)} |")
    missed = [Row(**r) for r in result["rows"] if r["met"] is False]
    lines += ["", "Targets missed: " + (", ".join(f"`{r.key}` ({fmt_value(r)}, target {r.target})" for r in missed)
                                        if missed else "none") + "."]
    return "\n".join(lines) + "\n"


def check_finite(result: dict) -> None:
    for row in result["rows"] + result["candidates"]:
        if row["status"] == "measured":
            v = row["value"]
            if v is None or not math.isfinite(v) or v <= 0:
                raise AssertionError(f"{row['key']}: ratio {v!r} is not a positive finite number")



def merge(path: Path, new: dict) -> dict:
    """``new`` (some sections) over the rows of the other sections in ``path`` from an earlier
    run on the same dataset and mode; ``new`` alone when there is none."""
    if not path.is_file():
        return new
    old = json.loads(path.read_text())
    if old.get("quick") != new["quick"] or old.get("dataset") != new["dataset"]:
        return new
    done = set(new["sections"])
    order = {name: i for i, name in enumerate(SECTIONS)}
    out = dict(new)
    for key in ("rows", "candidates"):
        kept = [r for r in old.get(key, []) if r.get("section") not in done]
        out[key] = sorted(kept + new[key], key=lambda r: order.get(r.get("section"), len(order)))
    runs = []
    for run in old.get("runs", []):
        left = [x for x in run["sections"] if x not in done]
        if left and any(r.get("section") in left for r in out["rows"] + out["candidates"]):
            runs.append({**run, "sections": left})
    out["runs"] = runs + new["runs"]
    return out

