"""The default ``dvc repro``'s wall time and peak memory, measured elsewhere and reported here."""

from __future__ import annotations

import json

from benchmarks.common import REPO, Row, not_measured

REPRO_JSON = REPO / "benchmarks" / "repro.json"


def repro_row(figures: str | None) -> Row:
    figure = "default `dvc repro` from a clean workspace: wall time (s) and peak resident memory (GB)"
    source = None
    if figures:
        wall, peak = (float(x) for x in figures.split(","))
        source = "--repro-figures"
        info = {}
    elif REPRO_JSON.is_file():
        info = json.loads(REPRO_JSON.read_text())
        wall, peak = float(info["wall_s"]), float(info["peak_gb"])
        source = str(REPRO_JSON.relative_to(REPO))
    else:
        return not_measured("repro", figure, "not measured in this run (pass --repro-figures WALL_S,PEAK_GB "
                                             "or write benchmarks/repro.json)", kind="absolute")
    note = f"{wall:.0f} s wall ({wall / 60:.1f} min), {peak:.2f} GB peak RSS; from {source}"
    if info.get("command"):
        note += f": `{info['command']}`"
    if info.get("measured"):
        note += f", {info['measured']}"
    return Row("repro", figure, wall, unit="s", kind="absolute", note=note,
               details={"wall_s": wall, "peak_gb": peak, "source": source, **info})

