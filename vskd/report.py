"""``python -m vskd report``: the paper's Tables 1-4 as Markdown, from DVC experiments.

Every number of ours comes from the experiments DVC knows (``dvc exp show --json``: the
workspace, the baseline commit and its experiments, queued runs once they have finished):
each run's ``params.yaml`` says which table cell it fills, its ``metrics/<ds>.json`` gives
the values. The paper's numbers (Ni et al., ICASSP 2022, Tables 1-4) are printed beside
ours; the MiniRocket reference (no teacher, raw accelerometer) is a row of every table; a
cell no run has filled reads "n/a".

Which run fills which cell:

* Tables 1-3 (the VSKD model against its baseline): runs with the paper's method,
  ``distill.method: dask`` with every DASK term on and ``student.arch: resnet18``; Table 1
  reads ``metrics/utd_mhad.json``, Table 2 ``metrics/berkeley_mhad.json`` (one row pair per
  ``berkeley_mhad.sensor.shimmer``), Table 3 ``metrics/mmact.json`` (per
  ``mmact.split.name`` and ``mmact.sensor.device``).
* Table 4 (losses and ablations; the paper's is on UTD-MHAD): one table per dataset that has
  runs, rows by ``distill.method`` (st, at, sp, dask), ``student.arch`` (vgg16) and the DASK
  weights that are 0 (``distill.distance_weight``: without D; ``distill.angle_weight``:
  without A; both, or ``beta``: without D and A; ``gamma``: without S).

Where several runs fill one cell, the one with the most seeds wins, then the newest; the
``run`` column names it. Values are percentages: the mean over the run's seeds, ± the
sample standard deviation when there are several.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

# --- The paper's numbers (percent) -------------------------------------------------------

PAPER_TABLE1 = {"student": 94.87, "vskd": 96.97}  # UTD-MHAD accuracy; the authors' subject-specific split

BERKELEY_LOCATIONS = {1: "Left Wrist", 2: "Right Wrist", 3: "Left Hip", 4: "Right Hip", 5: "Left Ankle",
                      6: "Right Ankle"}
PAPER_TABLE2 = {  # shimmer: {model: (accuracy, F1)}
    1: {"student": (89.09, 89.27), "vskd": (90.18, 91.58)},
    2: {"student": (86.54, 88.33), "vskd": (87.64, 89.90)},
    3: {"student": (83.27, 84.45), "vskd": (83.82, 83.91)},
    4: {"student": (81.09, 81.45), "vskd": (82.55, 82.99)},
    5: {"student": (65.09, 64.73), "vskd": (65.82, 66.90)},
    6: {"student": (62.91, 62.73), "vskd": (64.36, 63.60)},
}
PAPER_TABLE3 = {  # (split, device): {model: F1}
    ("cross_subject", "phone"): {"student": 55.44, "vskd": 65.83},
    ("cross_session", "phone"): {"student": 61.38, "vskd": 73.64},
    ("cross_subject", "watch"): {"student": 46.83, "vskd": 60.14},
    ("cross_session", "watch"): {"student": 20.63, "vskd": 40.82},
}
# Table 4, UTD-MHAD: (row key, the paper's label, accuracy, F1)
TABLE4_ROWS = [
    ("st", "ST", 96.04, 96.15),
    ("at", "AT", 96.03, 95.80),
    ("sp", "SP", 95.80, 95.57),
    ("dask_vgg16", "DASK-VGG16", 95.34, 95.69),
    ("dask", "DASK-ResNet18", 96.97, 96.38),
    ("no_d", "ASK (W/O D)-ResNet18", 96.73, 96.27),
    ("no_a", "DSK (W/O A)-ResNet18", 96.51, 95.80),
    ("no_da", "SK (W/O D and A)-ResNet18", 96.50, 96.06),
    ("no_s", "DAK (W/O S)-ResNet18", 95.80, 96.04),
]
NA = "n/a"


# --- Reading `dvc exp show --json` ----------------------------------------------------------

@dataclass
class Run:
    """One row of ``dvc exp show``: a name, its params.yaml and its metrics files."""

    name: str
    rev: str
    timestamp: str
    params: dict
    metrics: dict = field(default_factory=dict)   # path -> metrics dict

    def param(self, dotted: str, default=None):
        node = self.params
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    @property
    def seeds(self) -> list:
        """The training seeds (params.yaml ``seeds``; DVC drops the list from the metrics)."""
        seeds = self.param("seeds")
        return list(seeds) if isinstance(seeds, list) else [self.param("seed", 0)]

    def dataset_metrics(self, dataset: str) -> dict | None:
        m = self.metrics.get(f"metrics/{dataset}.json")
        if not (isinstance(m, dict) and "student" in m and "vskd" in m):
            return None
        # A running experiment shows the metrics its workspace started from (the baseline's):
        # metrics written for another seeds list are not this run's. (dvc exp show drops the
        # metrics' list values, so the seeds are read from the per-seed keys.)
        per_seed = m["student"].get("per_seed") if isinstance(m["student"], dict) else None
        if isinstance(per_seed, dict) and isinstance(self.params.get("seeds"), list):
            if sorted(per_seed) != sorted(f"s{seed}" for seed in self.params["seeds"]):
                return None
        return m


def _file_data(files: dict | None, name: str | None = None) -> dict:
    """``{"params.yaml": {"data": {...}}}`` -> {path: data}, skipping files that failed to load."""
    out = {}
    for path, entry in (files or {}).items():
        if isinstance(entry, dict) and isinstance(entry.get("data"), dict):
            out[path] = entry["data"]
    return out


def _run_from(entry: dict, default_name: str) -> Run | None:
    data = entry.get("data") or {}
    if entry.get("error") or not data:
        return None
    params = _file_data(data.get("params")).get("params.yaml")
    metrics = _file_data(data.get("metrics"))
    if not params or not metrics:  # queued, running or failed: nothing measured yet
        return None
    rev = str(entry.get("rev") or data.get("rev") or "")
    name = entry.get("name") or data.get("name") or default_name
    # The workspace has no timestamp: it is the newest state.
    timestamp = "9999" if rev == "workspace" else str(data.get("timestamp") or "")
    return Run(name=str(name), rev=rev, timestamp=timestamp, params=params, metrics=metrics)


def parse_exp_show(records: list) -> list[Run]:
    """Every finished run in ``dvc exp show --json`` output (dvc 3): the workspace, each
    baseline commit, and each experiment of theirs. Queued, running and failed ones are
    left out (they have no metrics)."""
    runs = []
    for record in records:
        if record.get("rev") == "workspace":
            name = "workspace"
        else:
            name = record.get("name") or str(record.get("rev", ""))[:7]
        run = _run_from(record, name)
        if run is not None:
            runs.append(run)
        for group in record.get("experiments") or []:
            for exp in group.get("revs") or []:
                run = _run_from(exp, str(exp.get("rev", ""))[:7])
                if run is not None:
                    runs.append(run)
    return runs


def dvc_exp_show(cwd: str | Path = ".", num: int = 1) -> list:
    """``dvc exp show --json -n num`` of the repository at ``cwd``: the workspace, the last
    ``num`` commits and their experiments."""
    if num < 1:
        raise ValueError(f"--num must be at least 1, got {num}")
    result = subprocess.run(["dvc", "exp", "show", "--json", "-n", str(num)], cwd=cwd,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"dvc exp show --json failed in {cwd}:\n{result.stderr.strip()}")
    return json.loads(result.stdout)


# --- Which cell a run fills ------------------------------------------------------------------

def method_key(run: Run) -> str | None:
    """The Table 4 row of a run (``TABLE4_ROWS``), or None."""
    method = run.param("distill.method", "dask")
    arch = run.param("student.arch", "resnet18")
    if method in ("st", "at", "sp"):
        return method if arch == "resnet18" else None
    if method != "dask":
        return None
    d_on = run.param("beta", 1.0) > 0 and run.param("distill.distance_weight", 1.0) > 0
    a_on = run.param("beta", 1.0) > 0 and run.param("distill.angle_weight", 1.0) > 0
    s_on = run.param("gamma", 1.0) > 0
    if arch == "vgg16":
        return "dask_vgg16" if (d_on and a_on and s_on) else None
    if arch != "resnet18":
        return None
    return {(True, True, True): "dask", (False, True, True): "no_d", (True, False, True): "no_a",
            (False, False, True): "no_da", (True, True, False): "no_s"}.get((d_on, a_on, s_on))


def _datasets(run: Run) -> list[str]:
    value = run.param("datasets", [])
    return list(value) if isinstance(value, list) else []


def _best(candidates: list[tuple[Run, dict]]) -> tuple[Run, dict] | None:
    """Most seeds, then newest."""
    if not candidates:
        return None
    return max(candidates, key=lambda rm: (len(rm[0].seeds), rm[0].timestamp))


def _cells(runs: list[Run], dataset: str, key=lambda run: None, method: str | None = "dask") -> dict:
    """{key(run): (run, metrics)} of the runs that have ``metrics/<dataset>.json``."""
    groups: dict = {}
    for run in runs:
        m = run.dataset_metrics(dataset)
        if m is None or dataset not in _datasets(run):
            continue
        if method is not None and method_key(run) != method:
            continue
        groups.setdefault(key(run), []).append((run, m))
    return {k: _best(v) for k, v in groups.items()}


# --- Formatting -------------------------------------------------------------------------------

def _pct(block: dict | None, metric: str) -> str:
    """'70.63 ± 1.20' (percent, mean ± sample std over seeds) or '70.63' for one seed."""
    if not block or block.get(metric) is None:
        return NA
    text = f"{100 * block[metric]:.2f}"
    std = block.get(f"{metric}_std")
    return f"{text} ± {100 * std:.2f}" if std is not None else text


NOT_IN_PAPER = "—"


def _paper(value) -> str:
    """The paper's number, or a dash where the paper has no such row (MiniRocket)."""
    return NOT_IN_PAPER if value is None else f"{value:.2f}"


