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
rounds of the per-round ratio. The training figures run the stages' own code: the stage
bodies (``stages/<stage>.py``) are called with ``fit`` replaced by a function that captures
its arguments (model, step, loaders, optimiser ...) and stops, and one epoch is then run with
the real ``vskd.training.fit`` on exactly those objects.

Writes ``<out-dir>/results.md`` and ``<out-dir>/results.json`` (default ``benchmarks/``).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import datetime
import importlib.util
import inspect
import json
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/run.py` as well as `python -m benchmarks.run`
    sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from vskd.params import TINY_OVERRIDES, set_dotted  # noqa: E402

SECTIONS = ("gaf", "decode", "loops", "dask", "distill", "repro", "gpu")
DATA_SECTIONS = {"gaf", "decode", "loops", "dask", "distill"}  # those that read the dataset
REPRO_JSON = REPO / "benchmarks" / "repro.json"



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

    def p(self, rel: str) -> Path:
        return self.root / rel

    @property
    def raw(self) -> Path:
        return self.p(f"data/{self.name}/raw")

    @property
    def frames(self) -> Path:
        return self.p(f"data/{self.name}/frames.h5")

    @property
    def gaf(self) -> Path:
        return self.p(f"data/{self.name}/gaf.h5")

    @property
    def teacher_pt(self) -> Path:
        return self.p(f"models/{self.name}/teacher.pt")

    @property
    def teacher_outputs(self) -> Path:
        return self.p(f"models/{self.name}/teacher_outputs.h5")


def open_workspace(root: Path, params_path: Path, name: str | None) -> Workspace:
    from vskd.params import dataset_block, load_params

    params = load_params(params_path)
    name = name or params["datasets"][0]
    ws = Workspace(root, params_path, params, name, dataset_block(params, name, params_path))
    missing = [str(p.relative_to(root)) for p in (ws.raw, ws.frames, ws.gaf, ws.teacher_pt, ws.teacher_outputs)
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


# --- capturing the stages' training loops ------------------------------------------------------

class _Captured(BaseException):
    """Raised by the stand-in ``fit``: carries no data, stops the stage before training."""


@dataclass
class Loop:
    """The arguments a training stage passed to ``vskd.training.fit``."""

    stage: str
    args: dict

    @property
    def model(self):
        return self.args["model"]

    @property
    def step(self):
        return self.args["step"]

    @property
    def optimizer(self):
        return self.args["optimizer"]

    @property
    def loader(self):
        return self.args["train_loader"]

    @property
    def seed(self) -> int:
        return int(self.args.get("seed", 0))

    @property
    def device(self):
        rt = self.args.get("runtime")
        return getattr(rt, "device", torch.device("cpu"))

    def train_step(self, batch) -> torch.Tensor:
        """forward + backward + optimiser step, exactly the body of fit's batch loop minus its
        bookkeeping."""
        loss, _terms, _logits, _target = self.step(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.args.get("max_grad_norm"):
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.args["max_grad_norm"])
        self.optimizer.step()
        return loss


def _stage_body(stage: str):
    spec = importlib.util.spec_from_file_location(f"_bench_stage_{stage}", REPO / "stages" / f"{stage}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.body


def capture(ws: Workspace, stage: str) -> Loop:
    """Run ``stages/<stage>.py``'s body up to its ``fit`` call and keep fit's arguments.

    ``fit`` and ``open_live`` are replaced in the training module for the call, so nothing
    is trained, logged or written (the stage's output paths are never opened)."""
    import vskd.train_student
    import vskd.train_teacher
    from vskd import training

    module = vskd.train_teacher if stage == "teacher" else vskd.train_student
    seen = {}

    def fake_fit(*args, **kwargs):
        seen.update(inspect.signature(training.fit).bind(*args, **kwargs).arguments)
        raise _Captured

    body = _stage_body(stage)
    saved = (module.fit, module.open_live)
    module.fit = fake_fit
    module.open_live = lambda *a, **k: contextlib.nullcontext(None)
    cwd = os.getcwd()
    try:
        os.chdir(ws.root)  # the stage bodies use paths relative to the workspace
        body(ws.name, ws.params, ws.block)
    except _Captured:
        pass
    finally:
        os.chdir(cwd)
        module.fit, module.open_live = saved
    if not seen:
        raise RuntimeError(f"stages/{stage}.py did not call fit")
    return Loop(stage, seen)


class Context:
    """Captured loops, made once and shared by the sections that need them."""

    def __init__(self, ws: Workspace):
        self.ws = ws
        self._loops: dict[str, Loop] = {}

    def loop(self, stage: str) -> Loop:
        if stage not in self._loops:
            self._loops[stage] = capture(self.ws, stage)
        return self._loops[stage]


# --- training-loop efficiency --------------------------------------------------------------------

class EpochRunner:
    """One epoch of the real ``fit`` on a captured loop, and the same batches replayed."""

    def __init__(self, loop: Loop):
        from vskd import training

        self.loop, self.fit = loop, training.fit
        self.params = set(inspect.signature(training.fit).parameters)
        self.batches: list = []

    def real_epoch(self, loader=None) -> dict:
        """``fit(..., epochs=1)``: epoch 1, the stage's loader (or ``loader``), step, optimiser,
        validation.

        Returns the wall time of the whole call, of its training pass (up to validation) and
        of validation, and when the first batch reached ``step``."""
        marks: dict[str, float] = {}
        batches: list = []

        def step(batch):
            marks.setdefault("first", time.perf_counter())
            batches.append(batch)
            return self.loop.step(batch)

        def evaluate():
            sync()
            marks["eval_start"] = time.perf_counter()
            out = self.loop.args["evaluate"]()
            sync()
            marks["eval_end"] = time.perf_counter()
            return out

        kwargs = dict(self.loop.args)
        kwargs.update(step=step, evaluate=evaluate, epochs=1, live=None)
        if loader is not None:
            kwargs["train_loader"] = loader
        if "resume" in self.params:
            kwargs["resume"] = None
        sync()
        t0 = time.perf_counter()
        self.fit(**kwargs)
        sync()
        t1 = time.perf_counter()
        if loader is None:
            self.batches = batches
        self.last_batches = batches
        return {"epoch_s": t1 - t0, "train_pass_s": marks["eval_start"] - t0,
                "validation_s": marks["eval_end"] - marks["eval_start"],
                "first_batch_s": marks["first"] - t0, "batches": len(batches)}

    def pure(self, batches=None) -> float:
        """forward + backward + step over ``batches`` (default: those of the last real epoch on
        the stage's loader), already in memory."""
        self.loop.model.train()
        sync()
        t0 = time.perf_counter()
        for batch in (self.batches if batches is None else batches):
            self.loop.train_step(batch)
        sync()
        return time.perf_counter() - t0

    def loader_only(self, loader=None) -> float:
        from vskd.training import set_loader_epoch

        loader = loader or self.loop.loader
        set_loader_epoch(loader, self.loop.seed, 1)
        t0 = time.perf_counter()
        for _ in loader:
            pass
        return time.perf_counter() - t0


# Candidate for the teacher's loader: ClipDataset reads a clip's S frames with h5py fancy
# indexing, ``h5["frames"][id][idx]``, which h5py serves slowly (a point selection); reading
# the S frames one by one (one contiguous chunk each) gives the same array. The stand-ins
# below put that behind ClipDataset's own file handle, so its code runs unchanged.

class _FrameReader:
    def __init__(self, dataset):
        self.dataset = dataset

    def __getitem__(self, idx):
        if isinstance(idx, np.ndarray) and idx.ndim == 1:
            return np.stack([self.dataset[int(i)] for i in idx])
        return self.dataset[idx]

    def __getattr__(self, name):
        return getattr(self.dataset, name)


class _FramesGroup:
    def __init__(self, group):
        self.group = group

    def __getitem__(self, sample_id):
        return _FrameReader(self.group[sample_id])


class _PerFrameFile:
    def __init__(self, path):
        import h5py

        self.h5 = h5py.File(path, "r")

    def __getitem__(self, key):
        obj = self.h5[key]
        return _FramesGroup(obj) if key == "frames" else obj


def _per_frame_worker_init(worker_id):
    info = torch.utils.data.get_worker_info()
    info.dataset._h5 = _PerFrameFile(info.dataset.path)


def per_frame_loader(loop: Loop, num_workers: int | None = None):
    """The teacher's training loader again (same sampler seed, batch; its workers unless
    ``num_workers``), over a copy of its ClipDataset that reads frames one by one; None if
    ClipDataset has changed shape."""
    from vskd.training import make_loader

    original = loop.loader
    if not hasattr(original.dataset, "_h5") or not hasattr(original.dataset, "path"):
        return None
    ds = copy.copy(original.dataset)
    ds._h5 = None
    ref, check = copy.copy(ds), copy.copy(ds)  # copies: the stage's dataset must not open the file here
    check._h5 = _PerFrameFile(ds.path)
    if not torch.equal(ref[0][0], check[0][0]):
        raise AssertionError("per-frame reads give other clips than ClipDataset's")
    workers = original.num_workers if num_workers is None else num_workers
    loader = make_loader(ds, original.batch_size, shuffle=True, seed=loop.seed,
                         num_workers=workers, drop_last=original.drop_last)
    if workers:
        loader.worker_init_fn = _per_frame_worker_init
    else:
        ds._h5 = _PerFrameFile(ds.path)
    return loader


def channels_last(batch):
    """A clip batch (B, S, 3, H, W) with each frame in channels-last memory order."""
    x, *rest = batch
    return (x.permute(0, 1, 3, 4, 2).contiguous().permute(0, 1, 4, 2, 3), *rest)


def loop_row(key: str, title: str, loop: Loop, rounds: int, variants: dict | None = None,
             transforms: dict | None = None) -> tuple[Row, dict]:
    """The training-loop figure of one stage, and candidates timed in the same rounds:
    ``variants`` (name -> loader): a real epoch on that loader, and the pure pass over its own
    batches; ``transforms`` (name -> batch function): the pure pass over the stage's batches
    transformed. Returns the row and the candidates' figures."""
    runner = EpochRunner(loop)
    first = runner.real_epoch()  # warm-up: allocator, first-touch, caches; reported, not in the figure
    variants, transforms = variants or {}, transforms or {}
    reals, pures = [], []
    var_times = {name: ([], []) for name in variants}
    tr_times = {name: [] for name in transforms}
    for r in range(rounds):
        order = ["pure", "real", *variants, *transforms]
        for what in (order if r % 2 == 0 else order[::-1]):
            if what == "pure":
                pures.append(clock(runner.pure)[0])
            elif what == "real":
                reals.append(runner.real_epoch())
            elif what in variants:
                var_times[what][0].append(runner.real_epoch(variants[what])["train_pass_s"])
                var_times[what][1].append(clock(lambda: runner.pure(runner.last_batches))[0])
            else:
                moved = [transforms[what](b) for b in runner.batches]
                tr_times[what].append(clock(lambda: runner.pure(moved))[0])
    loader_s = runner.loader_only()
    train = [e["train_pass_s"] for e in reals]
    epoch = [e["epoch_s"] for e in reals]
    ratio = median_ratio(train, pures)
    workers = loop.loader.num_workers
    extra = {name: {"train_pass_s": [r3(t) for t in ts], "pure_s": [r3(t) for t in ps],
                    "ratio": r3(median_ratio(ts, ps)), "vs_stage_pure": r3(median_ratio(ts, pures)),
                    "loader_only_s": r3(runner.loader_only(variants[name]))}
             for name, (ts, ps) in var_times.items()}
    extra.update({name: {"pure_s": [r3(t) for t in ts], "ratio": r3(median_ratio(pures, ts))}
                  for name, ts in tr_times.items()})
    details = {
        "batches": first["batches"], "batch_size": loop.loader.batch_size, "num_workers": workers,
        "rounds": rounds, "train_pass_s": [r3(x) for x in train], "pure_s": [r3(x) for x in pures],
        "epoch_s": [r3(x) for x in epoch], "validation_s": [r3(e["validation_s"]) for e in reals],
        "first_batch_s": [r3(e["first_batch_s"]) for e in reals], "loader_only_s": r3(loader_s),
        "first_epoch": {k: r3(v) for k, v in first.items()},
        "whole_epoch_ratio": r3(median_ratio(epoch, pures)),
        "candidates": extra,
    }
    row = judge(Row(key, f"{title}: training pass of one epoch of the real loop / forward+backward+step "
                         "of the same batches in memory", r3(ratio), details=details), "<=", 1.15)
    per_batch = med(pures) / max(1, first["batches"])
    note = (f"{first['batches']} batches of {loop.loader.batch_size}, num_workers={workers}; "
            f"{med(train):.2f} s vs {med(pures):.2f} s; whole epoch with validation and logging "
            f"{med(epoch):.2f} s ({details['whole_epoch_ratio']:.2f}x)")
    if row.met is False:
        over = med(train) - med(pures)
        first_wait = med([e["first_batch_s"] for e in reals])
        why = [f"the loader alone takes {loader_s:.2f} s per epoch"]
        if workers == 0:
            why.append("and with num_workers=0 it runs in the main process between steps, so "
                       "all of it adds to the epoch")
        else:
            why.append(f"and on {os.cpu_count()} cores its {workers} worker(s) take CPU time from the "
                       f"{torch.get_num_threads()} compute threads instead of running beside them (the "
                       f"first batch arrives {first_wait:.2f} s after the epoch starts, a new worker every "
                       f"epoch; one batch of compute takes {per_batch:.2f} s)")
        note += f". Missed by {over:.2f} s per epoch: " + "; ".join(why)
    row.note = note
    return row, extra


def bench_loops(ctx: Context, rounds: int, cheap_rounds: int) -> tuple[list[Row], list[Row]]:
    teacher = ctx.loop("teacher")
    workers = teacher.loader.num_workers
    variants = {}
    loader = per_frame_loader(teacher)
    if loader is not None:
        variants["per_frame_reads"] = loader
        if workers:
            variants["per_frame_reads_no_workers"] = per_frame_loader(teacher, 0)
    row_t, var = loop_row("teacher_loop", "teacher (TRN, BN-Inception)", teacher, rounds, variants,
                          {"channels_last": channels_last})
    row_s, _ = loop_row("student_loop", "student (ResNet18 on GAF, CE)", ctx.loop("student"), cheap_rounds)
    if row_t.met is False and "per_frame_reads" in var:
        v = var["per_frame_reads"]
        row_t.note += (f". Most of the loader's time is h5py's fancy-indexed read of a clip's frames "
                       f"(`h5[\"frames\"][id][idx]`): reading them one by one, the loader alone takes "
                       f"{v['loader_only_s']:.2f} s and the figure is {v['ratio']:.2f}x")
        if "per_frame_reads_no_workers" in var:
            row_t.note += f", {var['per_frame_reads_no_workers']['ratio']:.2f}x with num_workers=0 as well"
    candidates = []
    for name, v in var.items():
        if name == "channels_last":
            candidates.append(Row(
                "teacher_channels_last",
                "candidate teacher step on channels-last frames: forward+backward+step of the stage's batches "
                "/ the same batches in channels-last memory order (x faster)", v["ratio"],
                note=(f"{med(v['pure_s']):.2f} s vs {med(row_t.details['pure_s']):.2f} s "
                      "per epoch of batches; a batch collated in the main process (num_workers=0) keeps the "
                      "crops' channels-last strides when no resize is needed, a worker's batch does not"),
                details=v))
            continue
        w = 0 if name.endswith("no_workers") else workers
        candidates.append(Row(
            f"teacher_loop_{name}",
            f"candidate teacher loop, ClipDataset reading a clip's frames one by one instead of h5py fancy "
            f"indexing, num_workers={w}: training pass / forward+backward+step of its batches", v["ratio"],
            note=(f"loader alone {v['loader_only_s']:.2f} s per epoch instead of "
                  f"{row_t.details['loader_only_s']:.2f} s; the same clips; training pass "
                  f"{med(v['train_pass_s']):.2f} s, {v['vs_stage_pure']:.2f}x the stage's pure pass"),
            details=v))
    return [row_t, row_s], candidates


