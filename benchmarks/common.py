"""What every benchmark section shares: result rows, interleaved timing, the workspace it reads."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vskd.params import TINY_OVERRIDES, set_dotted

REPO = Path(__file__).resolve().parents[1]
SECTIONS = ("gaf", "decode", "loops", "dask", "distill", "repro", "gpu")  # in the order they run
DATA_SECTIONS = {"gaf", "decode", "loops", "dask", "distill"}  # those that read the dataset


# --- results ------------------------------------------------------------------------------

@dataclass
class Row:
    key: str
    figure: str                      # what is divided by what
    value: float | None = None       # the ratio (kind "ratio") or the figure (kind "absolute")
    unit: str = "x"
    kind: str = "ratio"
    target: str | None = None        # e.g. ">= 1.5"
    met: bool | None = None
    status: str = "measured"         # or "not measured: <why>"
    note: str = ""                   # how it was measured; for a missed target, the reason
    details: dict = field(default_factory=dict)
    section: str = ""                # the --sections name that produced it


def judge(row: Row, op: str, bound: float) -> Row:
    row.target = f"{op} {bound:g}"
    if row.value is not None:
        row.met = row.value >= bound if op == ">=" else row.value <= bound
    return row


def not_measured(key: str, figure: str, why: str, target: str | None = None, kind: str = "ratio") -> Row:
    return Row(key, figure, None, kind=kind, target=target, status=f"not measured: {why}")


# --- timing helpers ---------------------------------------------------------------------------

def sync(device=None) -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


def clock(fn):
    """(seconds, result) of ``fn()``, with CUDA work finished on both ends."""
    sync()
    t0 = time.perf_counter()
    out = fn()
    sync()
    return time.perf_counter() - t0, out


def interleave(fns: dict, rounds: int) -> dict[str, list[float]]:
    """Run every function once per round, in the given order on even rounds and reversed on
    odd ones; the seconds of each run, per name."""
    times = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            times[name].append(clock(fns[name])[0])
    return times


def interleave_per_call(fns: dict, rounds: int, calls: int) -> dict[str, list[float]]:
    """:func:`interleave` with each function called ``calls`` times in a row per round: the
    seconds per call of each round, per name (for steps too short to time one at a time)."""
    def repeated(fn):
        return lambda: [fn() for _ in range(calls)]
    times = interleave({name: repeated(fn) for name, fn in fns.items()}, rounds)
    return {name: [t / calls for t in seconds] for name, seconds in times.items()}


def step_benchmark_args(description: str, steps: int, argv=None) -> argparse.Namespace:
    """The options of the one-step benchmarks (memory_format, optimiser_step): threads,
    rounds, steps per round, --out; sets torch's thread count."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=steps, help="steps per variant per round")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    return args


def write_step_results(path, results: dict) -> None:
    """A one-step benchmark's figures, with the thread count they ran on."""
    with open(path, "w") as f:
        json.dump({"threads": torch.get_num_threads(), "results": results}, f, indent=1)


def median_ratio(num: list[float], den: list[float]) -> float:
    return float(statistics.median(a / b for a, b in zip(num, den)))


def med(values: list[float]) -> float:
    return float(statistics.median(values))


def r3(x):
    return None if x is None else float(f"{x:.4g}")


# --- the workspace -------------------------------------------------------------------------

@dataclass
class Workspace:
    root: Path
    params_path: Path
    params: dict
    name: str
    block: dict

    @property
    def paths(self):
        """The stage files of ``name`` under ``root`` (:func:`vskd.paths.stage_paths`)."""
        from vskd.paths import stage_paths

        return stage_paths(self.name, self.root)


def open_workspace(root: Path, params_path: Path, name: str | None) -> Workspace:
    from vskd.params import dataset_block, load_params

    params = load_params(params_path)
    name = name or params["datasets"][0]
    ws = Workspace(root, params_path, params, name, dataset_block(params, name, params_path))
    missing = [str(p.relative_to(root)) for p in (ws.paths.raw, ws.paths.frames, ws.paths.gaf, ws.paths.teacher,
                                                          ws.paths.teacher_outputs)
               if not p.exists()]
    if missing:
        raise SystemExit(f"benchmarks: missing {', '.join(missing)} in {root}: run `dvc repro teacher@{name} "
                         f"gaf@{name}` first (or use --quick, which builds a tiny dataset)")
    return ws


def build_quick_workspace(tmp: Path) -> Workspace:
    """A tiny dataset made by the stage scripts themselves, in ``tmp``."""
    import yaml

    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["datasets"] = ["synthetic"]
    for key, value in TINY_OVERRIDES.items():
        set_dotted(params, key, value)
    params_path = tmp / "params.yaml"
    params_path.write_text(yaml.safe_dump(params, sort_keys=False))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    for stage in ("download", "frames", "gaf", "teacher"):
        result = subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py"), "synthetic",
                                 "--params", str(params_path)], cwd=tmp, env=env, capture_output=True, text=True)
        if result.returncode != 0:
            raise SystemExit(f"benchmarks --quick: stage {stage} failed:\n{result.stdout}\n{result.stderr}")
    return open_workspace(tmp, params_path, "synthetic")