def _gain(m: dict | None, metric: str = "accuracy") -> str:
    """VSKD - baseline (pp), its bootstrap 95 % interval and the per-seed McNemar p-values."""
    if not m or "gain" not in m:
        return NA
    text = _pct(m["gain"], metric)
    text = text if text.startswith("-") else "+" + text
    paired = (m.get("paired") or {}).get("vskd_vs_student") or {}
    if metric == "accuracy" and paired:
        ci = paired["bootstrap"]
        ps = ", ".join(f"{t['p_value']:.2g}" for t in paired["mcnemar"].values())
        text += f" [{100 * ci['ci_low']:+.2f}, {100 * ci['ci_high']:+.2f}]; p = {ps}"
    return text


def _versus_minirocket(m: dict | None) -> str | None:
    """A sentence when the distilled student loses to MiniRocket, else None."""
    if not m or "minirocket" not in m:
        return None
    d = m["vskd"]["accuracy"] - m["minirocket"]["accuracy"]
    if d >= 0:
        return None
    paired = (m.get("paired") or {}).get("vskd_vs_minirocket") or {}
    ci = paired.get("bootstrap")
    extra = f" (95 % CI of the difference [{100 * ci['ci_low']:+.2f}, {100 * ci['ci_high']:+.2f}])" if ci else ""
    return (f"**The distilled student loses to MiniRocket**: {100 * d:+.2f} points of accuracy{extra}, "
            "with no teacher and no GAF.")