# --- DASK vs cross-entropy step -------------------------------------------------------------------

def bench_dask(ctx: Context, batch_size: int, steps: int) -> list[Row]:
    ce, dask = ctx.loop("student"), ctx.loop("distill")
    paired = dask.loader.dataset
    idx = np.arange(batch_size) % len(paired)  # a small dataset repeats samples to fill the batch
    items = [paired[int(i)] for i in idx]
    collate = torch.utils.data.default_collate
    dask_batch = collate(items)
    x, y, _tl, _tf, rows = dask_batch
    ce_batch = (x, y, rows)
    from vskd.training import to_device

    ce_batch, dask_batch = to_device(ce_batch, ce.device), to_device(dask_batch, dask.device)
    ce.model.train()
    dask.model.train()

    for _ in range(2):  # warm-up
        ce.train_step(ce_batch)
        dask.train_step(dask_batch)
    # Step by step, alternating which goes first: the finest interleaving there is.
    times = interleave({"ce": lambda: ce.train_step(ce_batch), "dask": lambda: dask.train_step(dask_batch)},
                       steps)
    ratio = median_ratio(times["dask"], times["ce"])
    ms = {k: 1000 * med(v) for k, v in times.items()}
    row = judge(Row("dask_vs_ce", f"DASK training step / cross-entropy-only step, GAF student, batch {batch_size}",
                    r3(ratio), details={"batch_size": batch_size, "steps": steps,
                                        "ce_ms_per_step": r3(ms["ce"]), "dask_ms_per_step": r3(ms["dask"]),
                                        "ce_s": [r3(t) for t in times["ce"]], "dask_s": [r3(t) for t in times["dask"]]}),
                "<=", 1.10)
    row.note = (f"the stages' own step functions (student: CE; distill: DASK with stored teacher outputs), "
                f"forward + backward + Adam step: {ms['dask']:.0f} ms vs {ms['ce']:.0f} ms per step")
    if row.met is False:
        row.note += (f". Missed: the five DASK terms (RKD angle: a B x B x B tensor) add "
                     f"{ms['dask'] - ms['ce']:.0f} ms per step")
    return [row]


