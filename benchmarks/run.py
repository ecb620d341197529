"""Benchmarks of the VSKD pipeline: one command, a Markdown and a JSON table of ratios.

    python -m benchmarks.run                      # all sections, on data/<ds> and models/<ds>
    python -m benchmarks.run --sections gaf,decode
    python -m benchmarks.run --quick --out-dir /tmp/b   # smoke run on a tiny dataset it builds

Needs the benchmark-only dependencies: ``pip install -e '.[bench]'`` (pyts; imageio-ffmpeg,
whose bundled ffmpeg is used when there is no ``ffmpeg`` on PATH). A section whose dependency
is missing is reported as not measured.

The full run reads what ``dvc repro`` left in the workspace (``data/<ds>/raw``, ``frames.h5``,
``gaf.h5``, ``models/<ds>/teacher.pt``, ``teacher_outputs.h5``) with the settings of
``params.yaml``; it writes nothing there. ``--quick`` builds a tiny dataset in a temporary
folder by running the stage scripts on a tiny configuration, and measures with few repeats.

Every figure is a ratio of two timings taken in this process, interleaved (A B, B A, A B ...)
so that a change of machine load touches both sides alike; a figure is the median over the
rounds of the per-round ratio. The training figures run the stages' own code: the trainers'
builders (``vskd.train_teacher.prepare_teacher``, ``vskd.train_student.prepare_student``)
make the objects a stage trains (model, step, loaders, optimiser ...), and one epoch of the
real ``vskd.loop.fit`` runs on exactly those objects (benchmarks/stage_runs.py).

One module per section: gaf.py, decode.py, loops.py, dask.py, distill.py, repro.py, gpu.py;
report.py writes the tables. This module is the command line.

Writes ``<out-dir>/results.md`` and ``<out-dir>/results.json`` (default ``benchmarks/``).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/run.py` as well as `python -m benchmarks.run`
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from benchmarks.common import DATA_SECTIONS, SECTIONS, Row, build_quick_workspace, open_workspace  # noqa: E402
from benchmarks.dask import bench_dask  # noqa: E402
from benchmarks.decode import bench_decode  # noqa: E402
from benchmarks.distill import bench_distill  # noqa: E402
from benchmarks.gaf import bench_gaf  # noqa: E402
from benchmarks.gpu import gpu_rows  # noqa: E402
from benchmarks.loops import bench_loops  # noqa: E402
from benchmarks.report import check_finite, fmt_value, markdown, merge  # noqa: E402
from benchmarks.repro import repro_row  # noqa: E402
from benchmarks.stage_runs import Context  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    p.add_argument("--sections", default=",".join(SECTIONS),
                   help=f"comma-separated, from: {', '.join(SECTIONS)} (default: all)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: a tiny dataset built in a temporary folder, one round of everything")
    p.add_argument("--dataset", default=None, help="dataset of params.yaml (default: the first listed)")
    p.add_argument("--params", type=Path, default=REPO / "params.yaml")
    p.add_argument("--root", type=Path, default=REPO, help="workspace holding data/ and models/")
    p.add_argument("--out-dir", type=Path, default=REPO / "benchmarks")
    p.add_argument("--fresh", action="store_true",
                   help="with --sections: write only these sections (default: keep the other sections' "
                        "rows of an earlier results.json in --out-dir)")
    p.add_argument("--rounds", type=int, default=None,
                   help="rounds of the GAF section and epochs of the student loop, each way (default 5; quick 1)")
    p.add_argument("--loop-rounds", type=int, default=None,
                   help="epochs of the teacher loop, each way (default 2; quick 1)")
    p.add_argument("--distill-rounds", type=int, default=None, help="default 3; quick 1")
    p.add_argument("--decode-rounds", type=int, default=None, help="default 2; quick 1")
    p.add_argument("--no-per-video", action="store_true", help="skip one-ffmpeg-process-per-video timing")
    p.add_argument("--dask-batch", type=int, default=32)
    p.add_argument("--dask-steps", type=int, default=None, help="steps of each kind (default 30; quick 2)")
    p.add_argument("--repro-figures", default=None, metavar="WALL_S,PEAK_GB",
                   help="the default dvc repro's wall time (s) and peak memory (GB), measured elsewhere; "
                        "else benchmarks/repro.json is read if present")
    p.add_argument("--gpu-image-size", type=int, default=224)
    p.add_argument("--gpu-segments", type=int, default=8)
    p.add_argument("--gpu-teacher-batch", type=int, default=16)
    p.add_argument("--gpu-student-batch", type=int, default=64)
    args = p.parse_args(argv)
    args.sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = set(args.sections) - set(SECTIONS)
    if unknown:
        p.error(f"unknown section(s) {', '.join(sorted(unknown))}; known: {', '.join(SECTIONS)}")
    q = args.quick
    args.rounds = args.rounds or (1 if q else 5)
    args.loop_rounds = args.loop_rounds or (1 if q else 2)
    args.decode_rounds = args.decode_rounds or (1 if q else 2)
    args.distill_rounds = args.distill_rounds or (1 if q else 3)
    args.dask_steps = args.dask_steps or (2 if q else 30)
    if q:
        args.dask_batch = min(args.dask_batch, 4)
    return args



def run_section(section: str, ctx: Context | None, args) -> tuple[list[Row], list[Row]]:
    """The rows and candidate rows of one section."""
    if section == "gaf":
        return bench_gaf(ctx, args.rounds)
    if section == "decode":
        return bench_decode(ctx, args.decode_rounds, per_video=not args.no_per_video)
    if section == "loops":
        return bench_loops(ctx, args.loop_rounds, args.rounds)
    if section == "dask":
        return bench_dask(ctx, args.dask_batch, args.dask_steps), []
    if section == "distill":
        return bench_distill(ctx, args.distill_rounds), []
    if section == "repro":
        return [repro_row(args.repro_figures)], []
    return gpu_rows(args), []


def measure(args) -> tuple[str, list[Row], list[Row]]:
    """(dataset, rows, candidates) of the sections asked for, from the workspace (or the tiny
    one of --quick, deleted afterwards)."""
    tmp, cwd = None, os.getcwd()
    rows: list[Row] = []
    candidates: list[Row] = []
    try:
        ctx = None
        if set(args.sections) & DATA_SECTIONS:
            if args.quick:
                tmp = Path(tempfile.mkdtemp(prefix="vskd-bench-quick-"))
                ws = build_quick_workspace(tmp)
            else:
                ws = open_workspace(args.root.resolve(), args.params.resolve(), args.dataset)
            ctx = Context(ws)
            dataset = ws.name
            # Run everything from the workspace, as the stages run: params.yaml's paths (a
            # dataset's source) are relative to it.
            os.chdir(ws.root)
        else:
            from vskd.params import load_params

            dataset = "synthetic" if args.quick else (args.dataset or load_params(args.params)["datasets"][0])
        for section in SECTIONS:
            if section not in args.sections:
                continue
            t0 = time.perf_counter()
            r, c = run_section(section, ctx, args)
            for x in r + c:
                x.section = section
            rows += r
            candidates += c
            print(f"benchmarks: {section} done in {time.perf_counter() - t0:.0f} s: "
                  + "; ".join(f"{x.key} {fmt_value(x)}" for x in r + c), file=sys.stderr, flush=True)
    finally:
        os.chdir(cwd)
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    return dataset, rows, candidates


def machine(load_start: float) -> dict:
    return {"platform": platform.platform(), "python": platform.python_version(),
            "cpu_count": os.cpu_count(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "loadavg_start": load_start, "loadavg_end": os.getloadavg()[0]}


def main(argv=None) -> dict:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m benchmarks.run", *given])
    out_dir = args.out_dir.resolve()
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    dataset, rows, candidates = measure(args)
    run = {
        "command": command,
        "sections": [x for x in SECTIONS if x in args.sections],
        "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": machine(load_start),
    }
    result = {**run, "quick": args.quick, "dataset": dataset, "runs": [run],
              "rows": [asdict(r) for r in rows], "candidates": [asdict(c) for c in candidates]}
    if set(args.sections) != set(SECTIONS) and not args.fresh:
        result = merge(out_dir / "results.json", result)
    result = json.loads(json.dumps(result, default=float))  # numpy scalars -> plain floats
    check_finite(result)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    (out_dir / "results.md").write_text(markdown(result))
    print(markdown(result))
    print(f"benchmarks: wrote {out_dir / 'results.md'} and {out_dir / 'results.json'} "
          f"({result['seconds']:.0f} s)", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