def _setup(run: Run, m: dict) -> str:
    split = m.get("split", {})
    seeds = run.seeds
    counts = "/".join(str(split.get(k, "?")) for k in ("train", "val", "test"))
    sel = (m.get("selection") or {}).get("vskd", "?")
    return (f"run `{run.name}`: split `{split.get('name', '?')}` (train/val/test {counts}), "
            f"seeds {', '.join(map(str, seeds))} ({len(seeds)}), model kept: {sel} epoch")


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def _run_name(cell) -> str:
    return f"`{cell[0].name}`" if cell else NA


def _setups(title: str, cells: dict, label, missing: str) -> list[str]:
    """A table's title, then one line per cell (``label(key)``) naming its run's setup, or
    ``missing`` when there is no run; a blank line after."""
    out = [title, ""]
    if cells:
        out += [f"- {label(k)}: {_setup(*c)}" for k, c in sorted(cells.items(), key=lambda kv: str(kv[0]))]
    else:
        out.append(missing)
    return out + [""]


def _minirocket_notes(cells: dict, label) -> list[str]:
    """One line per cell whose distilled student loses to MiniRocket, after a blank line."""
    notes = [f"- {label(k)}: {n}" for k, c in sorted(cells.items(), key=lambda kv: str(kv[0]))
             if (n := _versus_minirocket(c[1]))]
    return [""] + notes if notes else []