# --- distill: stored teacher outputs vs recomputing the teacher -------------------------------------

class _WithClips(torch.utils.data.Dataset):
    """The distill training set with each sample's evaluation clip: (gaf, label, clip,
    stored teacher logits, stored teacher feature, row)."""

    def __init__(self, paired, clips):
        self.paired, self.clips = paired, clips

    def __len__(self):
        return len(self.paired)

    def __getitem__(self, i):
        image, label, t_logits, t_feature, row = self.paired[i]
        return image, label, self.clips[i][0], t_logits, t_feature, row


def bench_distill(ctx: Context, rounds: int) -> list[Row]:
    from vskd.frames import ClipDataset
    from vskd.h5store import read_index
    from vskd.models.trn import TRNTeacher
    from vskd.training import load_checkpoint, make_loader, set_loader_epoch, to_device
    import h5py

    ws = ctx.ws
    loop = ctx.loop("distill")
    paired = loop.loader.dataset
    with h5py.File(ws.gaf, "r") as h5:
        gaf_ids = read_index(h5)["ids"]
    with h5py.File(ws.frames, "r") as h5:
        frame_ids = read_index(h5)["ids"]
    frame_row = {sid: i for i, sid in enumerate(frame_ids)}
    ids = gaf_ids[paired.gaf.rows]
    ckpt = load_checkpoint(ws.teacher_pt, "teacher")
    teacher = TRNTeacher(**ckpt["config"])
    teacher.load_state_dict(ckpt["state_dict"])
    teacher.to(loop.device).eval()
    clips = ClipDataset(ws.frames, np.array([frame_row[i] for i in ids]), ckpt["config"]["num_segments"],
                        int(ckpt["input_size"]), train=False)
    loader = make_loader(_WithClips(paired, clips), loop.loader.batch_size, shuffle=True, seed=loop.seed,
                         num_workers=loop.loader.num_workers, drop_last=True)
    diff = {"logits": 0.0, "feature": 0.0}

    def recompute_epoch():
        set_loader_epoch(loader, loop.seed, 1)
        loop.model.train()
        for batch in loader:
            x, y, clip, stored_logits, stored_feature, row = to_device(batch, loop.device)
            with torch.no_grad():
                per_frame = teacher.features(clip)
                t_logits, t_feature = teacher.head(per_frame), teacher.semantic_feature(per_frame)
            diff["logits"] = max(diff["logits"], float((t_logits - stored_logits).abs().max()))
            diff["feature"] = max(diff["feature"], float((t_feature - stored_feature).abs().max()))
            loop.train_step((x, y, t_logits, t_feature, row))

    runner = EpochRunner(loop)
    runner.real_epoch()  # warm-up
    recompute_epoch()
    stored, recomputed, pures = [], [], []
    for r in range(rounds):
        order = ("stored", "recompute", "pure") if r % 2 == 0 else ("pure", "recompute", "stored")
        for what in order:
            if what == "stored":
                stored.append(runner.real_epoch())
            elif what == "recompute":
                recomputed.append(clock(recompute_epoch)[0])
            else:
                pures.append(clock(runner.pure)[0])
    train = [e["train_pass_s"] for e in stored]
    ratio = median_ratio(recomputed, train)
    epochs = int(ws.params["student"]["epochs"])
    saved = (med(recomputed) - med(train)) * epochs
    rows = [Row("distill_stored_vs_recompute",
                "distill epoch recomputing the teacher (frames from frames.h5, TRN forward) / distill epoch "
                "with the stored teacher outputs", r3(ratio),
                note=(f"one training pass each ({len(runner.batches)} batches of {loop.loader.batch_size}): "
                      f"{med(recomputed):.2f} s vs {med(train):.2f} s; over the stage's {epochs} epochs "
                      f"storing saves about {saved:.0f} s. Recomputed outputs equal the stored ones to "
                      f"{max(diff.values()):.1e}"),
                details={"recompute_s": [r3(t) for t in recomputed], "stored_train_pass_s": [r3(t) for t in train],
                         "epochs": epochs, "saved_s_per_stage": r3(saved),
                         "max_abs_diff_logits": diff["logits"], "max_abs_diff_feature": diff["feature"]})]
    loop_ratio = median_ratio(train, pures)
    row = judge(Row("distill_loop", "distill (ResNet18, DASK): training pass of one epoch of the real loop / "
                                    "forward+backward+step of the same batches in memory", r3(loop_ratio),
                    note=f"{med(train):.2f} s vs {med(pures):.2f} s (num_workers={loop.loader.num_workers})",
                    details={"train_pass_s": [r3(t) for t in train], "pure_s": [r3(t) for t in pures]}),
                "<=", 1.15)
    rows.append(row)
    return rows


# --- GAF vs pyts --------------------------------------------------------------------------------------

FULL_GAF_FIGURE = "GAF encoding at full size (n x n, no resize: the same images): pyts time / vskd.gaf time"
PER_VIDEO_FIGURE = ("frames stage decoding / one ffmpeg command per video "
                    "(`ffmpeg -threads 0 -i VIDEO -vf scale=... -f null -`)")


def bench_gaf(ctx: Context, rounds: int) -> tuple[list[Row], list[Row]]:
    figure = "GAF encoding: pyts GramianAngularField time / vskd.gaf time (x faster), same recordings"
    try:
        from pyts.image import GramianAngularField
    except ImportError:
        why = "pyts is not installed (pip install -e '.[bench]')"
        return [not_measured("gaf_vs_pyts", figure, why, ">= 1.5"),
                not_measured("gaf_vs_pyts_full", FULL_GAF_FIGURE, why)], []
    from vskd.datasets import get_adapter
    from vskd.gaf import accelerometer_to_gaf

    ws = ctx.ws
    size, method = int(ws.params["gaf"]["image_size"]), ws.params["gaf"]["method"]
    adapter = get_adapter(ws.name)
    samples = [s for s in adapter.scan(ws.raw, ws.block) if s.sensor is not None]
    accs = [np.asarray(adapter.read_accelerometer(s.sensor, ws.block), dtype=np.float64) for s in samples]
    lengths = [len(a) for a in accs]
    pyts_at = {}

    def pyts_gaf(acc, out):
        if out not in pyts_at:
            pyts_at[out] = GramianAngularField(image_size=out, method=method, sample_range=(-1, 1))
        return pyts_at[out].fit_transform(acc.T)

    def run_vskd(full=False):
        return lambda: [accelerometer_to_gaf(a, len(a) if full else size, method) for a in accs]

    def run_pyts(full=False):
        return lambda: [pyts_gaf(a, len(a) if full else size) for a in accs]

    def run_vskd_one_thread():
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return run_vskd()()
        finally:
            torch.set_num_threads(threads)

    # Warm-up (numba compiles pyts' kernels on the first call) and the outputs to compare.
    out_v, out_p = run_vskd()(), run_pyts()()
    full_v, full_p = run_vskd(True)(), run_pyts(True)()
    run_vskd_one_thread()
    diff = float(max(np.abs(a - b).max() for a, b in zip(out_v, out_p)))
    mean_diff = float(np.mean([np.abs(a - b).mean() for a, b in zip(out_v, out_p)]))
    full_diff = float(max(np.abs(a - b).max() for a, b in zip(full_v, full_p)))
    times = interleave({"vskd": run_vskd(), "pyts": run_pyts(), "vskd_full": run_vskd(True),
                        "pyts_full": run_pyts(True),
                        "vskd_1thread": run_vskd_one_thread}, rounds)
    ratio = median_ratio(times["pyts"], times["vskd"])
    ratio_full = median_ratio(times["pyts_full"], times["vskd_full"])
    ratio_1t = median_ratio(times["pyts"], times["vskd_1thread"])
    details = {"recordings": len(accs), "length_min": min(lengths), "length_max": max(lengths),
               "image_size": size, "method": method, "rounds": rounds,
               "max_abs_diff": diff, "mean_abs_diff": mean_diff, "full_size_max_abs_diff": full_diff,
               **{f"{k}_s": [r3(t) for t in v] for k, v in times.items()}}
    row = judge(Row("gaf_vs_pyts", figure + f", {size} x {size} output ({method})", r3(ratio), details=details),
                ">=", 1.5)
    row.note = (f"{len(accs)} recordings of {min(lengths)}-{max(lengths)} samples x 3 axes, in memory; "
                f"pyts GramianAngularField(image_size={size}, method='{method}', sample_range=(-1, 1)). "
                f"{med(times['vskd']):.3f} s vs pyts {med(times['pyts']):.3f} s. The images differ "
                f"(max |diff| {diff:.2f}, mean {mean_diff:.3f}): pyts shrinks the series to {size} points "
                f"(PAA, window means) before scaling, vskd.gaf resizes the full field (antialiased bilinear, "
                f"computed factored: (R cos)(R cos)^T - (R sin)(R sin)^T, no n x n field)")
    if row.met is False:
        row.note += (f". Missed: on 1 thread {ratio_1t:.2f}x; the per-trial cost is numpy and torch "
                     f"call overhead on tiny arrays")
    full = Row("gaf_vs_pyts_full", FULL_GAF_FIGURE, r3(ratio_full),
               note=f"max |diff| {full_diff:.1e} (float32 rounding); {med(times['vskd_full']):.3f} s vs "
                    f"{med(times['pyts_full']):.3f} s", details={"max_abs_diff": full_diff})
    candidates = [
        Row("gaf_one_thread_vs_pyts", "vskd.gaf with torch.set_num_threads(1): pyts time / its time",
            r3(ratio_1t), note=f"{med(times['vskd_1thread']):.3f} s vs {med(times['vskd']):.3f} s with "
                               f"{torch.get_num_threads()} threads"),
    ]
    return [row, full], candidates