# --- The tables --------------------------------------------------------------------------------

def table1(runs: list[Run]) -> list[str]:
    cell = _cells(runs, "utd_mhad").get(None)
    m = cell[1] if cell else None
    out = ["## Table 1: UTD-MHAD, accuracy (%)", ""]
    out.append((_setup(*cell) if cell else "No run on UTD-MHAD yet (n/a).")
               + " The paper's: the authors' subject-specific split (trials 1-2 / 3-4).")
    out.append("")
    out += _table(["method", "testing modality", "ours", "paper", "run"], [
        ["Student baseline", "Acc.", _pct(m and m["student"], "accuracy"), _paper(PAPER_TABLE1["student"]), _run_name(cell)],
        ["VSKD model", "Acc.", _pct(m and m["vskd"], "accuracy"), _paper(PAPER_TABLE1["vskd"]), _run_name(cell)],
        ["MiniRocket (reference, no teacher)", "Acc.", _pct(m and m.get("minirocket"), "accuracy"), NOT_IN_PAPER,
         _run_name(cell)],
        ["VSKD - baseline [95 % CI]; McNemar p per seed", "", _gain(m), f"{PAPER_TABLE1['vskd'] - PAPER_TABLE1['student']:+.2f}", ""],
    ])
    note = _versus_minirocket(m)
    return out + ([""] + [note] if note else [])


def table2(runs: list[Run]) -> list[str]:
    cells = _cells(runs, "berkeley_mhad", key=lambda r: r.param("berkeley_mhad.sensor.shimmer"))
    out = _setups("## Table 2: Berkeley-MHAD, accuracy and F1 (%)", cells, _shimmer,
                  "No run on Berkeley-MHAD yet (n/a). Split: cross-subject, subjects 1-7 / 8-12.")
    rows = []
    for shimmer, location in BERKELEY_LOCATIONS.items():
        cell = cells.get(shimmer)
        m = cell[1] if cell else None
        paper = PAPER_TABLE2[shimmer]
        for model, label in (("student", "Student baseline"), ("vskd", "VSKD model"),
                             ("minirocket", "MiniRocket (reference)")):
            block = m and m.get(model)
            p = paper.get(model, (None, None))
            rows.append([label, f"Acc. ({location})", _pct(block, "accuracy"), _paper(p[0]),
                         _pct(block, "macro_f1"), _paper(p[1]), _run_name(cell)])
        rows.append(["VSKD - baseline (accuracy)", f"Acc. ({location})", _gain(m), "", "", "", ""])
    out += _table(["method", "testing modality", "accuracy, ours", "accuracy, paper", "F1, ours",
                   "F1, paper", "run"], rows)
    return out + _minirocket_notes(cells, _shimmer)


def _shimmer(key) -> str:
    return f"shimmer {key}"


def table3(runs: list[Run]) -> list[str]:
    cells = _cells(runs, "mmact", key=lambda r: (r.param("mmact.split.name"), r.param("mmact.sensor.device")))
    out = _setups("## Table 3: MMAct, F1 (%)", cells, _split_device, "No run on MMAct yet (n/a).")
    rows = []
    for device in ("phone", "watch"):
        for model, label in (("student", "Student baseline"), ("vskd", "VSKD model"),
                             ("minirocket", "MiniRocket (reference)")):
            row = [label, f"Acc. ({device.capitalize()})"]
            for split in ("cross_subject", "cross_session"):
                cell = cells.get((split, device))
                m = cell[1] if cell else None
                row += [_pct(m and m.get(model), "macro_f1"), _paper(PAPER_TABLE3[(split, device)].get(model))]
            rows.append(row)
        row = ["VSKD - baseline (F1)", f"Acc. ({device.capitalize()})"]
        for split in ("cross_subject", "cross_session"):
            cell = cells.get((split, device))
            paper = PAPER_TABLE3[(split, device)]
            row += [_gain(cell[1] if cell else None, "macro_f1"), f"{paper['vskd'] - paper['student']:+.2f}"]
        rows.append(row)
    out += _table(["method", "testing modality", "cross subject, ours", "cross subject, paper",
                   "cross session, ours", "cross session, paper"], rows)
    return out + _minirocket_notes(cells, _split_device)