# --- video decoding vs ffmpeg -----------------------------------------------------------------------------

def ffmpeg_exe() -> tuple[str | None, str]:
    exe = shutil.which("ffmpeg")
    if exe:
        return exe, "ffmpeg on PATH"
    try:
        import imageio_ffmpeg
    except ImportError:
        return None, "no ffmpeg on PATH and imageio-ffmpeg is not installed (pip install -e '.[bench]')"
    return imageio_ffmpeg.get_ffmpeg_exe(), f"imageio-ffmpeg's bundled ffmpeg {imageio_ffmpeg.get_ffmpeg_version()}"


def decode_only(path) -> int:
    """PyAV decoding with vskd's thread settings, no resize or conversion: the decoder's share."""
    import av

    n = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for _ in container.decode(stream):
            n += 1
    return n


def bench_decode(ctx: Context, rounds: int, per_video: bool = True) -> tuple[list[Row], list[Row]]:
    figure = "frames stage decoding: vskd time / ffmpeg command-line time, same videos"
    exe, source = ffmpeg_exe()
    if exe is None:
        return [not_measured("decode_vs_ffmpeg", figure, source, "<= 1.25"),
                not_measured("decode_vs_ffmpeg_per_video", PER_VIDEO_FIGURE, source)], []
    from vskd.datasets import get_adapter
    from vskd.frames import _read_ahead, decode_video

    ws = ctx.ws
    side = int(ws.params["frames"]["short_side"])
    adapter = get_adapter(ws.name)
    videos = [s.video for s in adapter.scan(ws.raw, ws.block) if s.video is not None]
    if adapter.read_video.__name__ != "_decode_video" or Path(videos[0]).is_dir():
        why = f"{ws.name} is not read from video files"
        return [not_measured("decode_vs_ffmpeg", figure, why, "<= 1.25"),
                not_measured("decode_vs_ffmpeg_per_video", PER_VIDEO_FIGURE, why)], []
    tmp = Path(tempfile.mkdtemp(prefix="vskd-bench-"))
    listing = tmp / "videos.txt"
    listing.write_text("".join(f"file '{Path(v).resolve()}'\n" for v in videos))
    # vskd.frames.resized_shape: short side -> side, long side -> round(long * side / short)
    scale = (f"scale=w='if(lte(ih,iw),round(iw*{side}/ih),{side})':h='if(lte(ih,iw),{side},round(ih*{side}/iw))'"
             ":flags=area,format=rgb24")
    base = [exe, "-nostdin", "-hide_banner", "-v", "error", "-threads", "0"]
    concat = base + ["-f", "concat", "-safe", "0", "-i", str(listing)]

    def ff(cmd):
        return lambda: subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)

    def ff_each():
        for v in videos:
            subprocess.run(base + ["-i", str(v), "-vf", scale, "-f", "null", "-"], check=True,
                           stdout=subprocess.DEVNULL)

    def read(v):
        return adapter.read_video(Path(v), side, ws.block)

    def run_vskd():  # the frames stage's decoding: videos read ahead in threads, in order
        return [frames for _, frames in _read_ahead(videos, read, None)]

    def run_one_at_a_time():
        return [read(v) for v in videos]

    # Same work: ffmpeg's frames, as rgb24 at the stored size, against vskd's, on the first video.
    first = decode_video(videos[0], side)
    raw = subprocess.run(base + ["-i", str(videos[0]), "-vf", scale, "-f", "rawvideo", "-"], check=True,
                         capture_output=True).stdout
    ff_frames = np.frombuffer(raw, np.uint8).reshape(-1, *first.shape[1:])
    pixel_diff = pixel_mean = None
    if ff_frames.shape == first.shape:
        d = np.abs(ff_frames.astype(int) - first.astype(int))
        pixel_diff, pixel_mean = int(d.max()), float(d.mean())
    fns = {"vskd": run_vskd, "ffmpeg": ff(concat + ["-vf", scale, "-f", "null", "-"]),
           "ffmpeg_decode_only": ff(concat + ["-f", "null", "-"]),
           "pyav_decode_only": lambda: [decode_only(v) for v in videos],
           "one_at_a_time": run_one_at_a_time}
    if per_video:
        fns["ffmpeg_per_video"] = ff_each
    ff(concat + ["-vf", scale, "-f", "null", "-"])()  # warm the page cache
    try:
        times = interleave(fns, rounds)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    frames = int(sum(len(f) for f in run_vskd())) if len(videos) <= 64 else None
    ratio = median_ratio(times["vskd"], times["ffmpeg"])
    ratio_seq = median_ratio(times["one_at_a_time"], times["ffmpeg"])
    details = {"videos": len(videos), "frames": frames, "first_video_shape": list(first.shape),
               "short_side": side, "ffmpeg": source, "ffmpeg_scale_filter": scale,
               "ffmpeg_vs_vskd_first_video": {"frames_ffmpeg": int(len(ff_frames)), "frames_vskd": int(len(first)),
                                              "max_abs_pixel_diff": pixel_diff,
                                              "mean_abs_pixel_diff": pixel_mean},
               **{f"{k}_s": [r3(t) for t in v] for k, v in times.items()}}
    row = judge(Row("decode_vs_ffmpeg", figure + f" (decode + area resize to short side {side} + rgb24)",
                    r3(ratio), details=details), "<=", 1.25)
    row.note = (f"{len(videos)} videos; the frames stage's decoding (decode_video, 2 videos at a time in "
                f"threads, order kept; without its HDF5 writes) "
                f"{med(times['vskd']):.2f} s vs one ffmpeg process over all of them (concat demuxer, "
                f"-threads 0 as PyAV's default, -vf scale=...:flags=area,format=rgb24 -f null) "
                f"{med(times['ffmpeg']):.2f} s")
    if pixel_mean is not None:
        row.note += (f". Same frames: ffmpeg's rgb24 output of the first video differs from decode_video's "
                     f"by {pixel_mean:.2f} grey levels on average ({pixel_diff} at most)")
    if row.met is False:
        row.note += (f". Missed: PyAV's decoding alone takes {med(times['pyav_decode_only']):.2f} s "
                     f"(ffmpeg decoding to null: {med(times['ffmpeg_decode_only']):.2f} s); the rest is the "
                     "area resize and rgb24 conversion run one frame at a time from Python, where ffmpeg "
                     "pipelines them in C")
    rows = [row]
    if per_video:
        ratio_each = median_ratio(times["vskd"], times["ffmpeg_per_video"])
        rows.append(Row("decode_vs_ffmpeg_per_video", PER_VIDEO_FIGURE, r3(ratio_each),
                        note=f"{med(times['ffmpeg_per_video']):.2f} s, mostly the start-up of "
                             f"{len(videos)} processes"))
    else:
        rows.append(not_measured("decode_vs_ffmpeg_per_video", PER_VIDEO_FIGURE, "skipped (--no-per-video)"))
    candidates = [Row("decode_one_at_a_time_vs_ffmpeg",
                      "decode_video one video after another (the stage before its thread pool) / ffmpeg",
                      r3(ratio_seq), note=f"{med(times['one_at_a_time']):.2f} s")]
    return rows, candidates


# --- default dvc repro --------------------------------------------------------------------------------------

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


# --- GPU throughput -------------------------------------------------------------------------------------------

def gpu_throughput(device: torch.device, image_size: int = 224, segments: int = 8, teacher_batch: int = 16,
                   student_batch: int = 64, steps: int = 20, warmup: int = 5, num_classes: int = 10,
                   feature_dim: int = 256) -> list[dict]:
    """Training samples per second of teacher and student at ``image_size``, fp32 and AMP
    (autocast float16 with a GradScaler on CUDA; bfloat16 elsewhere), random inputs."""
    import torch.nn.functional as F

    from vskd.models.student import GAFStudent
    from vskd.models.trn import TRNTeacher

    out = []
    for name, batch in (("teacher", teacher_batch), ("student", student_batch)):
        for amp in (False, True):
            torch.manual_seed(0)
            if name == "teacher":
                model = TRNTeacher(num_classes, segments, img_feature_dim=feature_dim).to(device)
                x = torch.rand(batch, segments, 3, image_size, image_size, device=device) * 255
            else:
                model = GAFStudent(num_classes, feature_dim).to(device)
                x = torch.rand(batch, 3, image_size, image_size, device=device) * 2 - 1
            y = torch.randint(0, num_classes, (batch,), device=device)
            model.train()
            opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
            dtype = torch.float16 if device.type == "cuda" else torch.bfloat16
            scaler = torch.amp.GradScaler(device.type, enabled=amp and device.type == "cuda")

            def one():
                with torch.autocast(device.type, dtype=dtype, enabled=amp):
                    loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()

            for _ in range(warmup):
                one()
            seconds = clock(lambda: [one() for _ in range(steps)])[0]
            out.append({"model": name, "amp": amp, "batch": batch, "image_size": image_size,
                        "segments": segments if name == "teacher" else None,
                        "samples_per_s": batch * steps / seconds})
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return out