def _split_device(key) -> str:
    return f"{key[0]}, {key[1]}"


def table4(runs: list[Run], dataset: str) -> list[str]:
    cells = {key: _cells(runs, dataset, method=key).get(None) for key, *_ in TABLE4_ROWS}
    reference = cells.get("dask") or next((c for c in cells.values() if c), None)
    out = [f"## Table 4: losses and ablations on `{dataset}`, accuracy and F1 (%); the paper's on UTD-MHAD", ""]
    for key, label, *_ in TABLE4_ROWS:
        if cells[key]:
            out.append(f"- {label}: {_setup(*cells[key])}")
    out.append("")
    rows = []
    for key, label, acc, f1 in TABLE4_ROWS:
        cell = cells[key]
        m = cell[1] if cell else None
        rows.append([label, "Acc.", _pct(m and m["vskd"], "accuracy"), _paper(acc),
                     _pct(m and m["vskd"], "macro_f1"), _paper(f1), _gain(m), _run_name(cell)])
    m = reference[1] if reference else None
    rows.append(["Student baseline (CE only; paper: Table 1)", "Acc.", _pct(m and m["student"], "accuracy"),
                 _paper(PAPER_TABLE1["student"]), _pct(m and m["student"], "macro_f1"), NOT_IN_PAPER, "",
                 _run_name(reference)])
    rows.append(["MiniRocket (reference, no teacher)", "Acc.", _pct(m and m.get("minirocket"), "accuracy"),
                 NOT_IN_PAPER, _pct(m and m.get("minirocket"), "macro_f1"), NOT_IN_PAPER, "", _run_name(reference)])
    out += _table(["method", "testing modality", "accuracy, ours", "accuracy, paper", "F1, ours", "F1, paper",
                   "accuracy vs baseline [95 % CI]; McNemar p", "run"], rows)
    losers = [label for (key, label, *_) in TABLE4_ROWS if cells[key] and _versus_minirocket(cells[key][1])]
    if losers:
        out += ["", f"**Below MiniRocket** (accuracy, same split and seeds): {', '.join(losers)}."]
    return out


def render(runs: list[Run]) -> str:
    """Tables 1-4 as one Markdown document."""
    table4_datasets = sorted({d for run in runs for d in _datasets(run) if run.dataset_metrics(d)}) or ["synthetic"]
    parts = ["# VSKD: the paper's tables, reproduced", "",
             f"From {len(runs)} run(s) of `dvc exp show` (workspace and experiments). Ours: mean ± sample "
             "standard deviation over the run's training seeds (one seed: no ±); all models kept by the "
             "rule named (never selected on the test split). Paper: Ni et al., ICASSP 2022 (one run each, "
             "best test epoch, its own split). \"n/a\": no run yet; \"—\": not in the paper. The gain column: VSKD minus the baseline "
             "student, mean over seeds, with a paired bootstrap 95 % interval (test samples resampled, "
             "correctness averaged over seeds) and the exact McNemar p-value of each seed.", ""]
    for lines in (table1(runs), table2(runs), table3(runs), *(table4(runs, d) for d in table4_datasets)):
        parts += lines + [""]
    return "\n".join(parts)


def main(json_path: str | None = None, out_path: str | None = None, repo: str = ".", num: int = 1) -> str:
    records = json.loads(Path(json_path).read_text()) if json_path else dvc_exp_show(repo, num)
    text = render(parse_exp_show(records))
    if out_path:
        Path(out_path).write_text(text)
    return text