def gpu_rows(args) -> list[Row]:
    figure = "{}: training throughput with mixed precision / without, on GPU at {} px{}"
    shapes = (("teacher", ", 8 segments, batch 16"), ("student", ", batch 64"))
    if not torch.cuda.is_available():
        return [not_measured(f"gpu_{m}_amp", figure.format(m, 224, s), "no GPU") for m, s in shapes]
    results = gpu_throughput(torch.device("cuda"), args.gpu_image_size, args.gpu_segments, args.gpu_teacher_batch,
                             args.gpu_student_batch)
    rows = []
    for model in ("teacher", "student"):
        fp32, amp = (next(r for r in results if r["model"] == model and r["amp"] == a) for a in (False, True))
        shape = (f", {args.gpu_segments} segments, batch {args.gpu_teacher_batch}" if model == "teacher"
                 else f", batch {args.gpu_student_batch}")
        rows.append(Row(f"gpu_{model}_amp", figure.format(model, args.gpu_image_size, shape),
                        r3(amp["samples_per_s"] / fp32["samples_per_s"]),
                        note=f"{fp32['samples_per_s']:.0f} samples/s fp32, {amp['samples_per_s']:.0f} with AMP "
                             f"({torch.cuda.get_device_name()})",
                        details={"fp32": fp32, "amp": amp}))
    return rows


# --- report ------------------------------------------------------------------------------------------------

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


# --- main -----------------------------------------------------------------------------------------------------

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


def main(argv=None) -> dict:
    args = parse_args(argv)
    given = sys.argv[1:] if argv is None else list(argv)
    command = " ".join(["python -m benchmarks.run", *given])
    out_dir = args.out_dir.resolve()
    load_start = os.getloadavg()[0]
    started = time.perf_counter()
    tmp = None
    cwd = os.getcwd()
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
            # The stage bodies open their files by relative paths (data/<ds>/...), some lazily
            # (datasets open their HDF5 file at the first read): run everything from the workspace.
            os.chdir(ws.root)
        else:
            from vskd.params import load_params

            dataset = "synthetic" if args.quick else (args.dataset or load_params(args.params)["datasets"][0])
        for section in SECTIONS:
            if section not in args.sections:
                continue
            t0 = time.perf_counter()
            if section == "gaf":
                r, c = bench_gaf(ctx, args.rounds)
            elif section == "decode":
                r, c = bench_decode(ctx, args.decode_rounds, per_video=not args.no_per_video)
            elif section == "loops":
                r, c = bench_loops(ctx, args.loop_rounds, args.rounds)
            elif section == "dask":
                r, c = bench_dask(ctx, args.dask_batch, args.dask_steps), []
            elif section == "distill":
                r, c = bench_distill(ctx, args.distill_rounds), []
            elif section == "repro":
                r, c = [repro_row(args.repro_figures)], []
            else:
                r, c = gpu_rows(args), []
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
    run = {
        "command": command,
        "sections": [x for x in SECTIONS if x in args.sections],
        "generated": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "seconds": round(time.perf_counter() - started, 1),
        "machine": {"platform": platform.platform(), "python": platform.python_version(),
                    "cpu_count": os.cpu_count(), "torch": torch.__version__,
                    "torch_threads": torch.get_num_threads(),
                    "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
                    "loadavg_start": load_start, "loadavg_end": os.getloadavg()[0]},
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
